"""A sync's progress stream survives a dropped connection: the client re-attaches and loses no event."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from ew.client.sync import SyncClient
from ew.sync.v1 import sync_pb2

from tests.support.proxy import CuttableProxy
from tests.support.sync_stack import SyncStack, paged_stack

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def stack(database_url: Callable[[str], str]) -> Iterator[SyncStack]:
    with paged_stack(database_url) as running:
        yield running


def test_a_connection_reset_mid_sync_reattaches_and_every_event_arrives_once_in_order(
    stack: SyncStack,
) -> None:
    # Slow teacher pages keep the run in its teachers phase while the connection is cut.
    stack.sandbox.set_faults([{"kind": "slow", "delay": 0.4, "times": -1, "path": "teachers"}])
    proxy = CuttableProxy(stack.server.target)
    token = stack.token()
    try:
        with SyncClient(proxy.address, token=lambda: token) as client:
            events = client.sync_rosters(stack.district_id)
            seen: list[sync_pb2.SyncEvent] = []
            for event in events:
                seen.append(event)
                if (
                    len(seen) == 1
                    or event.phase != sync_pb2.SYNC_PHASE_READING_TEACHERS
                    or events.reattach_count
                ):
                    continue
                proxy.cut()
    finally:
        proxy.close()

    assert events.reattach_count >= 1 and proxy.accepted >= 2
    assert seen[-1].state == sync_pb2.SYNC_RUN_STATE_SUCCEEDED, seen[-1].message
    assert [e.sequence for e in seen] == list(range(1, len(seen) + 1))
    everything = list(stack.client.watch_run(events.run_name))
    assert [(e.sequence, e.phase, e.percent) for e in seen] == [
        (e.sequence, e.phase, e.percent) for e in everything
    ]
