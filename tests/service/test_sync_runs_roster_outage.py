"""The roster service dies mid-run: recovery abandons what was left open and says what happened.

The roster server really stops (an interceptor stops it when the named call arrives), then a new
one comes back on its address and database, as after a restart.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable

import pytest
from ew.client import roster as roster_client
from ew.client.channels import open_aio_channel
from ew.roster.v1 import roster_pb2
from ew.sync.v1 import sync_pb2
from sqlalchemy import update

from services.common.clock import utc_now as utcnow
from services.sync.runs import executor, recovery, tasks
from services.sync.store.models import SyncRun
from tests.support.roster import StopOnCall, restarted_roster
from tests.support.sync_stack import SyncStack, sync_stack

pytestmark = pytest.mark.timeout(120)

DatabaseUrl = Callable[[str], str]


def stored_run(stack: SyncStack, run_id: str) -> SyncRun:
    with stack.app.sessions() as session:
        run = session.get(SyncRun, run_id)
        assert run is not None
        session.expunge(run)
        return run


async def roster_answers_again(stack: SyncStack) -> None:
    """Wait until the sync service's roster channels reconnect.

    Channels to one address with the same options share a subchannel that is still backing off
    from the outage; a recovery pass before it reconnects fails like one during the outage, and the
    next pass retries.
    """
    async with open_aio_channel(stack.app.settings.roster_target, None, roster_client.OPTIONS) as channel:
        await asyncio.wait_for(channel.channel_ready(), timeout=30)


def roster_stopped(stop: StopOnCall) -> None:
    assert stop.shutdown is not None, "the roster server was not stopped"
    assert stop.shutdown.wait(timeout=30)


async def test_a_change_set_whose_abandon_failed_is_abandoned_by_recovery(database_url: DatabaseUrl) -> None:
    stop = StopOnCall("StageChanges", after=False)
    with sync_stack(
        database_url("roster"), database_url("sync"), roster_interceptors=[stop], schools=3, teachers=12
    ) as stack:
        stop.roster = stack.roster
        roster_before = stack.roster.snapshot()

        events = stack.client.sync_rosters(stack.district_id)
        last = list(events)[-1]

        assert last.state == sync_pb2.SYNC_RUN_STATE_FAILED
        assert last.message == executor.ROSTER_UNAVAILABLE
        assert events.run is not None
        run = stored_run(stack, events.run.run_id)
        assert run.abandon_pending and run.change_set_name
        roster_stopped(stop)
        with restarted_roster(stack.roster) as roster:
            assert roster.get_change_set(run.change_set_name).state == roster_pb2.CHANGE_SET_STATE_OPEN

            await roster_answers_again(stack)
            await recovery.recover(stack.app, tasks.enqueue_run)

            change_set = roster.get_change_set(run.change_set_name)
            assert change_set.state == roster_pb2.CHANGE_SET_STATE_ABANDONED
            assert not stored_run(stack, run.id).abandon_pending
            assert stack.client.get_run(events.run.name).error_message == executor.ROSTER_UNAVAILABLE
            assert stack.roster.snapshot() == roster_before


@pytest.mark.parametrize(
    ("after", "state", "message", "change_set_state"),
    [
        (
            False,
            sync_pb2.SYNC_RUN_STATE_FAILED,
            recovery.ROSTER_LOST_NOT_SAVED,
            roster_pb2.CHANGE_SET_STATE_ABANDONED,
        ),
        (
            True,
            sync_pb2.SYNC_RUN_STATE_SUCCEEDED,
            recovery.ROSTER_LOST_SAVED,
            roster_pb2.CHANGE_SET_STATE_COMMITTED,
        ),
    ],
    ids=["before-the-commit-landed", "after-the-commit-landed"],
)
async def test_a_run_whose_roster_stopped_during_the_commit_says_so_and_whether_anything_changed(
    database_url: DatabaseUrl,
    after: bool,
    state: sync_pb2.SyncRunState.ValueType,
    message: str,
    change_set_state: roster_pb2.ChangeSetState.ValueType,
) -> None:
    stop = StopOnCall("CommitChangeSet", after=after)
    with sync_stack(
        database_url("roster"), database_url("sync"), roster_interceptors=[stop], schools=3, teachers=12
    ) as stack:
        stop.roster = stack.roster
        roster_before = stack.roster.snapshot()

        events = stack.client.sync_rosters(stack.district_id)
        waiting = next(e for e in events if e.message == executor.ROSTER_STOPPED_ANSWERING)
        events.close()

        assert waiting.state == sync_pb2.SYNC_RUN_STATE_RUNNING
        assert events.run is not None
        run = stored_run(stack, events.run.run_id)
        assert run.commit_interrupted and run.change_set_name
        roster_stopped(stop)
        # The worker stopped its heartbeat when it gave the run up; let it be as stale as a dead one.
        with stack.app.sessions.begin() as session:
            session.execute(
                update(SyncRun)
                .where(SyncRun.id == run.id)
                .values(heartbeat_time=utcnow() - dt.timedelta(hours=1))
            )
        with restarted_roster(stack.roster) as roster:
            await roster_answers_again(stack)
            await recovery.recover(stack.app, tasks.enqueue_run)

            final = list(stack.client.watch_run(events.run.name, after_sequence=waiting.sequence))[-1]
            assert (final.state, final.message) == (state, message)
            assert stack.client.get_run(events.run.name).state == state
            assert roster.get_change_set(run.change_set_name).state == change_set_state
            changed = stack.roster.snapshot() != roster_before
            assert changed is after
