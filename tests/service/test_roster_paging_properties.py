"""Keyset paging of ListTeachers and ListSchools through real gRPC calls, over generated rosters (Hypothesis).

One roster server runs per test function (Hypothesis examples cannot share a function-scoped
fixture); every example writes its own district, so examples never see each other's rows.

Emails are drawn from a small pool of case variants, padded copies and near-duplicates
(" pat", "Pat@D.Example ", "pa.t", "pat1", "straße"/"STRASSE"), kept unique by email key (trimmed,
case-folded) as the roster requires; school names repeat and differ only in case. Reading every
page must give each matching row exactly once, in the documented order: teachers by email key then
id, schools by display name then id. On SQLite (``make test``) that order is compared with Python's
(code point) order; on another database, whose collation may order text differently, it is compared
with one unpaged read of the same list.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Iterator
from typing import TypeVar

import grpc
import pytest
from ew.roster.v1 import roster_pb2 as pb
from ew.roster.v1 import roster_service_pb2 as rpc
from ew.roster.v1 import roster_service_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.roster.validation import email_key
from tests.support.roster import Roster, running_roster

Stub = roster_service_pb2_grpc.RosterServiceStub
Request = TypeVar("Request")

LOCALS = ["pat", "Pat", "PAT", "pa.t", "pat1", "pat-", "p", "sam", "Sam", "kim_o", "straße"]
LOCALS += ["STRASSE", "strasse", "zoë", "ZOË"]
DOMAINS = ["d.example", "D.Example", "d.example.org"]
SCHOOL_NAMES = ["Elm", "elm", "Elm", "Ash", "ash", "Oak", "Oak Grove", "École", "Zed"]
STATES = [pb.TEACHER_STATE_ACTIVE, pb.TEACHER_STATE_ARCHIVED]

PADDING = st.sampled_from(["", "", " ", "  "])
emails = st.builds(
    lambda before, local, domain, after: f"{before}{local}@{domain}{after}",
    PADDING,
    st.sampled_from(LOCALS),
    st.sampled_from(DOMAINS),
    PADDING,
)
page_sizes = st.integers(1, 7)


@dataclasses.dataclass(frozen=True)
class TeacherSpec:
    """One generated teacher: its email as written, its schools (indexes) and whether it is archived."""

    email: str
    schools: frozenset[int]
    archived: bool


@st.composite
def teacher_specs(draw: st.DrawFn, school_count: int) -> list[TeacherSpec]:
    written = draw(st.lists(emails, max_size=10, unique_by=email_key))
    return [
        TeacherSpec(
            email,
            frozenset(draw(st.sets(st.integers(0, school_count - 1), max_size=3)))
            if school_count
            else frozenset(),
            draw(st.booleans()),
        )
        for email in written
    ]


@st.composite
def rosters(draw: st.DrawFn) -> tuple[list[str], list[TeacherSpec]]:
    """School names and teachers of one district."""
    schools = draw(st.lists(st.sampled_from(SCHOOL_NAMES), max_size=4))
    return schools, draw(teacher_specs(len(schools)))


@pytest.fixture
def roster(database_url: Callable[[str], str]) -> Iterator[Roster]:
    with running_roster(database_url("roster")) as running:
        running.client.create_district("other", "Another District")
        yield running


@pytest.fixture
def stub(roster: Roster) -> Iterator[Stub]:
    with roster.channel() as channel:
        yield roster_service_pb2_grpc.RosterServiceStub(channel)


def new_district(roster: Roster) -> str:
    district_id = f"p{uuid.uuid4().hex}"
    roster.client.create_district(district_id, "Paging")
    return district_id


def python_order(roster: Roster) -> bool:
    """Whether the database orders text by code point, as Python does (SQLite's BINARY collation)."""
    return roster.engine.dialect.name == "sqlite"


@dataclasses.dataclass(frozen=True)
class TeacherQuery:
    """A ListTeachers query: the parent and filters that a page token is bound to."""

    parent: str
    school_id: str = ""
    state: pb.TeacherState.ValueType = pb.TEACHER_STATE_UNSPECIFIED
    email: str = ""

    def request(self, page_size: int = 0, page_token: str = "") -> rpc.ListTeachersRequest:
        return rpc.ListTeachersRequest(
            parent=self.parent,
            page_size=page_size,
            page_token=page_token,
            school_id=self.school_id,
            state=self.state,
            email=self.email,
        )


def read_teachers(stub: Stub, query: TeacherQuery, page_size: int, expected_total: int) -> list[pb.Teacher]:
    """Every page of ListTeachers for ``query``, each checked for size and total, concatenated."""
    teachers: list[pb.Teacher] = []
    token = ""
    for _ in range(expected_total // page_size + 2):
        page = stub.ListTeachers(query.request(page_size, token))
        assert len(page.teachers) <= page_size
        assert page.total_size == expected_total, query
        teachers += page.teachers
        token = page.next_page_token
        if not token:
            return teachers
        assert page.teachers, f"a page with a next_page_token was empty ({query})"
    raise AssertionError(f"more pages than {expected_total} teachers need at {page_size} a page ({query})")


def read_schools(stub: Stub, parent: str, page_size: int, expected_total: int) -> list[pb.School]:
    """Every page of ListSchools, each checked for size and total, concatenated."""
    schools: list[pb.School] = []
    token = ""
    for _ in range(expected_total // page_size + 2):
        request = rpc.ListSchoolsRequest(parent=parent, page_size=page_size, page_token=token)
        page = stub.ListSchools(request)
        assert len(page.schools) <= page_size and page.total_size == expected_total
        schools += page.schools
        token = page.next_page_token
        if not token:
            return schools
        assert page.schools, "a page with a next_page_token was empty"
    raise AssertionError(f"more pages than {expected_total} schools need at {page_size} a page")


def refused_token(call: Callable[[Request], object], request: Request) -> str:
    """Assert ``call(request)`` is INVALID_ARGUMENT about its page token; return the details."""
    with pytest.raises(grpc.RpcError) as info:
        call(request)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, info.value.details()
    details = str(info.value.details())
    assert "page_token" in details
    return details


def test_teacher_pages_concatenate_to_every_matching_teacher_once_in_email_key_order(
    roster: Roster, stub: Stub
) -> None:
    @settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(rosters(), page_sizes, st.sampled_from(LOCALS))
    def check(world: tuple[list[str], list[TeacherSpec]], page_size: int, looked_up: str) -> None:
        school_names, specs = world
        district = new_district(roster)
        parent = f"districts/{district}"
        school_ids = (
            [s.school_id for s in roster.client.batch_create_schools(district, school_names)]
            if school_names
            else []
        )
        inputs = [
            pb.TeacherInput(
                given_name="Ada",
                family_name="Lovelace",
                email=spec.email,
                school_ids=[school_ids[i] for i in spec.schools],
            )
            for spec in specs
        ]
        stored = roster.client.batch_upsert_teachers(district, inputs) if inputs else []
        archived = [t.teacher_id for t, spec in zip(stored, specs, strict=True) if spec.archived]
        if archived:
            roster.client.batch_archive_teachers(district, archived, "left the district")

        expected = {
            t.teacher_id: (
                spec.email.strip(),
                sorted(school_ids[i] for i in spec.schools),
                pb.TEACHER_STATE_ARCHIVED if spec.archived else pb.TEACHER_STATE_ACTIVE,
            )
            for t, spec in zip(stored, specs, strict=True)
        }
        key_of = {t.teacher_id: email_key(spec.email) for t, spec in zip(stored, specs, strict=True)}

        def matching(query: TeacherQuery) -> list[str]:
            ids = [
                i
                for i, (_, schools, state) in expected.items()
                if (not query.school_id or query.school_id in schools) and query.state in (0, state)
            ]
            return sorted(ids, key=lambda i: (key_of[i], i))

        everyone = TeacherQuery(parent)
        queries = [everyone, *(TeacherQuery(parent, state=state) for state in STATES)]
        queries += [TeacherQuery(parent, school_id=school_id) for school_id in school_ids]
        if school_ids:
            queries += [TeacherQuery(parent, school_ids[0], state) for state in STATES]
        for query in queries:
            want = matching(query)
            got = read_teachers(stub, query, page_size, len(want))
            ids = [t.teacher_id for t in got]
            assert len(ids) == len(set(ids)), f"a teacher appeared twice with {query}: {ids}"
            assert set(ids) == set(want), (
                f"missing {set(want) - set(ids)}, extra {set(ids) - set(want)} ({query})"
            )
            if python_order(roster):
                assert ids == want, f"not in email key then id order with {query}"
            else:
                whole = stub.ListTeachers(query.request(page_size=1000))
                assert ids == [t.teacher_id for t in whole.teachers]
            for teacher in got:
                shown = (teacher.email, list(teacher.school_ids), teacher.state)
                assert shown == expected[teacher.teacher_id]

        # The email filter matches the one teacher whose key it is, however it is written.
        wanted = f"  {looked_up.upper()}@D.EXAMPLE "
        want = [i for i in expected if key_of[i] == email_key(wanted)]
        got = read_teachers(stub, TeacherQuery(parent, email=wanted), page_size, len(want))
        assert [t.teacher_id for t in got] == want

    check()


def test_school_pages_concatenate_to_every_school_once_in_name_order(roster: Roster, stub: Stub) -> None:
    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(st.sampled_from(SCHOOL_NAMES), max_size=12), page_sizes)
    def check(names: list[str], page_size: int) -> None:
        district = new_district(roster)
        created = roster.client.batch_create_schools(district, names) if names else []
        got = read_schools(stub, f"districts/{district}", page_size, len(created))
        ids = [s.school_id for s in got]
        assert len(ids) == len(set(ids)), f"a school appeared twice: {ids}"
        assert set(ids) == {s.school_id for s in created}
        if python_order(roster):
            assert [(s.display_name, s.school_id) for s in got] == sorted(
                (s.display_name, s.school_id) for s in created
            )
        else:
            whole = stub.ListSchools(rpc.ListSchoolsRequest(parent=f"districts/{district}", page_size=1000))
            assert ids == [s.school_id for s in whole.schools]

    check()


def test_a_page_token_is_refused_with_another_filter_or_parent(roster: Roster, stub: Stub) -> None:
    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(emails, min_size=2, max_size=6, unique_by=email_key), st.data())
    def check(written: list[str], data: st.DataObject) -> None:
        district = new_district(roster)
        parent = f"districts/{district}"
        schools = roster.client.batch_create_schools(district, ["Elm", "Ash"])
        school_id, other_school = schools[0].school_id, schools[1].school_id
        inputs = [
            pb.TeacherInput(given_name="Ada", family_name="Lovelace", email=e, school_ids=[school_id])
            for e in written
        ]
        roster.client.batch_upsert_teachers(district, inputs)
        query = TeacherQuery(
            parent,
            school_id=data.draw(st.sampled_from(["", school_id]), label="school filter"),
            state=data.draw(
                st.sampled_from([pb.TEACHER_STATE_UNSPECIFIED, pb.TEACHER_STATE_ACTIVE]), label="state"
            ),
        )
        first = stub.ListTeachers(query.request(page_size=1))
        token = first.next_page_token
        assert token, "more teachers than the page size give a next_page_token"

        other_states = [s for s in [pb.TEACHER_STATE_UNSPECIFIED, *STATES] if s != query.state]
        changed = [
            dataclasses.replace(query, parent="districts/other"),
            dataclasses.replace(query, school_id=other_school if query.school_id else school_id),
            *(dataclasses.replace(query, state=state) for state in other_states),
            dataclasses.replace(query, email=written[1]),
        ]
        if query.school_id:
            changed.append(dataclasses.replace(query, school_id=""))
        for other in changed:
            refused_token(stub.ListTeachers, other.request(page_size=1, page_token=token))
        # The same token still works with the query it came from, whatever the page size.
        again = stub.ListTeachers(query.request(page_size=7, page_token=token))
        assert first.teachers[0].teacher_id not in {t.teacher_id for t in again.teachers}
        assert len(again.teachers) == first.total_size - 1

        # A teacher page's token is no school page's token, and a school token belongs to its district.
        refused_token(stub.ListSchools, rpc.ListSchoolsRequest(parent=parent, page_token=token))
        school_token = stub.ListSchools(rpc.ListSchoolsRequest(parent=parent, page_size=1)).next_page_token
        assert school_token
        refused_token(stub.ListTeachers, rpc.ListTeachersRequest(parent=parent, page_token=school_token))
        other_parent = rpc.ListSchoolsRequest(parent="districts/other", page_token=school_token)
        refused_token(stub.ListSchools, other_parent)

    check()
