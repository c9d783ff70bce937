"""Recovery of runs whose worker died, settled from the roster's change-set state.

The states are those a worker leaves when it dies at the worst moments: after the commit but
before its bookkeeping (the sync DB is rewound to exactly that), or with a change set still open.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterator

import pytest
from ew.roster.v1 import roster_pb2
from ew.sync.v1 import sync_pb2
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from services.common.clock import utc_now as utcnow
from services.sync.runs import recovery, repository, tasks
from services.sync.store import links, mappings, run_changes
from services.sync.store.models import (
    Connection,
    RunChange,
    SchoolMapping,
    SyncRun,
    SyncRunEvent,
    TeacherLink,
)
from services.sync.vocabulary import MappingOrigin, SyncRunState, SyncTrigger
from tests.support.sync_stack import SyncStack, sync_stack

pytestmark = pytest.mark.timeout(120)

LONG_AGO = dt.timedelta(hours=1)


@pytest.fixture
def stack(database_url: Callable[[str], str]) -> Iterator[SyncStack]:
    with sync_stack(database_url("roster"), database_url("sync"), schools=4, teachers=40) as running:
        yield running


def queue_run(session: Session, stack: SyncStack, run_id: str, *, queued: dt.datetime) -> None:
    """A manual run of the stack's district, QUEUED since ``queued``."""
    repository.insert_run(
        session,
        run_id=run_id,
        district_id=stack.district_id,
        trigger=SyncTrigger.MANUAL,
        requested_by="test",
        approved_run_id=None,
        now=queued,
        message="queued",
    )


def bookkeeping_records(stack: SyncStack) -> tuple[dict[str, str], dict[str, str | None]]:
    with stack.app.sessions() as session:
        created = {
            m.classlink_school_id: m.ew_school_id
            for m in mappings.list_mappings(session, stack.district_id)
            if m.origin is MappingOrigin.CREATED
        }
        return links.list_links(session, stack.district_id), created


async def test_a_run_that_died_after_its_commit_is_finished_by_recovery(stack: SyncStack) -> None:
    events = stack.client.sync_rosters(stack.district_id)
    last = list(events)[-1]
    assert events.run is not None and last.state == sync_pb2.SYNC_RUN_STATE_SUCCEEDED
    run_id = events.run.run_id
    records = bookkeeping_records(stack)
    assert records[0] and records[1]
    roster_before = stack.roster.snapshot()
    # Rewind the sync DB to the moment after the commit: the run RUNNING with a stale heartbeat,
    # none of its bookkeeping written, no final event.
    with stack.app.sessions.begin() as session:
        session.execute(
            delete(SyncRunEvent).where(SyncRunEvent.run_id == run_id, SyncRunEvent.sequence == last.sequence)
        )
        session.execute(
            update(SyncRun)
            .where(SyncRun.id == run_id)
            .values(
                state=SyncRunState.RUNNING,
                end_time=None,
                heartbeat_time=utcnow() - LONG_AGO,
                last_sequence=last.sequence - 1,
            )
        )
        session.execute(delete(TeacherLink))
        session.execute(delete(SchoolMapping).where(SchoolMapping.origin == MappingOrigin.CREATED))
        session.execute(update(Connection).values(last_success_time=None))

    await recovery.recover(stack.app, tasks.enqueue_run)

    run = stack.client.get_run(events.run.name)
    assert run.state == sync_pb2.SYNC_RUN_STATE_SUCCEEDED
    assert run.percent == 100 and run.summary == last.summary
    assert bookkeeping_records(stack) == records
    assert stack.client.get_connection(stack.district_id).HasField("last_success_time")
    assert stack.roster.snapshot() == roster_before
    replay = list(stack.client.watch_run(events.run.name, after_sequence=last.sequence - 1))
    assert [e.state for e in replay] == [sync_pb2.SYNC_RUN_STATE_SUCCEEDED]
    again = list(stack.client.sync_rosters(stack.district_id))[-1]
    assert again.summary.teachers_added == 0 and again.summary.schools_created == 0


async def test_a_run_that_died_between_bookkeeping_chunks_is_completed_by_recovery(stack: SyncStack) -> None:
    events = stack.client.sync_rosters(stack.district_id)
    last = list(events)[-1]
    assert events.run is not None and last.state == sync_pb2.SYNC_RUN_STATE_SUCCEEDED
    run_id = events.run.run_id
    records = bookkeeping_records(stack)
    with stack.app.sessions() as session:
        journal_size = len(run_changes.changes_of_run(session, run_id))
    assert journal_size > 10
    # Rewind the sync DB to a worker that stopped midway through its chunks: every other link
    # written, the first journal chunk stored, the run RUNNING and stale, no final event.
    written_links = sorted(records[0])[::2]
    with stack.app.sessions.begin() as session:
        session.execute(
            delete(SyncRunEvent).where(SyncRunEvent.run_id == run_id, SyncRunEvent.sequence == last.sequence)
        )
        session.execute(
            update(SyncRun)
            .where(SyncRun.id == run_id)
            .values(
                state=SyncRunState.RUNNING,
                end_time=None,
                heartbeat_time=utcnow() - LONG_AGO,
                last_sequence=last.sequence - 1,
            )
        )
        session.execute(delete(TeacherLink).where(TeacherLink.classlink_user_id.not_in(written_links)))
        session.execute(delete(RunChange).where(RunChange.run_id == run_id, RunChange.position >= 10))
        session.execute(update(Connection).values(last_success_time=None))

    await recovery.recover(stack.app, tasks.enqueue_run)

    run = stack.client.get_run(events.run.name)
    assert run.state == sync_pb2.SYNC_RUN_STATE_SUCCEEDED and run.percent == 100
    assert bookkeeping_records(stack) == records
    with stack.app.sessions() as session:
        # A half journal would make a revert undo half a run: a recovered run has none.
        assert run_changes.changes_of_run(session, run_id) == []
    assert stack.client.get_connection(stack.district_id).HasField("last_success_time")
    again = list(stack.client.sync_rosters(stack.district_id))[-1]
    assert again.summary.teachers_added == 0 and again.summary.teachers_updated == 0
    assert bookkeeping_records(stack) == records


async def test_a_run_that_died_with_an_open_change_set_fails_and_the_change_set_is_abandoned(
    stack: SyncStack,
) -> None:
    roster_before = stack.roster.snapshot()
    change_set = stack.roster.client.create_change_set(stack.district_id, request_id=str(uuid.uuid4()))
    stack.roster.client.stage_changes(
        change_set.name,
        1,
        [
            roster_pb2.Change(
                create_school=roster_pb2.CreateSchoolChange(ref="half", display_name="Half Applied")
            )
        ],
    )
    run_id = str(uuid.uuid4())
    with stack.app.sessions.begin() as session:
        queue_run(session, stack, run_id, queued=utcnow() - LONG_AGO)
        assert repository.claim(session, run_id, "dead-worker", utcnow() - LONG_AGO)
        repository.set_run_fields(session, run_id, "dead-worker", change_set_name=change_set.name)

    await recovery.recover(stack.app, tasks.enqueue_run)

    run = stack.client.get_run(f"districts/{stack.district_id}/syncRuns/{run_id}")
    assert run.state == sync_pb2.SYNC_RUN_STATE_FAILED
    assert run.error_message == recovery.WORKER_DIED
    assert stack.roster.client.get_change_set(change_set.name).state == roster_pb2.CHANGE_SET_STATE_ABANDONED
    assert stack.roster.snapshot() == roster_before
    with stack.app.sessions() as session:
        assert session.scalar(select(SyncRun.state).where(SyncRun.id == run_id)) is SyncRunState.FAILED


async def test_a_cancelled_run_whose_worker_died_ends_cancelled(stack: SyncStack) -> None:
    roster_before = stack.roster.snapshot()
    run_id = str(uuid.uuid4())
    with stack.app.sessions.begin() as session:
        queue_run(session, stack, run_id, queued=utcnow() - LONG_AGO)
        assert repository.claim(session, run_id, "dead-worker", utcnow() - LONG_AGO)
        assert repository.request_cancel(session, run_id)

    await recovery.recover(stack.app, tasks.enqueue_run)

    run = stack.client.get_run(f"districts/{stack.district_id}/syncRuns/{run_id}")
    assert run.state == sync_pb2.SYNC_RUN_STATE_CANCELLED and run.error_message == ""
    assert stack.roster.snapshot() == roster_before


async def test_a_running_run_with_a_fresh_heartbeat_is_left_alone(stack: SyncStack) -> None:
    run_id = str(uuid.uuid4())
    with stack.app.sessions.begin() as session:
        queue_run(session, stack, run_id, queued=utcnow())
        assert repository.claim(session, run_id, "live-worker", utcnow())

    await recovery.recover(stack.app, tasks.enqueue_run)

    with stack.app.sessions() as session:
        assert session.scalar(select(SyncRun.state).where(SyncRun.id == run_id)) is SyncRunState.RUNNING


async def test_a_queued_run_whose_message_was_lost_is_sent_again_and_runs(stack: SyncStack) -> None:
    run_id = str(uuid.uuid4())
    with stack.app.sessions.begin() as session:
        queue_run(session, stack, run_id, queued=utcnow() - LONG_AGO)

    await recovery.recover(stack.app, tasks.enqueue_run)

    events = list(stack.client.watch_run(f"districts/{stack.district_id}/syncRuns/{run_id}"))
    assert events[-1].state == sync_pb2.SYNC_RUN_STATE_SUCCEEDED
    assert events[-1].summary.teachers_added > 0
