"""Renaming, archiving and merging schools through change sets: all or nothing, ABORTED on conflicts."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import grpc
import pytest
from ew.roster.v1 import roster_pb2 as pb
from sqlalchemy import select

from services.roster import repository
from tests.support.roster import Roster, refused, roster_with_districts


@pytest.fixture
def roster(database_url: Callable[[str], str]) -> Iterator[Roster]:
    with roster_with_districts(database_url("roster")) as running:
        yield running


def rename(school_id: str, name: str) -> pb.Change:
    return pb.Change(rename_school=pb.RenameSchoolChange(school_id=school_id, display_name=name))


def archive_school(school_id: str) -> pb.Change:
    return pb.Change(archive_school=pb.ArchiveSchoolChange(school_id=school_id))


def merge(school_id: str, into: str) -> pb.Change:
    return pb.Change(merge_school=pb.MergeSchoolChange(school_id=school_id, into_school_id=into))


def teacher(email: str, *school_ids: str) -> pb.TeacherInput:
    return pb.TeacherInput(given_name="Ada", family_name="Byron", email=email, school_ids=school_ids)


def commit(roster: Roster, *changes: pb.Change) -> pb.ChangeSet:
    change_set = roster.client.create_change_set("d1")
    roster.client.stage_changes(change_set.name, 1, changes)
    return roster.client.commit_change_set(change_set.name)


def test_rename_archive_and_merge_land_in_one_commit(roster: Roster) -> None:
    client = roster.client
    lincoln, lincoln_copy, oak, elm = client.batch_create_schools("d1", ["Lincoln", "Lincon", "Oak", "Elm"])
    both, only_copy, copy_and_oak, elm_only = client.batch_upsert_teachers(
        "d1",
        [
            teacher("both@example.org", lincoln.school_id, lincoln_copy.school_id),
            teacher("copy@example.org", lincoln_copy.school_id),
            teacher("oak@example.org", lincoln_copy.school_id, oak.school_id),
            teacher("elm@example.org", elm.school_id),
        ],
    )

    committed = commit(
        roster,
        merge(lincoln_copy.school_id, lincoln.school_id),
        rename(oak.school_id, "Oak Hill"),
        archive_school(elm.school_id),
    )

    assert (committed.applied.schools_merged, committed.applied.schools_renamed) == (1, 1)
    assert committed.applied.schools_archived == 1
    merged = client.get_school(lincoln_copy.name)
    assert merged.state == pb.SCHOOL_STATE_ARCHIVED and merged.merged_into_school_id == lincoln.school_id
    assert client.get_school(oak.name).display_name == "Oak Hill"
    archived = client.get_school(elm.name)
    assert archived.state == pb.SCHOOL_STATE_ARCHIVED and not archived.merged_into_school_id
    assert client.get_school(lincoln.name).state == pb.SCHOOL_STATE_ACTIVE
    # Members of the merged school are in the target once, keep their other schools, and the
    # archived school's teacher stays active with that school.
    assert list(client.get_teacher(both.name).school_ids) == [lincoln.school_id]
    assert list(client.get_teacher(only_copy.name).school_ids) == [lincoln.school_id]
    assert set(client.get_teacher(copy_and_oak.name).school_ids) == {lincoln.school_id, oak.school_id}
    kept = client.get_teacher(elm_only.name)
    assert list(kept.school_ids) == [elm.school_id] and kept.state == pb.TEACHER_STATE_ACTIVE
    assert client.get_teacher(both.name).revision == both.revision + 1
    assert client.get_teacher(elm_only.name).revision == elm_only.revision


def test_a_school_changed_since_the_change_set_read_it_aborts_the_commit(roster: Roster) -> None:
    client = roster.client
    oak, elm = client.batch_create_schools("d1", ["Oak", "Elm"])
    renaming = client.create_change_set("d1")
    client.stage_changes(renaming.name, 1, [rename(oak.school_id, "Oak Hill")])
    merging = client.create_change_set("d1")
    client.stage_changes(merging.name, 1, [merge(elm.school_id, oak.school_id)])
    commit(roster, archive_school(oak.school_id))

    for change_set in (renaming, merging):
        message = refused(roster, grpc.StatusCode.ABORTED, client.commit_change_set, change_set.name)
        assert oak.school_id in message
        assert client.get_change_set(change_set.name).state == pb.CHANGE_SET_STATE_ABANDONED
    assert client.get_school(oak.name).display_name == "Oak"
    assert client.get_school(elm.name).state == pb.SCHOOL_STATE_ACTIVE
    roster.server.change_sets.clean_up()
    assert roster.staged_rows() == 0


def test_a_teacher_change_set_read_before_a_merge_moved_the_teacher_is_aborted(roster: Roster) -> None:
    client = roster.client
    oak, elm = client.batch_create_schools("d1", ["Oak", "Elm"])
    ada = client.batch_upsert_teachers("d1", [teacher("ada@example.org", elm.school_id)])[0]
    renaming = client.create_change_set("d1")
    upsert = pb.UpsertTeacherChange(
        ref="ada",
        given_name="Adele",
        family_name="Byron",
        email="ada@example.org",
        schools=[pb.SchoolRef(school_id=elm.school_id)],
    )
    client.stage_changes(renaming.name, 1, [pb.Change(upsert_teacher=upsert)])
    commit(roster, merge(elm.school_id, oak.school_id))

    message = refused(roster, grpc.StatusCode.ABORTED, client.commit_change_set, renaming.name)
    assert ada.teacher_id in message
    assert list(client.get_teacher(ada.name).school_ids) == [oak.school_id]


def test_bad_school_changes_are_refused_and_stage_nothing(roster: Roster) -> None:
    client = roster.client
    oak, elm = client.batch_create_schools("d1", ["Oak", "Elm"])
    other = client.batch_create_schools("d2", ["Other"])[0]
    commit(roster, archive_school(elm.school_id))
    change_set = client.create_change_set("d1")
    stage = client.stage_changes
    cases = [
        (grpc.StatusCode.INVALID_ARGUMENT, [merge(oak.school_id, oak.school_id)], "into itself"),
        (grpc.StatusCode.INVALID_ARGUMENT, [rename(oak.school_id, " ")], "display_name"),
        (
            grpc.StatusCode.INVALID_ARGUMENT,
            [rename(oak.school_id, "A"), archive_school(oak.school_id)],
            "same",
        ),
        (grpc.StatusCode.NOT_FOUND, [archive_school(other.school_id)], other.school_id),
        (grpc.StatusCode.FAILED_PRECONDITION, [rename(elm.school_id, "Elm 2")], "archived"),
        (grpc.StatusCode.FAILED_PRECONDITION, [merge(oak.school_id, elm.school_id)], "archived"),
    ]
    for number, (code, changes, needle) in enumerate(cases, start=1):
        message = refused(roster, code, stage, change_set.name, number, changes)
        assert needle in message
    stage(change_set.name, 10, [rename(oak.school_id, "Oak Hill")])
    message = refused(
        roster, grpc.StatusCode.INVALID_ARGUMENT, stage, change_set.name, 11, [archive_school(oak.school_id)]
    )
    assert "earlier batch" in message
    assert client.get_change_set(change_set.name).staged.schools_renamed == 1


def restore(teacher: pb.Teacher, *school_ids: str, archived_for: str = "") -> pb.Change:
    return pb.Change(
        restore_teacher=pb.RestoreTeacherChange(
            teacher_id=teacher.teacher_id,
            given_name="Restored",
            family_name=teacher.family_name,
            email=teacher.email,
            school_ids=school_ids,
            archived=bool(archived_for),
            archive_reason=archived_for,
        )
    )


def remove_teacher(teacher_id: str) -> pb.Change:
    return pb.Change(remove_teacher=pb.RemoveTeacherChange(teacher_id=teacher_id))


def remove_school(school_id: str) -> pb.Change:
    return pb.Change(remove_school=pb.RemoveSchoolChange(school_id=school_id))


def test_undo_changes_restore_and_remove_teachers_and_remove_schools_unless_still_used(
    roster: Roster,
) -> None:
    client = roster.client
    oak, elm, empty, used = client.batch_create_schools("d1", ["Oak", "Elm", "Empty", "Used"])
    ada, bob, cy, dee = client.batch_upsert_teachers(
        "d1",
        [
            teacher("ada@example.org", oak.school_id),
            teacher("bob@example.org", elm.school_id),
            teacher("cy@example.org", elm.school_id),
            teacher("dee@example.org", used.school_id),
        ],
    )
    client.batch_archive_teachers("d1", [bob.teacher_id], "Left")

    committed = commit(
        roster,
        restore(ada, elm.school_id, archived_for="Undone"),
        restore(bob, oak.school_id),
        remove_teacher(cy.teacher_id),
        remove_school(empty.school_id),
        remove_school(used.school_id),
    )

    applied = committed.applied
    assert (applied.teachers_restored, applied.teachers_removed, applied.schools_removed) == (2, 1, 2)
    archived = client.get_teacher(ada.name)
    assert (archived.state, archived.archive_reason, archived.given_name) == (
        pb.TEACHER_STATE_ARCHIVED,
        "Undone",
        "Restored",
    )
    assert list(archived.school_ids) == [elm.school_id]
    active = client.get_teacher(bob.name)
    assert (active.state, active.archive_reason, list(active.school_ids)) == (
        pb.TEACHER_STATE_ACTIVE,
        "",
        [oak.school_id],
    )
    assert {t.teacher_id for t in client.list_teachers("d1")} == {
        ada.teacher_id,
        bob.teacher_id,
        dee.teacher_id,
    }
    remaining = {s.school_id: s.state for s in client.list_schools("d1")}
    assert empty.school_id not in remaining and remaining[used.school_id] == pb.SCHOOL_STATE_ARCHIVED


def test_an_undo_of_a_teacher_changed_meanwhile_is_aborted(roster: Roster) -> None:
    client = roster.client
    ada, cy = client.batch_upsert_teachers("d1", [teacher("ada@example.org"), teacher("cy@example.org")])
    for undo, teacher_id in ((restore(ada), ada.teacher_id), (remove_teacher(cy.teacher_id), cy.teacher_id)):
        change_set = client.create_change_set("d1")
        client.stage_changes(change_set.name, 1, [undo])
        client.batch_archive_teachers("d1", [teacher_id], "Changed by a person meanwhile")
        message = refused(roster, grpc.StatusCode.ABORTED, client.commit_change_set, change_set.name)
        assert teacher_id in message and "changed after the change set read it" in message


def test_convenience_rpcs_rename_archive_and_merge_with_the_change_set_rules(roster: Roster) -> None:
    client = roster.client
    oak, elm, ash = client.batch_create_schools("d1", ["Oak", "Elm", "Ash"])
    ada = client.batch_upsert_teachers("d1", [teacher("ada@example.org", elm.school_id, ash.school_id)])[0]

    assert client.rename_school(oak.name, "Oak Hill").display_name == "Oak Hill"
    merged = client.merge_schools(elm.name, oak.name)
    assert (
        merged.merged.state == pb.SCHOOL_STATE_ARCHIVED
        and merged.merged.merged_into_school_id == oak.school_id
    )
    assert set(client.get_teacher(ada.name).school_ids) == {oak.school_id, ash.school_id}
    archived = client.archive_school(ash.name)
    assert archived.state == pb.SCHOOL_STATE_ARCHIVED
    assert set(client.get_teacher(ada.name).school_ids) == {oak.school_id, ash.school_id}

    message = refused(roster, grpc.StatusCode.FAILED_PRECONDITION, client.rename_school, ash.name, "Ash 2")
    assert "archived" in message
    other = client.batch_create_schools("d2", ["Other"])[0]
    refused(roster, grpc.StatusCode.INVALID_ARGUMENT, client.merge_schools, oak.name, other.name)
    # The refused one's change set was abandoned, not left open.
    with roster.engine.connect() as conn:
        states = set(conn.execute(select(repository.change_sets.c.state)).scalars())
    assert states == {"COMMITTED", "ABANDONED"}
