"""The teacher diff: what an upsert changes, computed without a database."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from services.roster.domain import Teacher, TeacherInput, TeacherState
from services.roster.teacher_diff import TEACHER_FIELDS, TeacherDiff, diff_teacher

NOW = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
ADA = Teacher(
    teacher_id="t1",
    district_id="d1",
    given_name="Ada",
    family_name="Lovelace",
    email="ada@example.org",
    school_ids=("s1", "s2"),
    state=TeacherState.ACTIVE,
    archive_time=None,
    archive_reason=None,
    create_time=NOW,
    update_time=NOW,
    revision=3,
)
SAME = TeacherInput("Ada", "Lovelace", "ada@example.org", ("s1", "s2"))


def test_a_new_teacher_is_created_with_every_field_and_school() -> None:
    diff = diff_teacher(None, SAME)
    assert diff == TeacherDiff(creates=True, fields=TEACHER_FIELDS, schools_added=("s1", "s2"))
    assert not diff.updates and not diff.schools_changed and not diff.reactivates


def test_an_identical_request_changes_nothing() -> None:
    diff = diff_teacher(ADA, SAME)
    assert diff == TeacherDiff(creates=False)
    assert not diff.updates and not diff.schools_changed


def test_changed_fields_are_named_and_the_email_compares_exactly() -> None:
    diff = diff_teacher(ADA, replace(SAME, family_name="King", email="Ada@example.org"))
    assert diff.fields == ("family_name", "email")
    assert diff.updates and not diff.schools_changed


def test_schools_added_and_removed_are_sorted_and_order_does_not_matter() -> None:
    diff = diff_teacher(ADA, replace(SAME, school_ids=("s9", "s3", "s2")))
    assert (diff.schools_added, diff.schools_removed) == (("s3", "s9"), ("s1",))
    assert diff.schools_changed and diff.updates and diff.fields == ()
    assert not diff_teacher(ADA, replace(SAME, school_ids=("s2", "s1"))).schools_changed
    assert diff_teacher(ADA, replace(SAME, school_ids=())).schools_removed == ("s1", "s2")


def test_reactivation_needs_the_request_and_an_archived_teacher_and_is_not_an_update() -> None:
    archived = replace(ADA, state=TeacherState.ARCHIVED, archive_time=NOW, archive_reason="left")
    assert diff_teacher(archived, SAME, reactivate=True) == TeacherDiff(creates=False, reactivates=True)
    assert not diff_teacher(archived, SAME, reactivate=True).updates
    assert not diff_teacher(archived, SAME).reactivates
    assert not diff_teacher(ADA, SAME, reactivate=True).reactivates
    assert not diff_teacher(None, SAME, reactivate=True).reactivates
