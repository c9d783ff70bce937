"""The dead-letter path on the embedded broker: a message that keeps failing ends its run FAILED.

The integration suite repeats this against Redis and RabbitMQ with a separate worker process
(``tests/integration/test_brokers.py``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import pytest
from dramatiq.brokers.stub import StubBroker
from ew.sync.v1 import sync_pb2

from services.common.pagetokens import SyncPageTokens
from services.sync.runs import tasks
from services.sync.runs.usecases import Runs
from tests.support.sync_stack import SyncStack, sync_stack

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def stack(database_url: Callable[[str], str]) -> Iterator[SyncStack]:
    with sync_stack(database_url("roster"), database_url("sync"), schools=2, teachers=10) as running:
        yield running


def test_a_poisoned_message_exhausts_its_retries_and_its_run_ends_failed_with_the_reason(
    stack: SyncStack,
) -> None:
    before = stack.roster.snapshot()
    runs = Runs(stack.app, SyncPageTokens(b"k" * 32), enqueue=lambda run_id: None)
    started = asyncio.run(
        runs.start(district_id=stack.district_id, requested_by="admin", approve_run_id=None)
    )
    name = f"districts/{stack.district_id}/syncRuns/{started.run.id}"

    # A message the actor cannot take (an argument too many): every attempt raises.
    poisoned = tasks.run_sync.send_with_options(
        args=(started.run.id, "unexpected"), max_retries=2, min_backoff=10, max_backoff=20
    )

    events = list(stack.client.watch_run(name))
    # The broker moved the message to its dead-letter queue; later tests join the queue with
    # fail_fast, which would re-raise it, so it is taken out again.
    broker = stack.app.broker
    assert isinstance(broker, StubBroker)
    broker.join(tasks.QUEUE, timeout=30_000, fail_fast=False)
    dead = broker.dead_letters_by_queue[tasks.QUEUE]
    assert [message.message_id for message in dead] == [poisoned.message_id]
    dead.clear()
    assert [event.state for event in events] == [
        sync_pb2.SYNC_RUN_STATE_QUEUED,
        sync_pb2.SYNC_RUN_STATE_FAILED,
    ]
    failed = stack.client.get_run(name)
    assert "The job queue gave up on this sync (TypeError:" in failed.error_message
    assert "nothing was changed" in failed.error_message
    assert stack.roster.snapshot() == before
    assert list(stack.client.sync_rosters(stack.district_id))[-1].state == sync_pb2.SYNC_RUN_STATE_SUCCEEDED
