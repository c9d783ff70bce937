"""ExportDistrictRoster returns exactly what paging ListSchools and ListTeachers returns (Hypothesis).

The sync reads EW's roster with the export alone, so every school and teacher the paged reads give
must come out of the export field for field: archived teachers, teachers of several schools, and
schools archived or merged into another. Another district's rows, present in the same database,
must never appear. One roster server runs per test function; every example writes its own district.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Iterator

import pytest
from ew.client.errors import NotFoundError
from ew.roster.v1 import roster_pb2 as pb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.roster import Roster, running_roster


@dataclasses.dataclass(frozen=True)
class DistrictSpec:
    """A generated district: school names, what happens to each school, and the teachers."""

    schools: list[str]
    school_fates: list[str]
    teachers: list[tuple[frozenset[int], bool]]


@st.composite
def districts(draw: st.DrawFn) -> DistrictSpec:
    schools = draw(st.lists(st.sampled_from(["Elm", "Ash", "Oak", "École", "elm"]), min_size=1, max_size=5))
    fates = draw(
        st.lists(st.sampled_from(["keep", "archive", "merge"]), min_size=len(schools), max_size=len(schools))
    )
    teachers = draw(
        st.lists(
            st.tuples(st.frozensets(st.integers(0, len(schools) - 1), max_size=3), st.booleans()),
            max_size=25,
        )
    )
    return DistrictSpec(schools, fates, teachers)


@pytest.fixture
def roster(database_url: Callable[[str], str]) -> Iterator[Roster]:
    with running_roster(database_url("roster")) as running:
        yield running


def write_district(roster: Roster, spec: DistrictSpec) -> str:
    """Create the district the spec describes through the roster's own RPCs."""
    client = roster.client
    district_id = f"x{uuid.uuid4().hex}"
    client.create_district(district_id, "Export")
    schools = client.batch_create_schools(district_id, spec.schools)
    if spec.teachers:
        stored = client.batch_upsert_teachers(
            district_id,
            [
                pb.TeacherInput(
                    given_name=f"Given {n}",
                    family_name="Family",
                    email=f"t{n}@export.example",
                    school_ids=[schools[i].school_id for i in sorted(indexes)],
                )
                for n, (indexes, _) in enumerate(spec.teachers)
            ],
        )
        archived = [t.teacher_id for t, (_, gone) in zip(stored, spec.teachers, strict=True) if gone]
        if archived:
            client.batch_archive_teachers(district_id, archived, "left the district")
    kept = [s for s, fate in zip(schools, spec.school_fates, strict=True) if fate == "keep"]
    for school, fate in zip(schools, spec.school_fates, strict=True):
        if fate == "archive":
            client.archive_school(school.name)
        elif fate == "merge" and kept:
            client.merge_schools(school.name, kept[0].name)
    return district_id


def test_the_export_holds_exactly_what_the_paged_reads_return(roster: Roster) -> None:
    # Rows of another district sit in the same tables; the export must never show them.
    write_district(roster, DistrictSpec(["Other"], ["keep"], [(frozenset({0}), False)]))

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(districts())
    def check(spec: DistrictSpec) -> None:
        district_id = write_district(roster, spec)
        paged_schools = {s.school_id: s for s in roster.client.list_schools(district_id)}
        paged_teachers = {t.teacher_id: t for t in roster.client.list_teachers(district_id)}

        chunks = list(roster.client.export_district_roster(district_id))

        head, *rest = chunks
        assert not head.schools and not head.teachers
        assert (head.total_schools, head.total_teachers) == (len(paged_schools), len(paged_teachers))
        assert all(c.total_schools == 0 and c.total_teachers == 0 for c in rest)
        exported_schools = [s for c in rest for s in c.schools]
        exported_teachers = [t for c in rest for t in c.teachers]
        first_teacher_chunk = next((i for i, c in enumerate(rest) if c.teachers), len(rest))
        assert not any(c.schools for c in rest[first_teacher_chunk:]), "a school came after a teacher"
        assert [s.school_id for s in exported_schools] == sorted(paged_schools)
        assert [t.teacher_id for t in exported_teachers] == sorted(paged_teachers)
        assert {s.school_id: s for s in exported_schools} == paged_schools
        assert {t.teacher_id: t for t in exported_teachers} == paged_teachers

    check()


def test_an_unknown_district_is_not_found_and_an_empty_one_exports_only_its_totals(roster: Roster) -> None:
    with pytest.raises(NotFoundError):
        list(roster.client.export_district_roster("no-such-district"))
    roster.client.create_district("empty", "Empty")

    chunks = list(roster.client.export_district_roster("empty"))

    assert len(chunks) == 1
    assert (chunks[0].total_schools, chunks[0].total_teachers) == (0, 0)
    assert not chunks[0].schools and not chunks[0].teachers


def test_a_large_district_streams_in_chunks_of_at_most_a_thousand(roster: Roster) -> None:
    roster.client.create_district("large", "Large")
    school = roster.client.batch_create_schools("large", ["Elm"])[0]
    for start in (0, 1000):
        roster.client.batch_upsert_teachers(
            "large",
            [
                pb.TeacherInput(
                    given_name="Given",
                    family_name="Family",
                    email=f"t{n}@large.example",
                    school_ids=[school.school_id],
                )
                for n in range(start, start + 1000)
            ],
        )

    chunks = list(roster.client.export_district_roster("large"))

    assert chunks[0].total_teachers == 2000
    assert [len(c.schools) for c in chunks] == [0, 1, 0, 0]
    assert [len(c.teachers) for c in chunks] == [0, 0, 1000, 1000]
