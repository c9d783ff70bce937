"""Properties of the planner over generated districts and EW rosters (Hypothesis).

The generator draws from small pools of emails, names and schools on purpose, so that shared
emails, same and different names, split rows, stale links, EW-only schools and unreadable rows
meet often in one district.
"""

from __future__ import annotations

import dataclasses
import random
from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.sync.emails import email_key
from services.sync.planner import (
    Approval,
    EwTeacher,
    GuardConfig,
    MappingOrigin,
    MappingState,
    Plan,
    SchoolProblem,
    SkipReason,
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


PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _copy(world: World) -> World:
    return dataclasses.replace(
        world,
        schools=list(world.schools),
        teachers=list(world.teachers),
        ew_schools=dict(world.ew_schools),
        ew_teachers=dict(world.ew_teachers),
        mappings=dict(world.mappings),
        links=dict(world.links),
    )


def _owned(world: World, plan: Plan) -> set[str]:
    """EW schools mapped from a ClassLink school (before or by this plan): the sync's to manage."""
    mapped = {m.ew_school_id for m in world.mappings.values() if m.origin != MappingOrigin.UNMAPPED}
    return {school_id for school_id in mapped if school_id} | {ew for _, ew in plan.new_auto_mappings}


@PROPERTY
@given(worlds())
def test_applying_a_plan_and_planning_again_changes_nothing(world: World) -> None:
    plan = world.plan()
    world.apply(plan)
    if any(skip.reason is SkipReason.EMAIL_TAKEN for skip in plan.skips):
        # An email that moves from one person to another is free only once the first sync has
        # landed (RosterService refuses an email another teacher still holds): the second lands it.
        world.apply(world.plan())

    keys = Counter(email_key(teacher.email) for teacher in world.ew_teachers.values())
    assert all(count == 1 for count in keys.values()), "two EW teachers would share an email"
    again = world.plan()
    assert not again.has_changes, again
    assert again.new_links == () and again.new_auto_mappings == ()


@PROPERTY
@given(worlds(), st.randoms(use_true_random=False))
def test_the_plan_does_not_depend_on_input_order(world: World, rng: random.Random) -> None:
    shuffled = _copy(world)
    for rows in (shuffled.schools, shuffled.teachers, shuffled.problems, shuffled.staff):
        rng.shuffle(rows)
    shuffled.ew_teachers = dict(rng.sample(sorted(world.ew_teachers.items()), len(world.ew_teachers)))
    shuffled.links = dict(rng.sample(sorted(world.links.items()), len(world.links)))

    assert shuffled.plan() == world.plan()


@PROPERTY
@given(worlds())
def test_a_skipped_or_unreadable_row_never_archives_the_teacher_it_names(world: World) -> None:
    plan = world.plan()

    archived = {archive.ew_teacher_id for archive in plan.archives}
    by_key = {email_key(t.email): t.teacher_id for t in world.ew_teachers.values()}
    named: set[str] = set()
    for skip in plan.skips:
        if skip.classlink_id in world.links:
            named.add(world.links[skip.classlink_id])
        if skip.email.strip() and email_key(skip.email) in by_key:
            named.add(by_key[email_key(skip.email)])
    assert not named & archived


@PROPERTY
@given(worlds())
def test_memberships_in_schools_the_sync_does_not_own_are_never_removed(world: World) -> None:
    plan = world.plan()

    owned = _owned(world, plan)
    for upsert in (*plan.updates, *plan.reactivations):
        assert set(upsert.schools_removed) <= owned
        assert upsert.ew_teacher_id is not None
        before = world.ew_teachers[upsert.ew_teacher_id].school_ids
        kept = {ref.school_id for ref in upsert.schools if ref.school_id}
        assert before - owned <= kept


@PROPERTY
@given(worlds(), st.integers(min_value=0, max_value=3))
def test_no_plan_archives_or_strips_more_than_the_guard_allows_without_review(
    world: World, minimum: int
) -> None:
    plan = world.plan(guard=GuardConfig(max_fraction=0.1, minimum=minimum))

    stripped = [u for u in plan.updates if u.schools_removed]
    mapped = any(m.ew_school_id in world.ew_schools for m in world.mappings.values())
    no_school = not any(school.status == "active" and school.name.strip() for school in world.schools)
    if not plan.guard.needs_review:
        assert len(plan.archives) <= plan.guard.threshold
        assert len(stripped) <= plan.guard.threshold
        assert not (mapped and no_school)
    approval = Approval(
        archives=frozenset(a.ew_teacher_id for a in plan.archives),
        membership_removals=frozenset(u.ew_teacher_id or "" for u in stripped),
    )
    assert not world.plan(
        guard=GuardConfig(max_fraction=0.1, minimum=minimum), approved=approval
    ).guard.needs_review
