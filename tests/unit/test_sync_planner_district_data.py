"""The planner on district data shaped as real OneRoster servers send it (issue 8's rules 1-5)."""

from __future__ import annotations

import pytest

from services.sync.planning.planner import (
    Approval,
    EwTeacher,
    GuardConfig,
    MappingOrigin,
    MappingState,
    PlanItemKind,
    SchoolProblem,
    SchoolRef,
    SkipReason,
    SourceProblem,
    SourceStaff,
    plan_items,
)
from tests.support.planner_world import World, school, teacher

EMAIL = "pat@district.example"


def staff(sourced_id: str, email: str, given: str, family: str, role: str = "administrator") -> SourceStaff:
    return SourceStaff(sourced_id, role, given, family, email, "active", True)


def ew_teacher(world: World, teacher_id: str, email: str, *school_ids: str, active: bool = True) -> None:
    world.ew_teachers[teacher_id] = EwTeacher(teacher_id, "Pat", "Lee", email, frozenset(school_ids), active)


# -- Rule 1: one person, several rows ------------------------------------------------------------


def test_rows_of_one_person_per_school_become_one_teacher_with_every_school() -> None:
    world = World(
        schools=[school("s1", "North"), school("s2", "South")],
        teachers=[
            teacher("edfi-1", EMAIL, "s1", given="Pat", family="Lee"),
            teacher("edfi-2", " PAT@District.example ", "s2", given="pat", family="LEE"),
        ],
    )

    plan = world.sync()

    assert plan.skips == ()
    (add,) = plan.adds
    assert add.classlink_ids == ("edfi-1", "edfi-2")
    assert add.schools == (SchoolRef(create_ref="s1"), SchoolRef(create_ref="s2"))
    assert world.links == {"edfi-1": "ew-edfi-1", "edfi-2": "ew-edfi-1"}


def test_one_row_of_a_person_leaving_keeps_the_teacher_and_drops_only_that_school() -> None:
    world = World(
        schools=[school("s1", "North"), school("s2", "South")],
        teachers=[
            teacher("r1", EMAIL, "s1", given="Pat", family="Lee"),
            teacher("r2", EMAIL, "s2", given="Pat", family="Lee"),
        ],
    )
    world.sync()

    world.teachers = [world.teachers[0]]
    plan = world.sync()

    assert plan.archives == ()
    (update,) = plan.updates
    assert update.schools_removed_names == ("South",)


def test_a_later_sync_matches_the_person_through_any_of_its_sourced_ids() -> None:
    world = World(
        schools=[school("s1", "North")], teachers=[teacher("r2", EMAIL, "s1", given="Pat", family="Lee")]
    )
    world.sync()

    # ClassLink now also sends the person's row for another school, under a smaller sourcedId.
    world.schools.append(school("s2", "South"))
    world.teachers.insert(0, teacher("r1", EMAIL, "s2", given="Pat", family="Lee"))
    plan = world.sync()

    assert plan.adds == () and plan.archives == ()
    (update,) = plan.updates
    assert update.ew_teacher_id == "ew-r2" and update.schools_added_names == ("South",)
    assert world.links == {"r1": "ew-r2", "r2": "ew-r2"}


@pytest.mark.parametrize(
    ("given", "family"),
    [("PAT", "o'lee"), ("Pat ", "O’Lee"), ("Ｐａｔ", "OLee"), ("Pat", "O'Lee\u00a0"), ("pat", "o.lee")],
)
def test_names_are_the_same_after_nfkc_case_folding_and_without_punctuation(given: str, family: str) -> None:
    world = World(
        teachers=[
            teacher("r1", EMAIL, given="Pat", family="O'Lee"),
            teacher("r2", EMAIL, given=given, family=family),
        ]
    )

    plan = world.sync()

    assert [add.classlink_ids for add in plan.adds] == [("r1", "r2")]


def test_an_administrator_account_of_the_same_person_changes_nothing() -> None:
    world = World(
        teachers=[teacher("t1", EMAIL, given="Pat", family="Lee")], staff=[staff("a1", EMAIL, "PAT", "Lee")]
    )

    plan = world.sync()

    assert plan.skips == () and [add.classlink_id for add in plan.adds] == ["t1"]
    assert plan.adds[0].classlink_ids == ("t1",)


def test_another_persons_account_with_the_email_is_a_conflict_that_protects_the_teacher() -> None:
    world = World(teachers=[teacher("t1", EMAIL, given="Pat", family="Lee")])
    world.sync()

    world.staff = [staff("a1", EMAIL, "Sam", "Lee", role="aide")]
    plan = world.plan()

    assert [(skip.classlink_id, skip.reason, skip.detail) for skip in plan.skips] == [
        ("t1", SkipReason.DUPLICATE_EMAIL, "Shares its email with ClassLink user(s) a1 (aide)")
    ]
    assert plan.archives == () and not plan.has_changes


def test_teacher_rows_sharing_an_email_under_different_names_are_all_skipped() -> None:
    world = World(
        teachers=[
            teacher("t1", EMAIL, given="Pat", family="Lee"),
            teacher("t2", EMAIL, given="Sam", family="Lee"),
        ]
    )
    ew_teacher(world, "e1", EMAIL)

    plan = world.plan()

    assert {skip.classlink_id: skip.reason for skip in plan.skips} == {
        "t1": SkipReason.DUPLICATE_EMAIL,
        "t2": SkipReason.DUPLICATE_EMAIL,
    }
    assert plan.archives == ()


def test_a_departed_or_nameless_staff_account_never_conflicts() -> None:
    gone = SourceStaff("a1", "administrator", "Sam", "Lee", EMAIL, "tobedeleted", True)
    disabled = SourceStaff("a2", "administrator", "Kim", "Lee", EMAIL, "active", False)
    nameless = SourceStaff("a3", "proctor", "", "", EMAIL, "active", True)
    world = World(
        teachers=[teacher("t1", EMAIL, given="Pat", family="Lee")], staff=[gone, disabled, nameless]
    )

    plan = world.sync()

    assert plan.skips == () and len(plan.adds) == 1


# -- Rule 2: memberships the sync does not own ---------------------------------------------------


def test_memberships_in_ew_only_schools_are_kept_on_update_reactivation_and_no_change() -> None:
    world = World(
        schools=[school("s1", "North"), school("s2", "South")],
        teachers=[
            teacher("t1", "one@district.example", "s2"),
            teacher("t2", "two@district.example", "s1"),
            teacher("t3", "three@district.example", "s1"),
        ],
        ew_schools={"e1": "North", "office": "District Office"},
        mappings={"s1": MappingState("e1", MappingOrigin.MANUAL)},
    )
    world.ew_teachers = {
        "u1": EwTeacher("u1", "Ann", "Family t1", "one@district.example", frozenset({"e1", "office"}), True),
        "u2": EwTeacher("u2", "Ann", "Family t2", "two@district.example", frozenset({"office"}), False),
        "u3": EwTeacher(
            "u3", "Ann", "Family t3", "three@district.example", frozenset({"e1", "office"}), True
        ),
    }

    plan = world.sync()

    (update,) = plan.updates
    assert update.schools_removed_names == ("North",) and update.schools_kept_names == ("District Office",)
    (reactivation,) = plan.reactivations
    assert reactivation.schools_kept_names == ("District Office",)
    assert plan.unchanged == 1
    assert {t.teacher_id: t.school_ids for t in world.ew_teachers.values()} == {
        "u1": {"office", "ew-s2"},
        "u2": {"office", "e1"},
        "u3": {"office", "e1"},
    }
    items = {item.ew_id: item for item in plan_items(plan) if item.kind is PlanItemKind.UPDATE_TEACHER}
    assert items["u1"].schools_kept == ("District Office",)


def test_memberships_in_a_school_an_administrator_unmapped_are_kept() -> None:
    world = World(
        schools=[school("s1", "North")],
        teachers=[teacher("t1", "one@district.example", "s1")],
        ew_schools={"e1": "North (old)"},
        mappings={"s1": MappingState(None, MappingOrigin.UNMAPPED)},
    )
    world.ew_teachers["u1"] = EwTeacher(
        "u1", "Ann", "Family t1", "one@district.example", frozenset({"e1"}), True
    )

    plan = world.sync()

    (update,) = plan.updates
    assert update.schools_removed == () and update.schools_kept_names == ("North (old)",)


# -- Rule 3: rows without a name, names too long, control characters ------------------------------


def test_a_nameless_row_is_skipped_and_protects_the_teacher_with_its_email() -> None:
    world = World(teachers=[teacher("t1", EMAIL, given="Pat", family="   ")])
    ew_teacher(world, "e1", EMAIL)

    plan = world.plan()

    assert [(s.classlink_id, s.reason) for s in plan.skips] == [("t1", SkipReason.MISSING_NAME)]
    assert plan.archives == ()


def test_control_characters_are_removed_from_names_with_a_warning() -> None:
    world = World(teachers=[teacher("t1", EMAIL, given="Pa\x00t\x85", family="Lee\x1b")])

    plan = world.sync()

    (add,) = plan.adds
    assert (add.given_name, add.family_name) == ("Pat", "Lee")
    assert add.warnings == (
        "Control characters were removed from the given name.",
        "Control characters were removed from the family name.",
    )


@pytest.mark.parametrize(
    "email", ["pat\x00@district.example", "pat@district.example\x85", "pa\tt@district.example"]
)
def test_an_email_with_a_control_character_is_invalid_and_protects_nothing_else(email: str) -> None:
    world = World(teachers=[teacher("t1", email, given="Pat", family="Lee")])
    ew_teacher(world, "e1", "pat@district.example")
    world.links["t1"] = "e1"

    plan = world.plan()

    assert [(s.classlink_id, s.reason) for s in plan.skips] == [("t1", SkipReason.INVALID_EMAIL)]
    assert plan.archives == () and not plan.has_changes


# -- Rule 4: rows that cannot be read ------------------------------------------------------------


def test_an_unreadable_row_with_an_email_but_no_sourced_id_protects_that_teacher() -> None:
    world = World(problems=[SourceProblem(None, "sourcedId is missing", email=" PAT@district.example")])
    ew_teacher(world, "e1", EMAIL)

    plan = world.plan()

    assert [(s.reason, s.email) for s in plan.skips] == [(SkipReason.UNREADABLE_ROW, " PAT@district.example")]
    assert plan.archives == ()


def test_rows_without_any_identity_stop_every_archive_but_nothing_else() -> None:
    world = World(
        schools=[school("s1", "North")], teachers=[teacher("t1", "", "s1"), teacher("t2", "", "s1")]
    )
    world.sync()
    world.teachers = [teacher("t1", "", "s1"), teacher("t3", "", "s1")]
    world.problems = [
        SourceProblem(None, "row is not a JSON object"),
        SourceProblem(None, "no sourcedId or email"),
    ]

    plan = world.plan()

    assert plan.archives == () and plan.summary.teachers_archived == 0
    assert [add.classlink_id for add in plan.adds] == ["t3"]
    note = "2 ClassLink teacher rows could not be read; no one was archived."
    assert plan.summary.notes == (note,)
    assert plan.guard.message.endswith(note)


# -- Rule 5: the membership guard and unreadable schools ------------------------------------------


def _district(size: int) -> World:
    world = World(
        schools=[school("s1", "North"), school("s2", "South")],
        teachers=[teacher(f"t{n:03d}", "", "s1", "s2") for n in range(size)],
    )
    world.sync()
    return world


def test_stripping_memberships_from_more_teachers_than_the_guard_allows_needs_review() -> None:
    world = _district(100)
    world.teachers = [teacher(t.sourced_id, "", "s1") if n < 11 else t for n, t in enumerate(world.teachers)]

    plan = world.plan()

    assert plan.guard.needs_review and plan.guard.membership_removal_count == 11
    assert "remove school memberships from 11 of 100 active teachers" in plan.guard.message
    listed = frozenset(u.ew_teacher_id or "" for u in plan.updates if u.schools_removed)
    assert not world.plan(approved=Approval(membership_removals=listed)).guard.needs_review
    world.teachers = world.teachers[:10] + [
        teacher(t.sourced_id, "", "s1", "s2") for t in world.teachers[10:]
    ]
    assert not world.plan().guard.needs_review


def test_a_pull_with_no_active_school_while_schools_are_mapped_needs_review() -> None:
    world = _district(3)
    world.schools = [school("s1", "North", status="tobedeleted")]

    plan = world.plan(guard=GuardConfig(minimum=50))

    assert plan.guard.needs_review
    assert "ClassLink lists no active school while the district has mapped schools" in plan.guard.message
    assert not world.plan(guard=GuardConfig(minimum=50), approved=Approval()).guard.needs_review


def test_the_teachers_of_an_unreadable_mapped_school_keep_that_membership() -> None:
    world = _district(3)
    world.schools = [school("s1", "North"), school("s2", "")]

    plan = world.plan()

    assert not plan.has_changes
    assert plan.summary.notes == (
        "1 ClassLink school row could not be read; their teachers keep their schools.",
    )


def test_a_school_row_without_identity_means_no_teacher_loses_a_school() -> None:
    world = _district(3)
    world.schools = [school("s1", "North")]
    world.school_problems = [SchoolProblem(None, "sourcedId is missing")]
    world.teachers.append(teacher("t900", "", "s1"))

    plan = world.plan()

    assert [add.classlink_id for add in plan.adds] == ["t900"]
    assert plan.updates == () and plan.guard.membership_removal_count == 0
