"""Run streams: attach to the running run, and closing a stream never stops it.

Watch resumes losslessly, and a message delivered twice executes the run once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from dramatiq.brokers.stub import StubBroker
from ew.client.sync import RunEvents
from ew.sync.v1 import sync_pb2

from services.sync.runs import tasks
from services.sync.runs.executor import execute_run
from services.sync.store.models import SyncRun
from tests.support.sync_stack import SyncStack, sync_stack

pytestmark = pytest.mark.timeout(120)

# Every teacher page takes this long: the run stays in READING_TEACHERS while the test acts.
SLOW_TEACHERS = {"kind": "slow", "delay": 1.5, "times": 2, "path": "teachers"}


@pytest.fixture
def stack(database_url: Callable[[str], str]) -> Iterator[SyncStack]:
    with sync_stack(database_url("roster"), database_url("sync"), schools=4, teachers=40) as running:
        yield running


def until_phase(events: RunEvents, phase: sync_pb2.SyncPhase.ValueType) -> list[sync_pb2.SyncEvent]:
    seen = []
    for event in events:
        seen.append(event)
        if event.phase == phase:
            return seen
    raise AssertionError(f"the run ended before phase {phase}: {seen[-1].message}")


def test_a_second_sync_while_running_attaches_to_the_same_run(stack: SyncStack) -> None:
    stack.sandbox.set_faults([SLOW_TEACHERS])
    first = stack.client.sync_rosters(stack.district_id)
    until_phase(first, sync_pb2.SYNC_PHASE_READING_TEACHERS)

    second = stack.client.sync_rosters(stack.district_id)
    second_events = list(second)

    assert first.run is not None and second.run is not None
    assert second.run.name == first.run.name
    assert [e.sequence for e in second_events] == list(range(1, len(second_events) + 1))
    assert second_events[-1].state == sync_pb2.SYNC_RUN_STATE_SUCCEEDED
    assert list(first)[-1].sequence == second_events[-1].sequence
    runs = stack.client.list_runs(stack.district_id).runs
    assert [r.name for r in runs] == [first.run.name]


def test_closing_the_stream_does_not_stop_the_run(stack: SyncStack) -> None:
    stack.sandbox.set_faults([SLOW_TEACHERS])
    events = stack.client.sync_rosters(stack.district_id)
    until_phase(events, sync_pb2.SYNC_PHASE_READING_TEACHERS)
    assert events.run is not None
    events.close()

    finished = list(stack.client.watch_run(events.run.name))

    assert finished[-1].state == sync_pb2.SYNC_RUN_STATE_SUCCEEDED
    assert finished[-1].summary.teachers_added > 0
    assert stack.client.get_run(events.run.name).state == sync_pb2.SYNC_RUN_STATE_SUCCEEDED


def test_watch_from_a_middle_sequence_loses_nothing(stack: SyncStack) -> None:
    stack.sandbox.set_faults([SLOW_TEACHERS])
    events = stack.client.sync_rosters(stack.district_id)
    head = until_phase(events, sync_pb2.SYNC_PHASE_READING_TEACHERS)
    events.close()
    assert events.run is not None
    resume_after = head[-2].sequence

    tail = list(stack.client.watch_run(events.run.name, after_sequence=resume_after))

    sequences = [e.sequence for e in head[:-1]] + [e.sequence for e in tail]
    assert sequences == list(range(1, tail[-1].sequence + 1))
    assert tail[0].sequence == resume_after + 1
    assert tail[-1].state == sync_pb2.SYNC_RUN_STATE_SUCCEEDED
    replay = list(stack.client.watch_run(events.run.name, after_sequence=resume_after))
    assert replay == tail


def test_a_message_delivered_twice_runs_the_sync_once(stack: SyncStack) -> None:
    stack.sandbox.set_faults([SLOW_TEACHERS])
    events = stack.client.sync_rosters(stack.district_id)
    until_phase(events, sync_pb2.SYNC_PHASE_READING_TEACHERS)
    assert events.run is not None
    run_id = events.run.run_id

    tasks.run_sync.send(run_id)
    all_events = list(stack.client.watch_run(events.run.name))
    broker = stack.app.broker
    assert isinstance(broker, StubBroker)
    broker.join(tasks.QUEUE, timeout=30_000)
    snapshot = stack.roster.snapshot()

    with stack.app.sessions() as session:
        run = session.get(SyncRun, run_id)
        assert run is not None
        assert run.attempt == 1
        last_sequence = run.last_sequence
    assert all_events[-1].sequence == last_sequence
    assert sum(1 for e in all_events if e.phase == sync_pb2.SYNC_PHASE_CONNECTING) == 1
    assert all_events[-1].state == sync_pb2.SYNC_RUN_STATE_SUCCEEDED

    # A late redelivery after the run ended is a no-op as well.
    tasks.run_sync.send(run_id)
    broker.join(tasks.QUEUE, timeout=30_000)
    with stack.app.sessions() as session:
        run = session.get(SyncRun, run_id)
        assert run is not None and run.last_sequence == last_sequence and run.attempt == 1
    assert stack.roster.snapshot() == snapshot


async def test_executing_a_finished_run_changes_nothing(stack: SyncStack) -> None:
    events = stack.client.sync_rosters(stack.district_id)
    last = list(events)[-1]
    assert events.run is not None
    snapshot = stack.roster.snapshot()

    await execute_run(stack.app, events.run.run_id)

    assert stack.client.get_run(events.run.name).last_sequence == last.sequence
    assert stack.roster.snapshot() == snapshot


def test_a_slow_phase_keeps_reporting_while_it_waits(stack: SyncStack) -> None:
    # One teacher page takes 2.5 s: the heartbeat must fill the silence with events.
    stack.sandbox.set_faults([{"kind": "slow", "delay": 2.5, "times": 1, "path": "teachers"}])

    events = list(stack.client.sync_rosters(stack.district_id))

    reading = [e for e in events if e.phase == sync_pb2.SYNC_PHASE_READING_TEACHERS]
    assert len(reading) >= 3
    assert all(e.message == "Data from ClassLink is syncing" for e in reading)
    assert events[-1].state == sync_pb2.SYNC_RUN_STATE_SUCCEEDED
