"""The sync planner: every rule an administrator relies on when a sync changes the staff list."""

from __future__ import annotations

import dataclasses
import random

import pytest

from services.sync.planning.emails import email_key, is_valid_email
from services.sync.planning.planner import (
    DISABLED_IN_CLASSLINK,
    NO_LONGER_IN_CLASSLINK,
    TOBEDELETED_IN_CLASSLINK,
    Approval,
    EwRoster,
    EwTeacher,
    FieldChange,
    GuardConfig,
    MappingOrigin,
    MappingState,
    Plan,
    PlanItemKind,
    SchoolRef,
    SkipReason,
    SourceProblem,
    SourceRoster,
    SyncState,
    plan_items,
    plan_sync,
)
from tests.support.planner_world import World, school, teacher


def skipped(plan: Plan) -> dict[str, SkipReason]:
    return {skip.classlink_id: skip.reason for skip in plan.skips}


def archived(plan: Plan) -> dict[str, str]:
    return {archive.ew_teacher_id: archive.reason for archive in plan.archives}


def test_a_first_sync_creates_schools_and_adds_teachers_with_all_their_schools() -> None:
    world = World(
        schools=[school("s1", "North Elementary"), school("s2", "South High")],
        teachers=[teacher("t1", "", "s1"), teacher("t2", "", "s1", "s2", "district-office")],
    )

    plan = world.sync()

    assert [(create.classlink_id, create.name) for create in plan.school_creates] == [
        ("s1", "North Elementary"),
        ("s2", "South High"),
    ]
    assert {add.classlink_id: add.schools for add in plan.adds} == {
        "t1": (SchoolRef(create_ref="s1"),),
        "t2": (SchoolRef(create_ref="s1"), SchoolRef(create_ref="s2")),
    }
    assert world.ew_teachers["ew-t2"].school_ids == {"ew-s1", "ew-s2"}
    assert plan.summary.schools_created == 2 and plan.summary.teachers_added == 2
    assert not plan.guard.needs_review


def test_a_school_with_an_identical_normalised_name_is_mapped_not_created() -> None:
    world = World(
        schools=[school("s1", "Lincoln  Elementary School."), school("s2", "Lincoln HS")],
        teachers=[teacher("t1", "", "s1")],
        ew_schools={"e1": "lincoln elementary school", "e2": "Lincoln High School"},
    )

    plan = world.sync()

    assert plan.new_auto_mappings == (("s1", "e1"),)
    assert [create.classlink_id for create in plan.school_creates] == ["s2"]
    assert plan.adds[0].schools == (SchoolRef(school_id="e1"),)


def test_a_renamed_classlink_school_keeps_its_mapping() -> None:
    world = World(schools=[school("s1", "Hoover Middle")], teachers=[teacher("t1", "", "s1")])
    world.sync()

    world.schools = [school("s1", "Herbert Hoover Middle School")]
    plan = world.plan()

    assert not plan.has_changes
    assert plan.summary.teachers_unchanged == 1


def test_a_school_an_admin_unmapped_is_created_even_when_a_namesake_exists() -> None:
    world = World(
        schools=[school("s1", "Garfield High")],
        teachers=[teacher("t1", "", "s1")],
        ew_schools={"e1": "Garfield High"},
        mappings={"s1": MappingState(None, MappingOrigin.UNMAPPED)},
    )

    plan = world.sync()

    assert plan.new_auto_mappings == ()
    assert [create.classlink_id for create in plan.school_creates] == ["s1"]


def test_a_mapping_to_a_vanished_ew_school_does_not_point_teachers_at_it() -> None:
    world = World(
        schools=[school("s1", "Garfield High")],
        teachers=[teacher("t1", "", "s1")],
        mappings={"s1": MappingState("gone", MappingOrigin.MANUAL)},
    )

    plan = world.sync()

    assert [create.classlink_id for create in plan.school_creates] == ["s1"]


def test_a_tobedeleted_school_is_not_created_and_its_teachers_leave_it() -> None:
    world = World(
        schools=[school("s1", "Old Annex"), school("s2", "Main Campus")],
        teachers=[teacher("t1", "", "s1", "s2")],
    )
    world.sync()

    world.schools = [school("s1", "Old Annex", status="tobedeleted"), school("s2", "Main Campus")]
    world.schools.append(school("s3", "Closed Before Sync", status="tobedeleted"))
    plan = world.sync()

    assert plan.school_creates == ()
    assert [(update.classlink_id, update.schools_removed_names) for update in plan.updates] == [
        ("t1", ("Old Annex",))
    ]
    assert plan.summary.membership_changes == 1 and plan.summary.teachers_updated == 1


def test_existing_ew_teachers_are_matched_by_email_linked_and_updated() -> None:
    world = World(
        schools=[school("s1", "Lincoln Elementary")],
        teachers=[
            teacher("t1", " ANN.LEE@District.example ", "s1", given="Ann", family="Lee"),
            teacher("t2", "bo@district.example", "s1", given="Bo", family="Diaz"),
        ],
        ew_schools={"e1": "Lincoln Elementary"},
    )
    world.ew_teachers["x1"] = EwTeacher(
        "x1", "Ann", "Lee", "ann.lee@district.example", frozenset({"e1"}), True
    )
    world.ew_teachers["x2"] = EwTeacher("x2", "Bob", "Diaz", "bo@district.example", frozenset(), True)

    plan = world.sync()

    assert plan.new_links == (("t1", "x1"), ("t2", "x2"))
    assert plan.adds == () and plan.archives == ()
    updates = {update.ew_teacher_id: update for update in plan.updates}
    assert updates["x1"].field_changes == (
        FieldChange("email", "ann.lee@district.example", "ANN.LEE@District.example"),
    )
    assert updates["x2"].field_changes == (FieldChange("given_name", "Bob", "Bo"),)
    assert updates["x2"].schools_added_names == ("Lincoln Elementary",)
    assert plan.summary.membership_changes == 1


def test_a_linked_teacher_follows_an_email_change_in_classlink() -> None:
    world = World(teachers=[teacher("t1", "old@district.example")])
    world.sync()

    world.teachers = [teacher("t1", "new@district.example")]
    plan = world.sync()

    assert [update.field_changes for update in plan.updates] == [
        (FieldChange("email", "old@district.example", "new@district.example"),)
    ]
    assert plan.adds == () and plan.archives == ()


def test_users_sharing_an_email_in_any_case_are_all_skipped_and_their_teacher_stays() -> None:
    world = World(teachers=[teacher("t1", "pat@district.example", given="Pat")])
    world.sync()
    before = dict(world.ew_teachers)

    world.teachers = [
        teacher("t1", "pat@district.example", given="Patricia"),
        teacher("t2", "PAT@district.example "),
        teacher("t3", "other@district.example"),
    ]
    plan = world.plan()

    assert skipped(plan) == {"t1": SkipReason.DUPLICATE_EMAIL, "t2": SkipReason.DUPLICATE_EMAIL}
    assert plan.updates == () and plan.archives == ()
    assert [add.classlink_id for add in plan.adds] == ["t3"]
    world.apply(plan)
    assert world.ew_teachers["ew-t1"] == before["ew-t1"]


def test_a_placeholder_email_shared_by_many_rows_skips_them_all_with_a_short_reason() -> None:
    world = World(teachers=[teacher(f"t{n:04d}", "noreply@district.example") for n in range(2000)])

    plan = world.plan()

    assert plan.summary.skipped == ((SkipReason.DUPLICATE_EMAIL, 2000),)
    assert plan.skips[0].detail == "Shares its email with ClassLink user(s) t0001, t0002, t0003 and 1996 more"
    assert not plan.has_changes


@pytest.mark.parametrize(
    ("email", "reason"),
    [
        (None, SkipReason.MISSING_EMAIL),
        ("  ", SkipReason.MISSING_EMAIL),
        ("pat at school", SkipReason.INVALID_EMAIL),
    ],
)
def test_a_row_with_a_bad_email_is_skipped_and_never_archives_its_teacher(
    email: str | None, reason: SkipReason
) -> None:
    world = World(teachers=[teacher("t1", "pat@district.example")])
    world.sync()

    world.teachers = [teacher("t1", email)]
    plan = world.plan()

    assert skipped(plan) == {"t1": reason}
    assert not plan.has_changes
    assert plan.summary.skipped == ((reason, 1),)


def test_names_ew_would_reject_never_fail_the_sync() -> None:
    world = World(
        schools=[school("s1", "   "), school("s2", "  Long " + "x" * 300)],
        teachers=[
            teacher("t1", "", "s1", "s2", given=" Ann ", family="Lee" + "e" * 300),
            teacher("t2", "", given="  "),
        ],
    )

    plan = world.sync()

    # A school row without a name is unreadable: never created, reported in the summary's notes.
    assert [create.name for create in plan.school_creates] == ["Long " + "x" * 195]
    assert plan.adds[0].schools == (SchoolRef(create_ref="s2"),)
    assert plan.summary.notes == (
        "1 ClassLink school row could not be read; their teachers keep their schools.",
    )
    assert (plan.adds[0].given_name, len(plan.adds[0].family_name)) == ("Ann", 200)
    assert plan.adds[0].warnings == ("The family name was shortened to 200 characters, the most EW accepts.",)
    assert skipped(plan) == {"t2": SkipReason.MISSING_NAME}


def test_a_hand_made_ew_teacher_with_a_skipped_rows_email_is_protected() -> None:
    world = World(teachers=[teacher("t1", "pat@district.example"), teacher("t2", "PAT@district.example")])
    world.hand_made("h1", "pat@district.example")

    plan = world.plan()

    assert plan.archives == ()


def test_an_unreadable_row_is_reported_and_protects_its_linked_teacher() -> None:
    world = World(teachers=[teacher("t1"), teacher("t2")])
    world.sync()

    world.teachers = [teacher("t2")]
    world.problems = [SourceProblem("t1", "email: not a string"), SourceProblem(None, "row 7: not JSON")]
    plan = world.plan()

    assert [(skip.classlink_id, skip.reason, skip.detail) for skip in plan.skips] == [
        ("", SkipReason.UNREADABLE_ROW, "row 7: not JSON"),
        ("t1", SkipReason.UNREADABLE_ROW, "email: not a string"),
    ]
    assert not plan.has_changes


def test_absent_tobedeleted_disabled_and_hand_made_teachers_are_archived_with_a_reason() -> None:
    world = World(teachers=[teacher("t1"), teacher("t2"), teacher("t3"), teacher("t4")])
    world.sync()
    world.hand_made("h1", "visitor@district.example")

    world.teachers = [teacher("t1", status="tobedeleted"), teacher("t2", enabled=False), teacher("t4")]
    plan = world.plan()

    assert archived(plan) == {
        "ew-t1": TOBEDELETED_IN_CLASSLINK,
        "ew-t2": DISABLED_IN_CLASSLINK,
        "ew-t3": NO_LONGER_IN_CLASSLINK,
        "h1": NO_LONGER_IN_CLASSLINK,
    }
    assert plan.skips == ()
    assert {archive.ew_teacher_id: archive.classlink_id for archive in plan.archives}["ew-t3"] == "t3"


def test_a_departed_teacher_already_archived_stays_as_is() -> None:
    world = World(teachers=[teacher("t1")])
    world.sync()
    world.teachers = [teacher("t1", status="tobedeleted")]
    world.sync()

    world.teachers = [teacher("t1", enabled=False, status="tobedeleted")]

    assert not world.plan().has_changes


def test_a_departed_row_matched_by_email_names_the_reason_for_an_unlinked_teacher() -> None:
    world = World(teachers=[teacher("t1", "gone@district.example", status="tobedeleted")])
    world.hand_made("h1", "Gone@District.example")

    plan = world.plan()

    assert archived(plan) == {"h1": TOBEDELETED_IN_CLASSLINK}


def test_a_teacher_who_leaves_is_archived_and_reactivated_on_return_with_changes() -> None:
    world = World(schools=[school("s1", "North"), school("s2", "South")], teachers=[teacher("t1", "", "s1")])
    world.sync()

    world.teachers = []
    assert archived(world.sync()) == {"ew-t1": NO_LONGER_IN_CLASSLINK}
    assert not world.ew_teachers["ew-t1"].active

    world.teachers = [teacher("t1", "", "s2", family="Married")]
    plan = world.sync()

    assert [reactivation.ew_teacher_id for reactivation in plan.reactivations] == ["ew-t1"]
    reactivation = plan.reactivations[0]
    assert reactivation.field_changes == (FieldChange("family_name", "Family t1", "Married"),)
    assert (reactivation.schools_added_names, reactivation.schools_removed_names) == (("South",), ("North",))
    assert plan.summary.teachers_reactivated == 1 and plan.summary.teachers_updated == 0
    assert world.ew_teachers["ew-t1"].active


def test_an_archived_hand_made_teacher_comes_back_when_classlink_lists_the_email() -> None:
    world = World(teachers=[teacher("t1", "back@district.example")])
    world.hand_made("h1", "back@district.example", active=False)

    plan = world.sync()

    assert [reactivation.ew_teacher_id for reactivation in plan.reactivations] == ["h1"]
    assert plan.new_links == (("t1", "h1"),)


def test_an_email_owned_by_a_teacher_linked_to_another_present_user_is_not_stolen() -> None:
    world = World(teachers=[teacher("t1", "pat@district.example")])
    world.sync()

    # t1 now has no email (skipped, protects its teacher); t2 arrives with t1's old email.
    world.teachers = [teacher("t1", None), teacher("t2", "pat@district.example")]
    plan = world.plan()

    assert skipped(plan) == {"t1": SkipReason.MISSING_EMAIL, "t2": SkipReason.EMAIL_TAKEN}
    assert not plan.has_changes and plan.new_links == ()


def test_an_email_of_a_teacher_whose_linked_user_left_is_relinked() -> None:
    world = World(teachers=[teacher("t1", "pat@district.example")])
    world.sync()

    world.teachers = [
        teacher("t1", "pat@district.example", status="tobedeleted"),
        teacher("t9", "pat@district.example"),
    ]
    plan = world.sync()

    assert plan.new_links == (("t9", "ew-t1"),)
    assert plan.archives == () and plan.skips == () and plan.adds == ()
    assert world.links == {"t9": "ew-t1"}


def test_an_email_change_onto_another_teachers_email_is_skipped_and_protects_both() -> None:
    world = World(teachers=[teacher("t1", "one@district.example")])
    world.sync()
    world.hand_made("h1", "two@district.example")

    world.teachers = [teacher("t1", "two@district.example")]
    plan = world.plan()

    assert skipped(plan) == {"t1": SkipReason.EMAIL_TAKEN}
    assert not plan.has_changes


def test_a_stale_link_falls_back_to_email() -> None:
    world = World(teachers=[teacher("t1", "pat@district.example")], links={"t1": "deleted-teacher"})
    world.hand_made("h1", "pat@district.example")

    plan = world.sync()

    assert plan.new_links == (("t1", "h1"),)
    assert plan.adds == ()


def district_with(active: int) -> World:
    world = World(teachers=[teacher(f"t{n:03d}") for n in range(active)])
    world.sync()
    return world


@pytest.mark.parametrize(
    ("active", "archiving", "threshold", "needs_review"),
    [
        (20, 4, 5, False),
        (20, 5, 5, False),
        (20, 6, 5, True),
        (50, 5, 5, False),
        (50, 6, 5, True),
        (100, 10, 10, False),
        (100, 11, 10, True),
        (105, 11, 10, True),
        (110, 11, 11, False),
    ],
)
def test_the_guard_allows_ten_percent_with_a_minimum_of_five(
    active: int, archiving: int, threshold: int, needs_review: bool
) -> None:
    world = district_with(active)
    world.teachers = world.teachers[archiving:]

    guard = world.plan().guard

    assert (guard.archive_count, guard.active_count, guard.threshold) == (archiving, active, threshold)
    assert guard.needs_review is needs_review
    assert str(archiving) in guard.message


def test_the_guard_counts_only_archives_that_were_not_approved() -> None:
    world = district_with(20)
    world.teachers = world.teachers[8:]
    plan = world.plan()
    assert plan.guard.needs_review

    approved = frozenset(archive.ew_teacher_id for archive in plan.archives)
    assert not world.plan(approved=Approval(archives=approved)).guard.needs_review
    # 8 archives, threshold 5: approving 3 leaves 5 that count, approving 2 leaves 6.
    assert not world.plan(approved=Approval(archives=frozenset(sorted(approved)[:3]))).guard.needs_review
    assert world.plan(approved=Approval(archives=frozenset(sorted(approved)[:2]))).guard.needs_review


def test_the_guard_threshold_is_configurable() -> None:
    world = district_with(40)
    world.teachers = world.teachers[3:]

    guard = world.plan(GuardConfig(max_fraction=0.05, minimum=2)).guard

    assert (guard.threshold, guard.needs_review) == (2, True)


def test_identical_inputs_in_any_order_give_identical_plans() -> None:
    world = World(
        schools=[school(f"s{n}", f"School {n}") for n in range(5)],
        teachers=[teacher(f"t{n}", "", f"s{n % 5}", f"s{(n + 2) % 5}") for n in range(40)],
    )
    world.teachers += [teacher("d1", "dup@x.example"), teacher("d2", "DUP@x.example"), teacher("m1", None)]
    for n in range(10):
        world.hand_made(f"h{n}", f"t{n * 3}@district.example")
    first = world.plan()

    random.Random(7).shuffle(world.teachers)
    random.Random(8).shuffle(world.schools)
    world.ew_teachers = dict(reversed(list(world.ew_teachers.items())))

    assert world.plan() == first
    assert list(plan_items(world.plan())) == list(plan_items(first))


def test_plan_items_list_every_change_in_a_stable_order_with_display_data() -> None:
    world = World(schools=[school("s1", "North")], teachers=[teacher("t1", "", "s1"), teacher("t2")])
    world.sync()
    world.schools.append(school("s2", "South"))
    world.teachers = [
        teacher("t1", "", "s1", "s2", given="Annie"),
        teacher("t3", "", "s2", given="Cy", family="Ng"),
        teacher("t4", None, given="No", family="Mail"),
    ]

    items = list(plan_items(world.plan()))

    assert [(item.kind, item.classlink_id, item.ew_id) for item in items] == [
        (PlanItemKind.CREATE_SCHOOL, "s2", ""),
        (PlanItemKind.ADD_TEACHER, "t3", ""),
        (PlanItemKind.UPDATE_TEACHER, "t1", "ew-t1"),
        (PlanItemKind.ARCHIVE_TEACHER, "t2", "ew-t2"),
        (PlanItemKind.SKIP, "t4", ""),
    ]
    add, update, archive, skip = items[1:]
    assert (add.display_name, add.email, add.schools_added) == ("Cy Ng", "t3@district.example", ("South",))
    assert update.field_changes == (FieldChange("given_name", "Ann", "Annie"),)
    assert update.schools_added == ("South",) and update.schools_removed == ()
    assert archive.reason == NO_LONGER_IN_CLASSLINK
    assert (skip.skip_reason, skip.display_name, skip.email) == (SkipReason.MISSING_EMAIL, "No Mail", "")


def test_a_mid_sized_district_converges_and_counts_every_change() -> None:
    schools = [school(f"s{n:03d}", f"School {n}") for n in range(60)]
    teachers = [teacher(f"t{n:05d}", "", f"s{n % 60:03d}", f"s{(n * 7) % 60:03d}") for n in range(3000)]
    world = World(schools=schools, teachers=teachers)
    first = world.sync()
    assert (first.summary.schools_created, first.summary.teachers_added) == (60, 3000)

    renamed = [
        dataclasses.replace(row, family_name="Renamed") if n % 10 == 0 else row
        for n, row in enumerate(teachers)
    ]
    moved = [
        dataclasses.replace(row, org_sourced_ids=("s000",)) if n % 15 == 1 else row
        for n, row in enumerate(renamed)
    ]
    world.teachers = [row for n, row in enumerate(moved) if n % 1000 != 999]
    world.teachers += [teacher("dup1", "same@district.example"), teacher("dup2", "Same@district.example")]

    plan = world.sync()

    summary = plan.summary
    assert summary.teachers_updated == 300 + 200
    assert summary.membership_changes == 200
    assert summary.teachers_archived == 3
    assert summary.teachers_unchanged == 3000 - 3 - 500
    assert summary.skipped == ((SkipReason.DUPLICATE_EMAIL, 2),)
    assert not plan.guard.needs_review


@pytest.mark.parametrize(
    ("email", "valid"),
    [
        ("ann.lee@district.example", True),
        ("  Ann.Lee+staff@Sub.District.example ", True),
        ("ann@localhost", False),
        ("ann@@district.example", False),
        ("@district.example", False),
        ("ann@district..example", False),
        ("ann@.example", False),
        ("ann lee@district.example", False),
        ("ann\u00a0lee@district.example", False),
        ("", False),
        ("a@" + "b" * 250 + ".example", False),
    ],
)
def test_email_validation_is_pragmatic(email: str, valid: bool) -> None:
    assert is_valid_email(email) is valid


def test_email_keys_are_trimmed_and_case_folded() -> None:
    assert email_key("  Ann.Lee@District.EXAMPLE ") == email_key("ann.lee@district.example")
    assert email_key("STRASSE@x.example") == email_key("straße@x.example")


def test_the_planner_tells_how_many_people_it_has_decided_up_to_all_of_them() -> None:
    teachers = [teacher(f"t{n:05}", "", "s1") for n in range(5_000)]
    heard: list[tuple[int, int]] = []

    plan = plan_sync(
        SourceRoster([school("s1", "North")], teachers, [], [], []),
        EwRoster([], []),
        SyncState(),
        lambda decided, persons: heard.append((decided, persons)),
    )

    assert len(plan.adds) == 5_000
    assert {persons for _, persons in heard} == {5_000}
    decided = [count for count, _ in heard]
    assert decided == sorted(decided) and decided[-1] == 5_000 and len(heard) >= 3
