"""Force Sync Now and AutoSync through the real sync server: the rules an administrator relies on.

Every refused call also proves the sync database did not change. The AutoSync scheduler is driven
by hand (``tick``) on a clock the test moves, so "the next due time passes" takes no waiting.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any
from zoneinfo import ZoneInfo

import grpc
import pytest
from ew.client.errors import RosterError
from ew.roster.v1 import roster_pb2
from ew.sync.v1 import sync_pb2

from services.sync.autosync.scheduler import tick
from services.sync.runs.tasks import enqueue_run
from tests.support.autosync import WallClock
from tests.support.db_dump import TableDump
from tests.support.sync_stack import SyncStack, sync_stack

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def clock() -> WallClock:
    return WallClock()


@pytest.fixture
def stack(database_url: Callable[[str], str], clock: WallClock) -> Iterator[SyncStack]:
    with sync_stack(
        database_url("roster"),
        database_url("sync"),
        settings={"scheduler_embedded": False, "autosync_spread": dt.timedelta(0)},
        clock=clock,
        schools=2,
        teachers=40,
    ) as running:
        yield running


def settings(stack: SyncStack, **fields: Any) -> sync_pb2.AutoSync:
    values: dict[str, Any] = {"name": f"districts/{stack.district_id}/autoSync", "enabled": True}
    values.update(fields)
    return sync_pb2.AutoSync(**values)


def refused(stack: SyncStack, code: grpc.StatusCode, call: Callable[..., Any], *args: Any) -> RosterError:
    """Assert the call fails with ``code`` and the sync database did not change.

    Only the audit trail may grow, by the one refused request it records (for audited RPCs).
    """
    dump = TableDump(stack.app.engine)
    before = dump.rows()
    with pytest.raises(RosterError) as info:
        call(*args)
    assert info.value.code == code, info.value.message
    after = dump.rows()
    assert len(after.pop("audit_events")) - len(before.pop("audit_events")) in (0, 1)
    assert after == before
    return info.value


def first_sync(stack: SyncStack) -> None:
    last = list(stack.client.sync_rosters(stack.district_id))[-1]
    assert last.state == sync_pb2.SYNC_RUN_STATE_SUCCEEDED, last.message


def scheduler_tick(stack: SyncStack) -> list[str]:
    return asyncio.run(tick(stack.app, enqueue_run)).started


def test_force_sync_now_queues_a_forced_run_and_returns_the_active_one_while_it_runs(
    stack: SyncStack,
) -> None:
    stack.sandbox.set_faults([{"kind": "slow", "delay": 1.5, "times": 1, "path": "teachers"}])

    forced = stack.client.force_sync_now(stack.district_id)
    again = stack.client.force_sync_now(stack.district_id)
    started = stack.client.start_sync_run(stack.district_id)

    assert not forced.already_active
    assert forced.run.trigger == sync_pb2.SYNC_TRIGGER_FORCE
    assert forced.run.state in (sync_pb2.SYNC_RUN_STATE_QUEUED, sync_pb2.SYNC_RUN_STATE_RUNNING)
    assert again.already_active and again.run.name == forced.run.name
    assert started.name == forced.run.name
    events = list(stack.client.watch_run(forced.run.name))
    assert events[-1].state == sync_pb2.SYNC_RUN_STATE_SUCCEEDED, events[-1].message
    assert len(stack.client.list_runs(stack.district_id).runs) == 1


def test_force_sync_now_needs_a_connection(stack: SyncStack) -> None:
    stack.client.delete_connection(stack.district_id)
    error = refused(
        stack, grpc.StatusCode.FAILED_PRECONDITION, stack.client.force_sync_now, stack.district_id
    )
    assert error.reason == "NOT_CONNECTED"


def test_turning_autosync_on_before_a_successful_sync_is_refused_and_changes_nothing(
    stack: SyncStack,
) -> None:
    on = settings(stack, time_zone="America/New_York")
    error = refused(stack, grpc.StatusCode.FAILED_PRECONDITION, stack.client.set_autosync, on)
    assert error.reason == "NO_SUCCESSFUL_SYNC"
    assert "Run a first successful sync before turning on AutoSync" in error.message
    # A failed sync is not a successful one.
    stack.sandbox.set_faults([{"kind": "status", "status": 500, "times": 50, "path": "teachers"}])
    last = list(stack.client.sync_rosters(stack.district_id))[-1]
    assert last.state == sync_pb2.SYNC_RUN_STATE_FAILED
    refused(stack, grpc.StatusCode.FAILED_PRECONDITION, stack.client.set_autosync, on)
    assert not stack.client.get_autosync(stack.district_id).enabled


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"time_zone": "Mars/Olympus_Mons"}, "auto_sync.time_zone"),
        ({}, "auto_sync.time_zone"),
        ({"time_zone": "UTC", "day": 32}, "auto_sync.day"),
        ({"time_zone": "UTC", "cadence": sync_pb2.AUTO_SYNC_CADENCE_WEEKLY, "day": 8}, "auto_sync.day"),
        ({"time_zone": "UTC", "hour": 24}, "auto_sync.hour"),
        (
            {
                "time_zone": "UTC",
                "pause_windows": [sync_pb2.PauseWindow(start_date="2027-08-20", end_date="2027-06-15")],
            },
            "auto_sync.pause_windows[0].end_date",
        ),
        (
            {
                "time_zone": "UTC",
                "pause_windows": [sync_pb2.PauseWindow(start_date="2027-02-30", end_date="2027-03-01")],
            },
            "auto_sync.pause_windows[0].start_date",
        ),
        (
            {
                "time_zone": "UTC",
                "pause_windows": [sync_pb2.PauseWindow(start_date="2027-01-01", end_date="2029-01-01")],
            },
            "auto_sync.pause_windows[0].end_date",
        ),
        (
            {
                "time_zone": "UTC",
                "pause_windows": [sync_pb2.PauseWindow(start_date="2027-01-01", end_date="2027-01-02")] * 13,
            },
            "auto_sync.pause_windows",
        ),
    ],
)
def test_bad_autosync_settings_name_the_field_and_change_nothing(
    stack: SyncStack, fields: dict[str, Any], field: str
) -> None:
    first_sync(stack)
    error = refused(
        stack, grpc.StatusCode.INVALID_ARGUMENT, stack.client.set_autosync, settings(stack, **fields)
    )
    assert [violation.field for violation in error.violations] == [field]


def test_autosync_on_shows_its_next_run_and_disconnecting_classlink_turns_it_off(
    stack: SyncStack, clock: WallClock
) -> None:
    assert not stack.client.get_autosync(stack.district_id).enabled
    first_sync(stack)
    pause = sync_pb2.PauseWindow(start_date="2030-06-15", end_date="2030-08-20")
    stored = stack.client.set_autosync(
        settings(
            stack,
            cadence=sync_pb2.AUTO_SYNC_CADENCE_WEEKLY,
            day=7,
            hour=22,
            time_zone="America/Chicago",
            pause_windows=[pause],
        )
    )

    shown = stack.client.get_autosync(stack.district_id)
    assert shown == stored
    assert (shown.enabled, shown.cadence, shown.day, shown.hour, shown.time_zone) == (
        True,
        sync_pb2.AUTO_SYNC_CADENCE_WEEKLY,
        7,
        22,
        "America/Chicago",
    )
    assert list(shown.pause_windows) == [pause]
    next_run = shown.next_run_time.ToDatetime(dt.UTC)
    assert clock() < next_run <= clock() + dt.timedelta(days=7)
    assert next_run.astimezone(ZoneInfo("America/Chicago")).isoweekday() == 7
    assert next_run.astimezone(ZoneInfo("America/Chicago")).hour == 22

    stack.client.delete_connection(stack.district_id)

    off = stack.client.get_autosync(stack.district_id)
    assert not off.enabled and not off.HasField("next_run_time")
    assert off.time_zone == "America/Chicago"  # the settings are kept for when it is turned on again


def test_an_auto_run_that_needs_review_archives_nobody_and_the_next_due_time_neither_repeats_nor_approves_it(
    stack: SyncStack, clock: WallClock
) -> None:
    first_sync(stack)
    stack.client.set_autosync(
        settings(stack, cadence=sync_pb2.AUTO_SYNC_CADENCE_DAILY, hour=3, time_zone="UTC")
    )
    teachers = [u for u in stack.sandbox.roster()["users"] if u["role"] == "teacher"]
    stack.sandbox.mutate(
        [{"op": "remove_user", "sourcedId": u["sourcedId"]} for u in teachers[: len(teachers) // 3]]
    )
    before = stack.roster.snapshot()

    due = stack.client.get_autosync(stack.district_id).next_run_time.ToDatetime(dt.UTC)
    clock.advance(due - clock())
    started = scheduler_tick(stack)

    assert len(started) == 1
    auto_run = stack.client.get_run(f"districts/{stack.district_id}/syncRuns/{started[0]}")
    events = list(stack.client.watch_run(auto_run.name))
    assert auto_run.trigger == sync_pb2.SYNC_TRIGGER_AUTO
    assert events[-1].state == sync_pb2.SYNC_RUN_STATE_NEEDS_REVIEW
    assert stack.roster.snapshot() == before
    shown = stack.client.get_autosync(stack.district_id)
    assert shown.last_auto_run.name == auto_run.name
    assert shown.last_auto_run.state == sync_pb2.SYNC_RUN_STATE_NEEDS_REVIEW

    clock.advance(shown.next_run_time.ToDatetime(dt.UTC) - clock() + dt.timedelta(minutes=1))
    assert scheduler_tick(stack) == []

    runs = stack.client.list_runs(stack.district_id).runs
    assert [run.trigger for run in runs] == [sync_pb2.SYNC_TRIGGER_AUTO, sync_pb2.SYNC_TRIGGER_MANUAL]
    assert not any(run.approved_run for run in runs)
    assert stack.roster.snapshot() == before
    assert stack.client.get_autosync(stack.district_id).next_run_time.ToDatetime(dt.UTC) > clock()
    assert all(
        t.state == roster_pb2.TEACHER_STATE_ACTIVE
        for t in stack.roster.client.list_teachers(stack.district_id)
    )


def test_force_sync_now_runs_during_a_pause_window(stack: SyncStack, clock: WallClock) -> None:
    first_sync(stack)
    today = clock().date()
    pause = sync_pb2.PauseWindow(
        start_date=today.isoformat(), end_date=(today + dt.timedelta(days=30)).isoformat()
    )
    stack.client.set_autosync(
        settings(stack, cadence=sync_pb2.AUTO_SYNC_CADENCE_DAILY, time_zone="UTC", pause_windows=[pause])
    )
    next_run = stack.client.get_autosync(stack.district_id).next_run_time.ToDatetime(dt.UTC)
    assert next_run.date() == today + dt.timedelta(days=31)

    forced = stack.client.force_sync_now(stack.district_id)
    assert list(stack.client.watch_run(forced.run.name))[-1].state == sync_pb2.SYNC_RUN_STATE_SUCCEEDED
