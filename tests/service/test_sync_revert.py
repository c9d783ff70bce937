"""Reverting a run through the real stack: sandbox over HTTP, roster and sync gRPC servers, client library."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import grpc
import pytest
from ew.client.errors import RosterError
from ew.roster.v1 import roster_pb2
from ew.sync.v1 import sync_pb2

from services.oneroster_sandbox.truth import syncable_teachers
from tests.support.db_dump import TableDump
from tests.support.sync_stack import SyncStack, sync_stack

pytestmark = pytest.mark.timeout(180)

Roster = tuple[frozenset[tuple[object, ...]], frozenset[tuple[object, ...]]]


@pytest.fixture
def stack(database_url: Callable[[str], str]) -> Iterator[SyncStack]:
    with sync_stack(database_url("roster"), database_url("sync"), schools=3, teachers=24) as running:
        yield running


def roster_by_id(stack: SyncStack) -> Roster:
    """Every school and teacher of the district, field for field and membership for membership."""
    client = stack.roster.client
    schools = frozenset(
        (s.school_id, s.display_name, s.state) for s in client.list_schools(stack.district_id)
    )
    teachers = frozenset(
        (t.teacher_id, t.given_name, t.family_name, t.email, tuple(t.school_ids), t.state, t.archive_reason)
        for t in client.list_teachers(stack.district_id)
    )
    return schools, teachers


def roster_by_content(stack: SyncStack) -> Roster:
    """The same, by names and emails: what a sync converges to whatever ids it creates."""
    client = stack.roster.client
    names = {s.school_id: s.display_name for s in client.list_schools(stack.district_id)}
    schools = frozenset((s.display_name, s.state) for s in client.list_schools(stack.district_id))
    teachers = frozenset(
        (
            t.given_name,
            t.family_name,
            t.email,
            tuple(sorted(names[i] for i in t.school_ids)),
            t.state,
            t.archive_reason,
        )
        for t in client.list_teachers(stack.district_id)
    )
    return schools, teachers


def synced(stack: SyncStack) -> sync_pb2.SyncEvent:
    last = list(stack.client.sync_rosters(stack.district_id))[-1]
    assert last.state == sync_pb2.SYNC_RUN_STATE_SUCCEEDED, last.message
    return last


def prepare_every_kind_of_change(stack: SyncStack) -> None:
    """EW before run A: a teacher A updates, one it reactivates, two it archives, an EW-only school."""
    client = stack.roster.client
    district = stack.district_id
    first, second = syncable_teachers(stack.sandbox.roster())[:2]
    kept = client.batch_create_schools(district, ["Kept School"])[0]
    updated, returning, *leaving = client.batch_upsert_teachers(
        district,
        [
            roster_pb2.TeacherInput(
                given_name="Old", family_name="Name", email=first["email"], school_ids=[kept.school_id]
            ),
            roster_pb2.TeacherInput(
                given_name=second["givenName"], family_name=second["familyName"], email=second["email"]
            ),
            roster_pb2.TeacherInput(given_name="Gone", family_name="One", email="gone1@example.org"),
            roster_pb2.TeacherInput(given_name="Gone", family_name="Two", email="gone2@example.org"),
        ],
    )
    client.batch_archive_teachers(district, [returning.teacher_id], "Left last year")
    assert updated.teacher_id and leaving


def test_revert_puts_the_roster_back_and_the_next_sync_converges_again(stack: SyncStack) -> None:
    prepare_every_kind_of_change(stack)
    before = roster_by_id(stack)
    sync_before = TableDump(stack.app.engine)
    own_records_before = {t: sync_before.rows()[t] for t in ("school_mappings", "teacher_links")}

    run_a = synced(stack)
    summary = run_a.summary
    assert summary.schools_created == 3 and summary.teachers_added > 0
    assert (summary.teachers_updated, summary.teachers_reactivated, summary.teachers_archived) == (1, 1, 2)
    after_a = roster_by_content(stack)

    preview = stack.client.revert_run(run_a.run, validate_only=True)
    assert not preview.HasField("run") and not preview.conflicts
    assert roster_by_content(stack) == after_a
    undone = {item.undone for item in preview.items if item.subject == sync_pb2.CHANGE_SUBJECT_TEACHER}
    assert undone == {
        sync_pb2.CHANGE_ACTION_ADDED,
        sync_pb2.CHANGE_ACTION_UPDATED,
        sync_pb2.CHANGE_ACTION_REACTIVATED,
        sync_pb2.CHANGE_ACTION_ARCHIVED,
    }

    reverted = stack.client.revert_run(run_a.run)
    assert reverted.run.trigger == sync_pb2.SYNC_TRIGGER_REVERT
    assert reverted.run.state == sync_pb2.SYNC_RUN_STATE_SUCCEEDED
    assert len(reverted.items) == len(preview.items)
    assert roster_by_id(stack) == before
    after_revert = TableDump(stack.app.engine).rows()
    assert {t: after_revert[t] for t in own_records_before} == own_records_before
    events = list(stack.client.watch_run(reverted.run.name))
    assert events[-1].percent == 100 and events[-1].state == sync_pb2.SYNC_RUN_STATE_SUCCEEDED
    history = stack.client.list_runs(stack.district_id).runs
    assert [r.trigger for r in history[:2]] == [sync_pb2.SYNC_TRIGGER_REVERT, sync_pb2.SYNC_TRIGGER_MANUAL]

    with pytest.raises(RosterError) as again:
        stack.client.revert_run(run_a.run)
    assert (
        again.value.code == grpc.StatusCode.FAILED_PRECONDITION and "reverted already" in again.value.message
    )
    with pytest.raises(RosterError) as undo_undo:
        stack.client.revert_run(reverted.run.name)
    assert undo_undo.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert "itself a revert" in undo_undo.value.message

    synced(stack)
    assert roster_by_content(stack) == after_a


def test_a_revert_is_refused_naming_rows_changed_since_and_the_partial_form_reverts_the_rest(
    stack: SyncStack,
) -> None:
    prepare_every_kind_of_change(stack)
    run_a = synced(stack)
    client = stack.roster.client
    teachers = [
        t for t in client.list_teachers(stack.district_id) if t.state == roster_pb2.TEACHER_STATE_ACTIVE
    ]
    by_person, by_run = teachers[0], teachers[1]
    # A person adds a school the sync does not own: no later sync puts that back.
    kept = next(s for s in client.list_schools(stack.district_id) if s.display_name == "Kept School")
    client.batch_upsert_teachers(
        stack.district_id,
        [
            roster_pb2.TeacherInput(
                given_name=by_person.given_name,
                family_name=by_person.family_name,
                email=by_person.email,
                school_ids=[*by_person.school_ids, kept.school_id],
            )
        ],
    )
    source = next(u for u in stack.sandbox.roster()["users"] if u.get("email") == by_run.email)
    stack.sandbox.mutate(
        [{"op": "update_user", "sourcedId": source["sourcedId"], "set": {"givenName": "Later"}}]
    )
    run_b = synced(stack)
    assert run_b.summary.teachers_updated == 1
    changed_since = {by_person.teacher_id, by_run.teacher_id}
    untouched = roster_by_id(stack)

    with pytest.raises(RosterError) as refused:
        stack.client.revert_run(run_a.run)
    assert refused.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert (
        by_run.teacher_id in refused.value.message and run_b.run.rpartition("/")[2] in refused.value.message
    )
    assert roster_by_id(stack) == untouched

    partial = stack.client.revert_run(run_a.run, partial=True)
    assert partial.run.state == sync_pb2.SYNC_RUN_STATE_SUCCEEDED
    teacher_conflicts = {
        c.subject_id: c for c in partial.conflicts if c.subject == sync_pb2.CHANGE_SUBJECT_TEACHER
    }
    assert set(teacher_conflicts) == changed_since
    assert teacher_conflicts[by_run.teacher_id].later_run == run_b.run
    remaining = {t.teacher_id: t for t in client.list_teachers(stack.district_id)}
    assert set(remaining) >= changed_since
    assert remaining[by_run.teacher_id].given_name == "Later"
    reverted_adds = {i.subject_id for i in partial.items if i.undone == sync_pb2.CHANGE_ACTION_ADDED}
    assert reverted_adds and not reverted_adds & set(remaining)
