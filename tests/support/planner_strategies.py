"""Hypothesis strategies for the planner's inputs: whole districts drawn from small pools.

The pools are small on purpose, so that shared emails, same and different names, split rows, stale
links, EW-only schools and unreadable rows meet often in one district.
"""

from __future__ import annotations

from hypothesis import strategies as st

from services.sync.planning.planner import (
    EwTeacher,
    MappingOrigin,
    MappingState,
    SchoolProblem,
    SourceProblem,
    SourceSchool,
    SourceStaff,
    SourceTeacher,
)
from tests.support.planner_world import World

SCHOOL_IDS = [f"s{n}" for n in range(5)]
SCHOOL_NAMES = ["North Elementary", "South High", "East Middle", "West Academy"] * 3 + [""]
EW_SCHOOLS = {"e0": "North Elementary", "e1": "South High", "office": "District Office", "e3": "Old Name"}
GOOD_EMAILS = ["pat@d.example", "PAT@d.example ", "sam@d.example", "kim@d.example", "lee@d.example"]
BAD_EMAILS = ["bad-address", "nul\x00@d.example", "  "]
EMAILS = GOOD_EMAILS * 4 + BAD_EMAILS
GIVEN = ["Pat", "PAT", "pat", "Sam"] * 3 + [" ", "Ann\x1b"]
FAMILY = ["Lee", "lee.", "Ng"] * 3 + ["Lee" + "e" * 210, ""]
STATUS = st.sampled_from(["active", "active", "active", "tobedeleted"])

schools = st.builds(SourceSchool, st.sampled_from(SCHOOL_IDS), st.sampled_from(SCHOOL_NAMES), STATUS)
teacher_rows = st.builds(
    SourceTeacher,
    sourced_id=st.sampled_from([f"t{n}" for n in range(12)]),
    given_name=st.sampled_from(GIVEN),
    family_name=st.sampled_from(FAMILY),
    email=st.sampled_from([*EMAILS, None]),
    status=STATUS,
    enabled=st.sampled_from([True, True, True, False]),
    org_sourced_ids=st.lists(st.sampled_from([*SCHOOL_IDS, "district"]), max_size=3).map(tuple),
)
staff_rows = st.builds(
    SourceStaff,
    sourced_id=st.sampled_from([f"a{n}" for n in range(3)] + ["t0"]),
    role=st.sampled_from(["administrator", "aide", "proctor"]),
    given_name=st.sampled_from(GIVEN),
    family_name=st.sampled_from(FAMILY),
    email=st.sampled_from(EMAILS),
    status=STATUS,
    enabled=st.just(True),
)
# Anonymous rows (no sourcedId, no email) stop every archive: keep them rare so archives are tested.
problems = st.builds(
    SourceProblem,
    sourced_id=st.sampled_from([*(f"t{n}" for n in range(14)), None]),
    reason_text=st.just("row could not be read"),
    email=st.sampled_from([*EMAILS, None]),
)
school_problems = st.builds(
    SchoolProblem, st.sampled_from([*SCHOOL_IDS, None]), st.just("school row could not be read")
)


@st.composite
def ew_teachers(draw: st.DrawFn) -> dict[str, EwTeacher]:
    """EW's teachers: email keys unique, as the roster's constraint makes them."""
    emails = draw(
        st.lists(
            st.sampled_from(
                [
                    "pat@d.example",
                    "sam@d.example",
                    "kim@d.example",
                    "lee@d.example",
                    "ann@d.example",
                    "hand@d.example",
                ]
            ),
            unique=True,
            max_size=6,
        )
    )
    found: dict[str, EwTeacher] = {}
    for n, email in enumerate(emails):
        found[f"ew{n}"] = EwTeacher(
            teacher_id=f"ew{n}",
            given_name=draw(st.sampled_from(["Pat", "Sam", "Kim"])),
            family_name=draw(st.sampled_from(["Lee", "Ng"])),
            email=email,
            # Mostly the schools ClassLink's names map to, so syncs often take memberships away.
            school_ids=frozenset(
                draw(st.lists(st.sampled_from(["e0", "e1", "e0", "e1", "office", "e3"]), max_size=3))
            ),
            active=draw(st.booleans()),
        )
    return found


@st.composite
def worlds(draw: st.DrawFn) -> World:
    """A district: ClassLink's rows, EW's roster and the sync's mappings and links."""
    teachers = {row.sourced_id: row for row in draw(st.lists(teacher_rows, max_size=10))}
    classlink_schools = {school.sourced_id: school for school in draw(st.lists(schools, max_size=5))}
    ew = draw(ew_teachers())
    mapping_targets = st.one_of(
        st.builds(
            MappingState,
            st.sampled_from(sorted(EW_SCHOOLS)),
            st.sampled_from([MappingOrigin.AUTO, MappingOrigin.MANUAL, MappingOrigin.CREATED]),
        ),
        st.just(MappingState(None, MappingOrigin.UNMAPPED)),
    )
    raw_mappings = draw(st.dictionaries(st.sampled_from(SCHOOL_IDS), mapping_targets, max_size=4))
    # One EW school is mapped from at most one ClassLink school, as MapSchools enforces.
    mappings: dict[str, MappingState] = {}
    held: set[str | None] = set()
    for classlink_id, mapping in sorted(raw_mappings.items()):
        if mapping.ew_school_id is None or mapping.ew_school_id not in held:
            held.add(mapping.ew_school_id)
            mappings[classlink_id] = mapping
    links = draw(
        st.dictionaries(
            st.sampled_from([f"t{n}" for n in range(14)]), st.sampled_from([*ew, "gone"]), max_size=6
        )
    )
    return World(
        schools=list(classlink_schools.values()),
        teachers=list(teachers.values()),
        problems=draw(st.lists(problems, max_size=2)),
        staff=list({row.sourced_id: row for row in draw(st.lists(staff_rows, max_size=3))}.values()),
        # One district in four has an unreadable school row.
        school_problems=[draw(school_problems)] if draw(st.integers(0, 3)) == 0 else [],
        ew_schools=dict(EW_SCHOOLS),
        ew_teachers=ew,
        mappings=mappings,
        links=links,
    )
