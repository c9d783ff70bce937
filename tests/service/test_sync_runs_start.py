"""StartSyncRun: the unary way to start a sync. It returns the run at once, and attaches to an active one."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from ew.sync.v1 import sync_pb2

from tests.support.sync_stack import SyncStack, sync_stack

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def stack(database_url: Callable[[str], str]) -> Iterator[SyncStack]:
    with sync_stack(database_url("roster"), database_url("sync"), schools=2, teachers=10) as running:
        yield running


def test_start_returns_the_run_attaches_while_it_is_active_and_the_run_can_be_followed(
    stack: SyncStack,
) -> None:
    # ClassLink is slow, so the run is still active when the second call arrives.
    stack.sandbox.set_faults([{"kind": "slow", "delay": 1.5, "times": 1, "path": "teachers"}])

    run = stack.client.start_sync_run(stack.district_id)
    again = stack.client.start_sync_run(stack.district_id)

    assert run.name == f"districts/{stack.district_id}/syncRuns/{run.run_id}"
    assert run.state in (sync_pb2.SYNC_RUN_STATE_QUEUED, sync_pb2.SYNC_RUN_STATE_RUNNING)
    assert again.name == run.name
    events = list(stack.client.watch_run(run.name))
    assert events[-1].state == sync_pb2.SYNC_RUN_STATE_SUCCEEDED, events[-1].message
    assert stack.client.get_run(run.name).state == sync_pb2.SYNC_RUN_STATE_SUCCEEDED
    # A new start after the end is a new run.
    assert stack.client.start_sync_run(stack.district_id).name != run.name
