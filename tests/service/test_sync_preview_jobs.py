"""StartSyncPreview: a preview that runs like a sync (a job with progress), whose plan is then paged.

Each test talks to a real in-process stack over gRPC: the sandbox ClassLink, the roster service and
the sync service with its in-process worker. A preview job must change nothing but its own run, its
events and its stored plan, and must plan exactly what the sync that follows it applies.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterator

import pytest
from ew.client.errors import (
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
)
from ew.client.sync import SyncClient
from ew.sync.v1 import sync_pb2

from services.common.auth import Role
from services.sync.runs import repository
from services.sync.store.models import Plan
from services.sync.vocabulary import PlanPurpose
from tests.support.db_dump import Dump, TableDump
from tests.support.roster import Clock
from tests.support.sync_stack import SyncStack, sync_stack

pytestmark = pytest.mark.timeout(120)

# The tables a preview job writes: its run, its events, its plan, and the audit trail of the call.
PREVIEW_TABLES = frozenset({"sync_runs", "sync_run_events", "plans", "plan_items", "audit_events"})


@pytest.fixture
def stack(database_url: Callable[[str], str]) -> Iterator[SyncStack]:
    with sync_stack(database_url("roster"), database_url("sync"), schools=3, teachers=30) as running:
        yield running


def follow(client: SyncClient, run: sync_pb2.SyncRun) -> list[sync_pb2.SyncEvent]:
    return list(client.watch_run(run.name))


def all_items(client: SyncClient, district_id: str, run: str, page_size: int) -> list[sync_pb2.PlanItem]:
    """Every item of a preview job through PreviewSync, ``page_size`` at a time."""
    items: list[sync_pb2.PlanItem] = []
    token = ""
    while True:
        page = client.preview_sync(district_id, sync_run=run, page_size=page_size, page_token=token)
        items.extend(page.items)
        token = page.next_page_token
        if not token:
            return items


def run_items(client: SyncClient, run: str) -> list[sync_pb2.PlanItem]:
    """Every item of a run through ListSyncRunItems."""
    items: list[sync_pb2.PlanItem] = []
    token = ""
    while True:
        page = client.list_run_items(run, page_size=7, page_token=token)
        items.extend(page.items)
        token = page.next_page_token
        if not token:
            return items


def without(dump: Dump, tables: frozenset[str]) -> Dump:
    return {name: rows for name, rows in dump.items() if name not in tables}


def test_a_preview_job_reports_progress_then_pages_its_plan_and_changes_nothing(stack: SyncStack) -> None:
    roster_before = TableDump(stack.roster.engine).rows()
    sync_dump = TableDump(stack.app.engine)
    sync_before = sync_dump.rows()

    started = stack.client.start_sync_preview(stack.district_id)
    events = follow(stack.client, started.run)

    assert not started.already_active
    assert started.run.trigger == sync_pb2.SYNC_TRIGGER_PREVIEW
    assert [event.sequence for event in events] == list(range(1, len(events) + 1))
    percents = [event.percent for event in events]
    assert percents == sorted(percents) and percents[-1] == 100
    phases = {event.phase for event in events}
    assert {sync_pb2.SYNC_PHASE_READING_TEACHERS, sync_pb2.SYNC_PHASE_PLANNING} <= phases
    assert not phases & {sync_pb2.SYNC_PHASE_SYNCING_TEACHERS, sync_pb2.SYNC_PHASE_COMMITTING}
    assert events[-1].state == sync_pb2.SYNC_RUN_STATE_PREVIEWED, events[-1].message
    run = stack.client.get_run(started.run.name)
    assert run.state == sync_pb2.SYNC_RUN_STATE_PREVIEWED
    assert run.summary.teachers_added > 0

    first = stack.client.preview_sync(stack.district_id, sync_run=run.run_id, page_size=4)
    items = all_items(stack.client, stack.district_id, run.name, page_size=4)
    assert first.summary == run.summary and first.guard == run.guard
    assert first.read_time.ToDatetime() <= run.end_time.ToDatetime()
    kinds = [item.kind for item in items]
    assert kinds.count(sync_pb2.PLAN_ITEM_KIND_ADD_TEACHER) == run.summary.teachers_added
    assert kinds.count(sync_pb2.PLAN_ITEM_KIND_CREATE_SCHOOL) == run.summary.schools_created
    assert run_items(stack.client, run.name) == items

    # EW, mappings, links, the connection's last success and the webhook outbox are as they were.
    assert TableDump(stack.roster.engine).rows() == roster_before
    assert without(sync_dump.rows(), PREVIEW_TABLES) == without(sync_before, PREVIEW_TABLES)
    with stack.app.sessions.begin() as session:
        # A preview is not a successful sync: AutoSync still waits for one.
        assert not repository.has_succeeded(session, stack.district_id)
        stored = repository.get_run(session, run.run_id)
        assert stored is not None and stored.plan_id is not None
        plan = session.get(Plan, stored.plan_id)
        assert plan is not None and plan.purpose is PlanPurpose.PREVIEW and plan.expire_time is not None
    with pytest.raises(FailedPreconditionError, match="first successful sync"):
        stack.client.set_autosync(
            sync_pb2.AutoSync(
                name=f"districts/{stack.district_id}/autoSync", enabled=True, time_zone="America/New_York"
            )
        )


def test_a_preview_jobs_percent_spans_0_to_100_over_its_reads_and_plan(stack: SyncStack) -> None:
    events = follow(stack.client, stack.client.start_sync_preview(stack.district_id).run)

    percents = [event.percent for event in events]
    assert percents == sorted(percents)
    assert events[-1].state == sync_pb2.SYNC_RUN_STATE_PREVIEWED and percents[-1] == 100
    unfinished = percents[:-1]
    assert 100 not in unfinished
    # A sync's ranges would leave a preview at 45 when planning ends, then jump to 100.
    assert max(unfinished) > 45
    planning = [event for event in events[:-1] if event.phase == sync_pb2.SYNC_PHASE_PLANNING]
    assert planning and min(event.percent for event in planning) >= 80
    assert any("Education Walkthrough" in event.message for event in planning)


def test_a_preview_job_plans_exactly_what_the_following_sync_applies(stack: SyncStack) -> None:
    # Some EW state for the plan to differ from an initial sync: a sync, then ClassLink changes.
    list(stack.client.sync_rosters(stack.district_id))
    roster = stack.sandbox.roster()
    emails = Counter(str(user.get("email", "")).lower() for user in roster["users"])
    teachers = [
        user
        for user in roster["users"]
        if user["role"] == "teacher" and user.get("email") and emails[user["email"].lower()] == 1
    ]
    school = next(org["sourcedId"] for org in roster["orgs"] if org["type"] == "school")
    stack.sandbox.mutate(
        [
            {"op": "update_user", "sourcedId": teachers[0]["sourcedId"], "set": {"givenName": "Renamed"}},
            {"op": "remove_user", "sourcedId": teachers[1]["sourcedId"]},
            {
                "op": "add_teacher",
                "givenName": "New",
                "familyName": "Teacher",
                "email": "new@x.test",
                "orgs": [school],
            },
        ]
    )

    preview = stack.client.start_sync_preview(stack.district_id).run
    follow(stack.client, preview)
    sync = stack.client.start_sync_run(stack.district_id)
    follow(stack.client, sync)

    previewed = stack.client.get_run(preview.name)
    synced = stack.client.get_run(sync.name)
    assert previewed.state == sync_pb2.SYNC_RUN_STATE_PREVIEWED
    assert synced.state == sync_pb2.SYNC_RUN_STATE_SUCCEEDED, synced.error_message
    assert previewed.summary == synced.summary
    assert previewed.guard == synced.guard
    preview_items = all_items(stack.client, stack.district_id, preview.name, page_size=5)
    assert preview_items == run_items(stack.client, sync.name)
    changed = {item.kind for item in preview_items}
    assert {
        sync_pb2.PLAN_ITEM_KIND_ADD_TEACHER,
        sync_pb2.PLAN_ITEM_KIND_UPDATE_TEACHER,
        sync_pb2.PLAN_ITEM_KIND_ARCHIVE_TEACHER,
    } <= changed


def test_the_start_returns_at_once_while_a_slow_classlink_is_read_and_syncs_are_not_blocked(
    stack: SyncStack,
) -> None:
    # Every teachers page waits 3 s: far past the start call's 1 s deadline.
    stack.sandbox.set_faults([{"kind": "slow", "delay": 3, "times": -1, "path": "teachers"}])
    quick = SyncClient(stack.server.target, token=stack.token, timeout=1.0)
    try:
        started = quick.start_sync_preview(stack.district_id)
        again = quick.start_sync_preview(stack.district_id)
        # A sync starts beside the preview job rather than attaching to it.
        sync = quick.start_sync_run(stack.district_id)
        with pytest.raises(FailedPreconditionError, match="follow it with WatchSyncRun"):
            quick.preview_sync(stack.district_id, sync_run=started.run.name)
    finally:
        quick.close()

    assert started.run.state in (sync_pb2.SYNC_RUN_STATE_QUEUED, sync_pb2.SYNC_RUN_STATE_RUNNING)
    assert again.already_active and again.run.name == started.run.name
    assert sync.name != started.run.name and sync.trigger == sync_pb2.SYNC_TRIGGER_MANUAL
    assert follow(stack.client, started.run)[-1].state == sync_pb2.SYNC_RUN_STATE_PREVIEWED
    assert follow(stack.client, sync)[-1].state == sync_pb2.SYNC_RUN_STATE_SUCCEEDED
    # Once ended, a new start is a new preview job.
    stack.sandbox.set_faults([])
    assert stack.client.start_sync_preview(stack.district_id).run.name != started.run.name


def test_a_cancelled_preview_job_ends_cancelled_without_a_plan(stack: SyncStack) -> None:
    stack.sandbox.set_faults([{"kind": "slow", "delay": 5, "times": -1, "path": "teachers"}])
    started = stack.client.start_sync_preview(stack.district_id).run

    stack.client.cancel_run(started.name)
    events = follow(stack.client, started)

    assert events[-1].state == sync_pb2.SYNC_RUN_STATE_CANCELLED
    with pytest.raises(FailedPreconditionError, match="ended CANCELLED"):
        stack.client.preview_sync(stack.district_id, sync_run=started.name)
    with stack.app.sessions.begin() as session:
        assert session.query(Plan).count() == 0


def test_only_the_districts_premium_administrator_may_start_or_page_a_preview_job(stack: SyncStack) -> None:
    run = stack.client.start_sync_preview(stack.district_id).run
    follow(stack.client, run)
    dump = TableDump(stack.app.engine)
    before = without(dump.rows(), frozenset({"audit_events"}))
    callers = {
        "teacher": stack.token(role=Role.TEACHER),
        "basic plan": stack.token(plan="district_basic"),
        "other district": stack.token(district_id="d-other"),
    }
    for caller, token in callers.items():
        client = stack.client_as(token)
        try:
            with pytest.raises(PermissionDeniedError):
                client.start_sync_preview(stack.district_id)
            with pytest.raises(PermissionDeniedError):
                client.preview_sync(stack.district_id, sync_run=run.name)
        finally:
            client.close()
        assert without(dump.rows(), frozenset({"audit_events"})) == before, caller
    # Another district's administrator cannot reach the job through their own district either.
    other = stack.client_as(callers["other district"])
    try:
        with pytest.raises(InvalidArgumentError, match="sync_run"):
            other.preview_sync("d-other", sync_run=run.name)
    finally:
        other.close()


def test_bad_requests_are_refused_with_words_that_say_what_to_do(stack: SyncStack) -> None:
    client = stack.client
    district = stack.district_id
    with pytest.raises(InvalidArgumentError, match="parent"):
        client.start_sync_preview("not a district/")
    with pytest.raises(InvalidArgumentError, match="sync_run"):
        client.preview_sync(district, sync_run="districts/x/syncRuns/not-a-uuid")
    with pytest.raises(NotFoundError):
        client.preview_sync(district, sync_run="00000000-0000-4000-8000-000000000000")
    sync = client.start_sync_run(district)
    follow(client, sync)
    with pytest.raises(InvalidArgumentError, match="not a preview job"):
        client.preview_sync(district, sync_run=sync.name)
    # A district without a ClassLink connection cannot preview.
    other = stack.client_as(stack.token(district_id="d-other"))
    try:
        with pytest.raises(FailedPreconditionError, match="not connected"):
            other.start_sync_preview("d-other")
    finally:
        other.close()
    # A page token of one preview job does not page another.
    first = client.start_sync_preview(district).run
    follow(client, first)
    token = client.preview_sync(district, sync_run=first.name, page_size=1).next_page_token
    second = client.start_sync_preview(district).run
    follow(client, second)
    with pytest.raises(InvalidArgumentError, match="page_token"):
        client.preview_sync(district, sync_run=second.name, page_size=1, page_token=token)


def test_starting_a_preview_job_is_audited(stack: SyncStack) -> None:
    run = stack.client.start_sync_preview(stack.district_id).run
    follow(stack.client, run)

    events = stack.client.list_audit_events(stack.district_id, action=sync_pb2.AUDIT_ACTION_PREVIEW).events

    assert [(event.target, event.outcome) for event in events] == [(run.name, "OK")]


def test_an_expired_preview_job_says_so_and_keeps_its_summary(database_url: Callable[[str], str]) -> None:
    clock = Clock()
    with sync_stack(
        database_url("roster"), database_url("sync"), clock=clock, schools=2, teachers=8
    ) as stack:
        first = stack.client.start_sync_preview(stack.district_id).run
        follow(stack.client, first)
        clock.advance(stack.app.settings.preview_ttl + dt.timedelta(seconds=1))
        with pytest.raises(FailedPreconditionError, match="expired"):
            stack.client.preview_sync(stack.district_id, sync_run=first.name)
        with pytest.raises(FailedPreconditionError, match="expired"):
            stack.client.list_run_items(first.name)
        # Storing the next preview deletes the plans that expired.
        second = stack.client.start_sync_preview(stack.district_id).run
        follow(stack.client, second)

        with pytest.raises(FailedPreconditionError, match="expired"):
            stack.client.preview_sync(stack.district_id, sync_run=first.name)
        with pytest.raises(FailedPreconditionError, match="expired"):
            stack.client.list_run_items(first.name)
        expired = stack.client.get_run(first.name)
        assert expired.state == sync_pb2.SYNC_RUN_STATE_PREVIEWED
        assert expired.summary == stack.client.get_run(second.name).summary
        assert stack.client.preview_sync(stack.district_id, sync_run=second.name).summary == expired.summary
