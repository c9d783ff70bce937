"""A real HTTP server on 127.0.0.1 (port 0) standing in for the EW product's webhook endpoint.

It checks every request's ``EW-Signature`` with the client library's ``verify`` (a bad signature
gets 401 and counts as a failure), answers each request with the status ``answer`` chooses, and
records every request and, in order, the events it acknowledged with a 2xx.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ew.client.webhooks import SIGNATURE_HEADER, InvalidSignature, verify

SECRET = "whsec-test-secret"


@dataclass
class Receiver:
    """What the receiver saw; ``answer(n)`` is the status of the n-th request (1-based).

    ``now`` tells the time signatures are checked against (a test's clock when the sender has one).
    """

    answer: Callable[[int], int]
    now: Callable[[], float] = time.time
    secret: str = SECRET
    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    request_times: list[float] = field(default_factory=list)
    acknowledged: list[dict[str, Any]] = field(default_factory=list)
    bad_signatures: int = 0
    changed: threading.Condition = field(default_factory=threading.Condition)

    def handle(self, body: bytes, signature: str) -> int:
        """Verify, record and answer one request."""
        with self.changed:
            try:
                verify(self.secret, signature, body, now=self.now())
            except InvalidSignature:
                self.bad_signatures += 1
                self.changed.notify_all()
                return 401
            event = json.loads(body)
            self.requests.append(event)
            self.request_times.append(self.now())
            status = self.answer(len(self.requests))
            if 200 <= status < 300:
                self.acknowledged.append(event)
            self.changed.notify_all()
            return status

    def wait_for(self, predicate: Callable[[Receiver], bool], timeout: float = 30) -> bool:
        """Block until ``predicate`` holds (re-checked on every request), or the timeout."""
        with self.changed:
            return self.changed.wait_for(lambda: predicate(self), timeout=timeout)

    def acknowledged_ids(self) -> list[str]:
        """The acknowledged events' ids, in the order they were acknowledged."""
        with self.changed:
            return [event["id"] for event in self.acknowledged]


@contextmanager
def running_receiver(
    answer: Callable[[int], int] = lambda n: 200, *, now: Callable[[], float] = time.time
) -> Iterator[Receiver]:
    """Serve a ``Receiver`` on a free local port until the block ends; ``now`` is its clock."""
    receiver = Receiver(answer, now)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            if len(body) < length:  # the sender died mid-request (a test killed it): nothing to check
                self.close_connection = True
                return
            status = receiver.handle(body, self.headers.get(SIGNATURE_HEADER, ""))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the test asserts on what was recorded."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/ew/webhooks"
    thread = threading.Thread(target=server.serve_forever, name="webhook-receiver", daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
