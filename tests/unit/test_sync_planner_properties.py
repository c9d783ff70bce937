"""Properties of the planner over generated districts and EW rosters (Hypothesis).

The districts come from ``tests.support.planner_strategies``.
"""

from __future__ import annotations

import dataclasses
import random
from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.sync.planning.emails import email_key
from services.sync.planning.planner import (
    Approval,
    GuardConfig,
    MappingOrigin,
    Plan,
    SkipReason,
)
from tests.support.planner_strategies import worlds
from tests.support.planner_world import World

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


def _emails_unique(world: World) -> bool:
    keys = Counter(email_key(teacher.email) for teacher in world.ew_teachers.values())
    return all(count == 1 for count in keys.values())


@PROPERTY
@given(worlds())
def test_applying_a_plan_and_planning_again_changes_nothing(world: World) -> None:
    plan = world.plan()
    world.apply(plan)

    assert _emails_unique(world), "two EW teachers would share an email"
    again = world.plan()
    if any(skip.reason is SkipReason.EMAIL_TAKEN for skip in plan.skips):
        return  # an email moving between people: the next property
    assert not again.has_changes, again
    assert again.new_links == () and again.new_auto_mappings == ()


@PROPERTY
@given(worlds())
def test_emails_moving_between_people_settle_within_a_few_syncs(world: World) -> None:
    # RosterService refuses an email another teacher still holds, so an email is taken over only
    # once the sync that frees it has landed: a chain of moves takes one sync per link.
    for _ in range(4):
        plan = world.plan()
        if not plan.has_changes and not plan.new_links and not plan.new_auto_mappings:
            return
        world.apply(plan)
        assert _emails_unique(world), "two EW teachers would share an email"
    raise AssertionError(f"still changing after 4 syncs: {world.plan()}")


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
