"""A OneRoster 1.1 server on a free local port that answers exactly what a test scripts.

Each collection (``schools``, ``teachers``, ``users``) serves the script's rows in pages (limit and
offset, ``X-Total-Count``), or a canned reply (any status, content type and bytes) when the script
has one for it. Credentials are not checked. The bad-input suite uses it for bodies the sandbox
cannot produce: HTML or an imsx failure with status 200, a total that lies, arbitrary rows.

    with canned_oneroster() as server:
        server.script = Script(schools=[...], teachers=[...], replies={"teachers": Reply(b"<html>")})
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

BASE_PATH = "/ims/oneroster/v1p1/"
# The JSON key each collection's rows travel under.
KEYS = {"schools": "orgs", "teachers": "users", "users": "users"}


@dataclass(frozen=True)
class Reply:
    """A canned answer: the body as bytes, with its status and content type."""

    body: bytes
    status: int = 200
    content_type: str = "application/json"


@dataclass(frozen=True)
class Script:
    """What the server serves: rows per collection, canned replies, and totals that override the truth."""

    schools: list[Any] = field(default_factory=list)
    teachers: list[Any] = field(default_factory=list)
    replies: dict[str, Reply] = field(default_factory=dict)
    totals: dict[str, int] = field(default_factory=dict)


class CannedServer:
    """The running server; assign ``script`` to change what it answers from the next request on."""

    def __init__(self, httpd: ThreadingHTTPServer) -> None:
        self.script = Script()
        self.url = f"http://127.0.0.1:{httpd.server_address[1]}"

    def answer(self, path: str, query: str) -> tuple[Reply, int | None]:
        """The reply to a GET of ``path`` and its ``X-Total-Count``."""
        script = self.script
        if not path.startswith(BASE_PATH):
            return Reply(b'{"imsx_codeMajor": "failure"}', status=404), None
        collection = path[len(BASE_PATH) :]
        if collection in script.replies:
            return script.replies[collection], None
        if collection not in KEYS:
            return Reply(b'{"imsx_codeMajor": "failure"}', status=404), None
        rows = {"schools": script.schools, "teachers": script.teachers}.get(collection, [])
        params = parse_qs(query)
        offset = int(params.get("offset", ["0"])[0])
        limit = int(params.get("limit", ["100"])[0])
        body = json.dumps({KEYS[collection]: rows[offset : offset + limit]}).encode()
        return Reply(body), script.totals.get(collection, len(rows))


def _handler(server: CannedServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            reply, total = server.answer(parts.path, parts.query)
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            if total is not None:
                self.send_header("X-Total-Count", str(total))
            self.end_headers()
            self.wfile.write(reply.body)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the suite's output is its tables."""

    return Handler


@contextmanager
def canned_oneroster() -> Iterator[CannedServer]:
    """Serve on 127.0.0.1 at a free port until the block ends."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    server = CannedServer(httpd)
    httpd.RequestHandlerClass = _handler(server)
    thread = threading.Thread(target=httpd.serve_forever, name="canned-oneroster", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)
