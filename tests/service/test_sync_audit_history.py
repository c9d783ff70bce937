"""The audit trail and a teacher's history through the real stack (sandbox, roster and sync servers)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Iterator

import grpc
import pytest
from ew.client.errors import RosterError
from ew.client.sync import SyncClient
from ew.roster.v1 import roster_pb2
from ew.sync.v1 import sync_pb2

from services.common.auth import Role
from services.common.devtoken import mint_dev_token
from services.oneroster_sandbox.truth import syncable_teachers
from services.sync.setup.audit_trail import prune_audit
from tests.support.sync_stack import PREMIUM, SyncStack, sync_stack

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def stack(database_url: Callable[[str], str]) -> Iterator[SyncStack]:
    with sync_stack(database_url("roster"), database_url("sync"), schools=2, teachers=12) as running:
        yield running


def synced(stack: SyncStack) -> sync_pb2.SyncEvent:
    last = list(stack.client.sync_rosters(stack.district_id))[-1]
    assert last.state == sync_pb2.SYNC_RUN_STATE_SUCCEEDED, last.message
    return last


def all_events(stack: SyncStack, **filters: object) -> list[sync_pb2.AuditEvent]:
    events: list[sync_pb2.AuditEvent] = []
    token = ""
    while True:
        page = stack.client.list_audit_events(stack.district_id, page_size=2, page_token=token, **filters)  # type: ignore[arg-type]
        events.extend(page.events)
        token = page.next_page_token
        if not token:
            return events


def as_subject(stack: SyncStack, subject: str, plan: str = PREMIUM) -> SyncClient:
    token = mint_dev_token(
        stack.app.auth, district_id=stack.district_id, role=Role.DISTRICT_ADMIN, plan=plan, subject=subject
    )
    return stack.client_as(token)


def test_actions_are_audited_once_with_who_and_the_outcome_newest_first_and_filtered(
    stack: SyncStack,
) -> None:
    ada = as_subject(stack, "ada@example.org")
    ada.preview_sync(stack.district_id)
    run = list(ada.sync_rosters(stack.district_id))[-1]
    with pytest.raises(RosterError) as refused:
        as_subject(stack, "basic@example.org", plan="district_basic").preview_sync(stack.district_id)
    assert refused.value.code == grpc.StatusCode.PERMISSION_DENIED
    ada.list_runs(stack.district_id)  # reads are not audited

    events = all_events(stack)
    assert [(e.actor, e.action, e.outcome) for e in events[:3]] == [
        ("basic@example.org", sync_pb2.AUDIT_ACTION_PREVIEW, "PERMISSION_DENIED"),
        ("ada@example.org", sync_pb2.AUDIT_ACTION_START_RUN, "OK"),
        ("ada@example.org", sync_pb2.AUDIT_ACTION_PREVIEW, "OK"),
    ]
    assert events[3].action == sync_pb2.AUDIT_ACTION_CONNECT and len(events) == 4
    assert events[1].target == run.run
    assert "District Premium" in events[0].message
    times = [e.time.ToDatetime() for e in events]
    assert times == sorted(times, reverse=True)

    assert [e.target for e in all_events(stack, action=sync_pb2.AUDIT_ACTION_START_RUN)] == [run.run]
    assert all_events(stack, actor="basic@example.org") == [events[0]]
    after_all = events[0].time.ToDatetime(tzinfo=dt.UTC) + dt.timedelta(seconds=1)
    assert all_events(stack, start_time=after_all) == []
    assert all_events(stack, end_time=events[2].time.ToDatetime(tzinfo=dt.UTC)) == [events[3]]
    first = stack.client.list_audit_events(stack.district_id, page_size=1)
    with pytest.raises(RosterError) as mixed:
        stack.client.list_audit_events(
            stack.district_id,
            page_size=1,
            page_token=first.next_page_token,
            action=sync_pb2.AUDIT_ACTION_PREVIEW,
        )
    assert mixed.value.code == grpc.StatusCode.INVALID_ARGUMENT


def test_events_past_the_retention_are_pruned(stack: SyncStack) -> None:
    stack.client.preview_sync(stack.district_id)
    assert asyncio.run(prune_audit(stack.app)) == 0
    kept = all_events(stack)
    assert [e.action for e in kept] == [sync_pb2.AUDIT_ACTION_PREVIEW, sync_pb2.AUDIT_ACTION_CONNECT]
    retention = dt.timedelta(days=stack.app.settings.audit_retention_days)
    newest = kept[0].time.ToDatetime(tzinfo=dt.UTC)
    assert asyncio.run(prune_audit(stack.app, now=newest + retention)) == 1
    assert all_events(stack) == kept[:1]
    assert asyncio.run(prune_audit(stack.app, now=newest + retention + dt.timedelta(seconds=1))) == 1
    assert all_events(stack) == []


def test_a_teachers_history_says_why_they_were_archived_and_that_a_revert_brought_them_back(
    stack: SyncStack,
) -> None:
    first = synced(stack)
    leaving = syncable_teachers(stack.sandbox.roster())[0]
    teacher = next(
        t for t in stack.roster.client.list_teachers(stack.district_id) if t.email == leaving["email"]
    )
    stack.sandbox.mutate([{"op": "remove_user", "sourcedId": leaving["sourcedId"]}])
    archiving = synced(stack)
    reverted = stack.client.revert_run(archiving.run)

    entries = list(stack.client.list_teacher_history(stack.district_id, teacher.teacher_id).entries)
    assert [(e.action, e.run, e.trigger) for e in entries] == [
        (sync_pb2.CHANGE_ACTION_ADDED, first.run, sync_pb2.SYNC_TRIGGER_MANUAL),
        (sync_pb2.CHANGE_ACTION_ARCHIVED, archiving.run, sync_pb2.SYNC_TRIGGER_MANUAL),
        (sync_pb2.CHANGE_ACTION_RESTORED, reverted.run.name, sync_pb2.SYNC_TRIGGER_REVERT),
    ]
    added, archived, restored = entries
    assert {c.field for c in added.field_changes} >= {"given_name", "email", "state"}
    assert list(added.schools_added) == list(teacher.school_ids)
    assert archived.reason and [(c.field, c.old_value, c.new_value) for c in archived.field_changes] == [
        ("state", "ACTIVE", "ARCHIVED")
    ]
    assert [(c.field, c.new_value) for c in restored.field_changes] == [("state", "ACTIVE")]
    assert f"Revert of sync run {archiving.run.rpartition('/')[2]}" == restored.reason
    current = stack.roster.client.get_teacher(teacher.name)
    assert current.state == roster_pb2.TEACHER_STATE_ACTIVE

    page = stack.client.list_teacher_history(stack.district_id, teacher.teacher_id, page_size=2)
    rest = stack.client.list_teacher_history(
        stack.district_id, teacher.teacher_id, page_size=2, page_token=page.next_page_token
    )
    assert [*page.entries, *rest.entries] == entries and not rest.next_page_token
