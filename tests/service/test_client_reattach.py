"""A sync's progress stream survives a dropped connection: the client re-attaches and loses no event."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator

import pytest
from ew.client.sync import SyncClient
from ew.sync.v1 import sync_pb2

from tests.support.sync_stack import SyncStack, paged_stack

pytestmark = pytest.mark.timeout(120)


class CuttableProxy:
    """A TCP proxy in front of a server; ``cut()`` resets every open connection, new ones still work."""

    def __init__(self, target: str) -> None:
        host, _, port = target.rpartition(":")
        self._target = (host, int(port))
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        self.accepted = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self._target)
            with self._lock:
                self._open += [client, upstream]
                self.accepted += 1
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            return

    def cut(self) -> None:
        """Reset every connection open now, as a flaky network or a restarted load balancer does."""
        with self._lock:
            sockets, self._open = self._open, []
        for sock in sockets:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            sock.close()

    def close(self) -> None:
        """Stop accepting and reset what is open."""
        self._listener.close()
        self.cut()


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
