"""CancelSyncRun in every state a run can be in, each proving what a cancel may and may not change.

A run is paused deterministically by holding one roster call (``HoldOnCall``): while the worker
waits on StageChanges the run is RUNNING before its commit; while it waits on CommitChangeSet the
commit has started. A cancelled run leaves EW's roster exactly as it was, and nothing staged.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from ew.client.cli import EXIT_CANCELLED, EXIT_FAILED, app
from ew.client.errors import (
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
)
from ew.sync.v1 import sync_pb2
from sqlalchemy import select
from typer.testing import CliRunner, Result

from services.common.errors import Aborted, FailedPrecondition
from services.common.pagetokens import SyncPageTokens
from services.sync.runs import repository, tasks
from services.sync.runs.usecases import Runs, _cancel_waiting, create_or_attach
from services.sync.store.models import OutboxEvent, SyncRun
from services.sync.vocabulary import SyncRunState, SyncTrigger, WebhookEventType
from tests.support.pg_locks import blocked_on_a_lock, postgresql_only
from tests.support.roster import HoldOnCall
from tests.support.sync_stack import SyncStack, sync_stack

pytestmark = pytest.mark.timeout(120)

HOLD_TIMEOUT = 30


@contextmanager
def held_stack(database_url: Callable[[str], str], method: str) -> Iterator[tuple[SyncStack, HoldOnCall]]:
    hold = HoldOnCall(method)
    with sync_stack(
        database_url("roster"), database_url("sync"), roster_interceptors=[hold], schools=3, teachers=30
    ) as stack:
        try:
            yield stack, hold
        finally:
            hold.release()


@pytest.fixture
def stack(database_url: Callable[[str], str]) -> Iterator[SyncStack]:
    with sync_stack(database_url("roster"), database_url("sync"), schools=3, teachers=30) as running:
        yield running


def webhook_types(stack: SyncStack) -> list[WebhookEventType]:
    with stack.app.sessions() as session:
        return list(session.scalars(select(OutboxEvent.event_type).order_by(OutboxEvent.position)))


def states(events: list[sync_pb2.SyncEvent]) -> list[sync_pb2.SyncRunState.ValueType]:
    return [event.state for event in events]


def test_a_queued_run_is_cancelled_at_once_and_the_worker_that_receives_it_does_nothing(
    stack: SyncStack,
) -> None:
    before = stack.roster.snapshot()
    sent: list[str] = []
    runs = Runs(stack.app, SyncPageTokens(b"k" * 32), enqueue=sent.append)
    started = asyncio.run(
        runs.start(district_id=stack.district_id, requested_by="admin", approve_run_id=None)
    )
    name = f"districts/{stack.district_id}/syncRuns/{started.run.id}"
    assert stack.client.get_run(name).state == sync_pb2.SYNC_RUN_STATE_QUEUED

    cancelled = stack.client.cancel_run(name)

    assert cancelled.state == sync_pb2.SYNC_RUN_STATE_CANCELLED
    assert cancelled.HasField("end_time") and not cancelled.HasField("start_time")
    # The message arrives after the cancel: the worker finds the run taken and writes nothing.
    assert sent == [started.run.id]
    tasks.enqueue_run(started.run.id)
    stack.app.broker.join(tasks.QUEUE)
    after = stack.client.get_run(name)
    assert after.state == sync_pb2.SYNC_RUN_STATE_CANCELLED and after.last_sequence == cancelled.last_sequence
    assert not after.HasField("start_time")
    events = list(stack.client.watch_run(name))
    assert states(events) == [sync_pb2.SYNC_RUN_STATE_QUEUED, sync_pb2.SYNC_RUN_STATE_CANCELLED]
    assert "nothing was changed" in events[-1].message
    assert stack.roster.snapshot() == before
    assert webhook_types(stack) == [WebhookEventType.SYNC_RUN_CANCELLED]
    # The district is free again: the next sync runs.
    assert list(stack.client.sync_rosters(stack.district_id))[-1].state == sync_pb2.SYNC_RUN_STATE_SUCCEEDED


def test_a_running_run_stops_before_its_commit_abandons_its_change_set_and_changes_nothing(
    database_url: Callable[[str], str],
) -> None:
    with held_stack(database_url, "StageChanges") as (stack, hold):
        before = stack.roster.snapshot()
        run = stack.client.start_sync_run(stack.district_id)
        assert hold.reached.wait(HOLD_TIMEOUT)

        requested = stack.client.cancel_run(run.name)
        assert requested.state == sync_pb2.SYNC_RUN_STATE_RUNNING and requested.cancel_requested
        # Asking twice is the same request.
        assert stack.client.cancel_run(run.name).cancel_requested
        hold.release()
        events = list(stack.client.watch_run(run.name))

        assert events[-1].state == sync_pb2.SYNC_RUN_STATE_CANCELLED
        assert sync_pb2.SYNC_PHASE_COMMITTING not in {event.phase for event in events}
        assert all(event.percent < 100 for event in events)
        assert stack.roster.snapshot() == before
        assert stack.roster.staged_rows() == 0
        ended = stack.client.get_run(run.name)
        assert ended.state == sync_pb2.SYNC_RUN_STATE_CANCELLED and ended.error_message == ""
        assert webhook_types(stack) == [WebhookEventType.SYNC_RUN_CANCELLED]
        assert (
            list(stack.client.sync_rosters(stack.district_id))[-1].state == sync_pb2.SYNC_RUN_STATE_SUCCEEDED
        )


SLOW_PAGE_SECONDS = 10.0


def test_a_run_reading_a_slow_classlink_page_stops_without_waiting_for_it(stack: SyncStack) -> None:
    before = stack.roster.snapshot()
    stack.sandbox.set_faults([{"kind": "slow", "delay": SLOW_PAGE_SECONDS, "times": 1, "path": "teachers"}])
    run = stack.client.start_sync_run(stack.district_id)
    events = iter(stack.client.watch_run(run.name))
    assert any(event.phase == sync_pb2.SYNC_PHASE_READING_TEACHERS for event in events)

    cancelled_at = time.monotonic()
    assert stack.client.cancel_run(run.name).cancel_requested
    last = list(events)[-1]

    # The heartbeat reads the cancel within about a second; the page is still seconds away.
    assert time.monotonic() - cancelled_at < SLOW_PAGE_SECONDS / 2
    assert last.state == sync_pb2.SYNC_RUN_STATE_CANCELLED
    assert last.phase == sync_pb2.SYNC_PHASE_READING_TEACHERS
    assert stack.roster.snapshot() == before
    assert webhook_types(stack) == [WebhookEventType.SYNC_RUN_CANCELLED]


def test_once_the_commit_has_started_it_is_too_late_to_cancel(database_url: Callable[[str], str]) -> None:
    with held_stack(database_url, "CommitChangeSet") as (stack, hold):
        run = stack.client.start_sync_run(stack.district_id)
        assert hold.reached.wait(HOLD_TIMEOUT)

        with pytest.raises(FailedPreconditionError) as refused:
            stack.client.cancel_run(run.name)

        assert "too late to cancel; the sync is saving" in refused.value.message
        assert refused.value.reason == "RUN_COMMITTING"
        assert not stack.client.get_run(run.name).cancel_requested
        hold.release()
        assert list(stack.client.watch_run(run.name))[-1].state == sync_pb2.SYNC_RUN_STATE_SUCCEEDED
        assert stack.roster.snapshot()["teachers"]


def run_needing_review(stack: SyncStack) -> sync_pb2.SyncRun:
    """A first sync, then ClassLink loses a third of the teachers: the second run needs review."""
    assert list(stack.client.sync_rosters(stack.district_id))[-1].state == sync_pb2.SYNC_RUN_STATE_SUCCEEDED
    teachers = [u for u in stack.sandbox.roster()["users"] if u["role"] == "teacher"]
    stack.sandbox.mutate([{"op": "remove_user", "sourcedId": u["sourcedId"]} for u in teachers[:10]])
    review = stack.client.sync_rosters(stack.district_id)
    assert list(review)[-1].state == sync_pb2.SYNC_RUN_STATE_NEEDS_REVIEW
    assert review.run is not None
    return review.run


def test_a_run_waiting_for_review_is_cancelled_and_can_no_longer_be_approved(stack: SyncStack) -> None:
    reviewed = run_needing_review(stack)
    before = stack.roster.snapshot()

    cancelled = stack.client.cancel_run(reviewed.name)

    assert cancelled.state == sync_pb2.SYNC_RUN_STATE_CANCELLED
    with pytest.raises(FailedPreconditionError) as refused:
        stack.client.start_sync_run(stack.district_id, approve_run=reviewed.run_id)
    assert refused.value.reason == "RUN_NOT_IN_REVIEW"
    assert stack.roster.snapshot() == before
    assert webhook_types(stack)[-2:] == [
        WebhookEventType.SYNC_RUN_NEEDS_REVIEW,
        WebhookEventType.SYNC_RUN_CANCELLED,
    ]


def test_a_reviewed_run_that_was_approved_and_applied_cannot_be_cancelled(stack: SyncStack) -> None:
    reviewed = run_needing_review(stack)
    approved = list(stack.client.sync_rosters(stack.district_id, approve_run=reviewed.run_id))
    assert approved[-1].state == sync_pb2.SYNC_RUN_STATE_SUCCEEDED

    with pytest.raises(FailedPreconditionError) as refused:
        stack.client.cancel_run(reviewed.name)

    assert refused.value.reason == "RUN_ALREADY_APPROVED"
    assert stack.client.get_run(reviewed.name).state == sync_pb2.SYNC_RUN_STATE_NEEDS_REVIEW


def test_a_reviewed_run_whose_approval_is_applying_it_points_at_the_approval_run(stack: SyncStack) -> None:
    reviewed = run_needing_review(stack)
    sent: list[str] = []
    runs = Runs(stack.app, SyncPageTokens(b"k" * 32), enqueue=sent.append)
    approval = asyncio.run(
        runs.start(district_id=stack.district_id, requested_by="admin", approve_run_id=reviewed.run_id)
    ).run
    before = stack.roster.snapshot()

    with pytest.raises(FailedPreconditionError) as refused:
        stack.client.cancel_run(reviewed.name)

    assert refused.value.reason == "RUN_APPROVAL_ACTIVE"
    assert f"cancel run {approval.id} instead" in refused.value.message
    assert stack.client.get_run(reviewed.name).state == sync_pb2.SYNC_RUN_STATE_NEEDS_REVIEW
    # Cancelling the approval run instead works, and the review can then be cancelled too.
    cancelled = stack.client.cancel_run(f"districts/{stack.district_id}/syncRuns/{approval.id}")
    assert cancelled.state == sync_pb2.SYNC_RUN_STATE_CANCELLED
    assert stack.client.cancel_run(reviewed.name).state == sync_pb2.SYNC_RUN_STATE_CANCELLED
    assert stack.roster.snapshot() == before


@postgresql_only
def test_a_cancel_racing_an_approval_of_the_same_review_waits_for_it_and_is_refused(
    stack: SyncStack,
) -> None:
    reviewed = run_needing_review(stack)
    outcome: list[BaseException | bool] = []
    done = threading.Event()

    def cancel() -> None:
        runs = Runs(stack.app, SyncPageTokens(b"k" * 32), enqueue=lambda run_id: None)
        try:
            outcome.append(asyncio.run(runs.cancel(stack.district_id, reviewed.run_id)) is not None)
        except BaseException as error:
            outcome.append(error)
        finally:
            done.set()

    with stack.app.sessions.begin() as approving:
        # The approval is written but not committed when the cancel arrives.
        create_or_attach(
            approving,
            district_id=stack.district_id,
            requested_by="admin",
            approve_run_id=reviewed.run_id,
            trigger=SyncTrigger.MANUAL,
            now=stack.app.clock(),
        )
        canceller = threading.Thread(target=cancel)
        canceller.start()
        assert blocked_on_a_lock(stack.app.engine, done.is_set), (
            f"the cancel did not wait for the approval: {outcome}"
        )
    canceller.join(HOLD_TIMEOUT)

    assert len(outcome) == 1 and isinstance(outcome[0], FailedPrecondition), outcome
    assert outcome[0].reason == "RUN_APPROVAL_ACTIVE"
    with stack.app.sessions() as session:
        states = {run.id: run.state for run in session.scalars(select(SyncRun))}
    assert states[reviewed.run_id] is SyncRunState.NEEDS_REVIEW
    assert SyncRunState.QUEUED in states.values()


def test_a_cancel_whose_fenced_write_is_refused_says_try_again_and_changes_nothing(stack: SyncStack) -> None:
    runs = Runs(stack.app, SyncPageTokens(b"k" * 32), enqueue=lambda run_id: None)
    queued = asyncio.run(runs.start(district_id=stack.district_id, requested_by="admin", approve_run_id=None))
    # The run as a cancel read it; a worker claims it before the cancel writes.
    with stack.app.sessions.begin() as session:
        assert repository.claim(session, queued.run.id, "worker-1", stack.app.clock())

    with pytest.raises(Aborted) as refused, stack.app.sessions.begin() as session:
        _cancel_waiting(session, queued.run, stack.app.clock())

    assert refused.value.reason == "RUN_CHANGED"
    assert "changed while cancelling; try again" in str(refused.value)
    with stack.app.sessions() as session:
        run = session.get(SyncRun, queued.run.id)
        assert run is not None and run.state is SyncRunState.RUNNING and not run.cancel_requested


def test_an_ended_run_cannot_be_cancelled_and_the_refusal_names_its_state(stack: SyncStack) -> None:
    events = stack.client.sync_rosters(stack.district_id)
    assert list(events)[-1].state == sync_pb2.SYNC_RUN_STATE_SUCCEEDED
    assert events.run is not None
    before = stack.roster.snapshot()

    with pytest.raises(FailedPreconditionError) as refused:
        stack.client.cancel_run(events.run.name)

    assert "SUCCEEDED" in refused.value.message and refused.value.reason == "RUN_ENDED"
    assert stack.client.get_run(events.run.name).state == sync_pb2.SYNC_RUN_STATE_SUCCEEDED
    assert stack.roster.snapshot() == before


def test_cancel_validates_the_name_and_the_caller(stack: SyncStack) -> None:
    with pytest.raises(InvalidArgumentError) as invalid:
        stack.client.cancel_run(f"districts/{stack.district_id}/syncRuns/not-a-uuid")
    assert "UUID" in invalid.value.message
    with pytest.raises(NotFoundError):
        stack.client.cancel_run(
            f"districts/{stack.district_id}/syncRuns/00000000-0000-4000-8000-000000000000"
        )
    other = stack.client_as(stack.token(district_id="d-other"))
    try:
        with pytest.raises(PermissionDeniedError):
            other.cancel_run(f"districts/{stack.district_id}/syncRuns/00000000-0000-4000-8000-000000000000")
    finally:
        other.close()


def test_ew_sync_cancel_cancels_a_queued_run_and_refuses_an_ended_one(stack: SyncStack) -> None:
    runs = Runs(stack.app, SyncPageTokens(b"k" * 32), enqueue=lambda run_id: None)
    queued = asyncio.run(runs.start(district_id=stack.district_id, requested_by="admin", approve_run_id=None))

    def ew_sync(*args: str) -> Result:
        return CliRunner().invoke(
            app, ["--target", stack.server.target, *args], env={"EW_TOKEN": stack.token(), "COLUMNS": "200"}
        )

    cancelled = ew_sync("cancel", queued.run.id)
    assert cancelled.exit_code == 0, cancelled.output
    assert f"Run {queued.run.id} is cancelled; nothing was changed." in cancelled.stdout

    again = ew_sync("cancel", queued.run.id)
    assert again.exit_code == EXIT_FAILED
    assert "has already ended (CANCELLED)" in again.output and "RUN_ENDED" in again.output
    watched = ew_sync("watch", queued.run.id)
    assert watched.exit_code == EXIT_CANCELLED
    assert "The sync was cancelled; nothing was changed." in watched.stdout
