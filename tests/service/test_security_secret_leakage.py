"""Credentials never leave the process: not in logs, events, errors, responses or the database in clear text.

A whole administrator journey runs through the real servers with every logger at DEBUG: single
sign-on (ClassLink app secret, access token, partner token), a refused secret, a bearer
connection, an OAuth 1.0a connection, previews, a run that ClassLink refuses and a run that lands.
The HTTP transport is watched (not replaced) so the test knows every Authorization header that
went out: bearer tokens and OAuth 1.0a signatures. Then every place a person or an operator can
read is searched for each of them, and for any JWT at all.
"""

from __future__ import annotations

import http.client
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import grpc
import httpx
import pytest
from ew.client.errors import RosterError
from ew.sync.v1 import sync_pb2
from google.protobuf.message import Message
from oauthlib.oauth1.rfc5849 import utils

from services.sync.store.models import Connection
from tests.conftest import DatabaseFactory
from tests.support.db_dump import TableDump
from tests.support.sandbox import REDIRECT_URI, SandboxHandle, start_sandbox
from tests.support.sync_stack import DISTRICT, SyncStack, sign_in_stack

pytestmark = pytest.mark.timeout(180)

WRONG_SECRET = "not-the-secret-but-still-a-secret-3141592653"
JWT = re.compile(r"eyJ[\w-]+\.eyJ[\w-]+\.[\w-]+")


@dataclass
class Wire:
    """What the sync service sent over HTTP: every Authorization header and form body."""

    authorizations: list[str] = field(default_factory=list)
    bodies: list[str] = field(default_factory=list)

    def credentials(self) -> dict[str, str]:
        """Bearer tokens and OAuth 1.0a signatures seen on the wire, by a name for the report."""
        found: dict[str, str] = {}
        for header in self.authorizations:
            scheme, _, value = header.partition(" ")
            if scheme.lower() == "bearer":
                found[f"bearer token {value[:6]}…"] = value
            elif scheme.lower() == "oauth":
                params = dict(utils.parse_authorization_header(header))
                signature = utils.unescape(params["oauth_signature"])
                found[f"oauth signature {signature[:6]}…"] = signature
                found[f"encoded oauth signature {signature[:6]}…"] = params["oauth_signature"]
        for body in self.bodies:
            for name, values in parse_qs(body).items():
                if name in ("client_secret", "code", "access_token"):
                    found[f"form {name}"] = values[0]
        return found


@pytest.fixture
def wire(monkeypatch: pytest.MonkeyPatch) -> Wire:
    """Record each request the sync service's httpx clients send, then send it unchanged."""
    seen = Wire()
    send = httpx.AsyncHTTPTransport.handle_async_request

    async def watched(transport: httpx.AsyncHTTPTransport, request: httpx.Request) -> httpx.Response:
        if "authorization" in request.headers:
            seen.authorizations.append(request.headers["authorization"])
        if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            seen.bodies.append(request.content.decode())
        return await send(transport, request)

    monkeypatch.setattr(httpx.AsyncHTTPTransport, "handle_async_request", watched)
    return seen


@pytest.fixture
def everything_logged(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Every record of every logger at DEBUG, including loggers that set their own level."""
    caplog.set_level(logging.DEBUG)
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if isinstance(logger, logging.Logger) and logger.level > logging.DEBUG:
            caplog.set_level(logging.DEBUG, logger=name)
    return caplog


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxHandle]:
    with start_sandbox(schools=3, teachers=15) as handle:
        yield handle


@pytest.fixture
def stack(sandbox: SandboxHandle, database_url: DatabaseFactory) -> Iterator[SyncStack]:
    with sign_in_stack(database_url, sandbox) as running:
        yield running


@dataclass
class Readable:
    """Everything a caller or an operator could read, as text."""

    parts: list[str] = field(default_factory=list)

    def add(self, value: Message | str | object) -> None:
        self.parts.append(str(value))

    def text(self) -> str:
        return "\n".join(self.parts)


def sign_in(stack: SyncStack, readable: Readable) -> tuple[str, str]:
    """Start single sign-on and play the browser: ClassLink redirects back with a code and the state.

    The browser is not the service, so it speaks plain ``http.client``, which logs nothing.
    """
    start = stack.client.start_sign_in(DISTRICT, REDIRECT_URI)
    readable.add(start)
    url = urlsplit(start.authorization_url)
    browser = http.client.HTTPConnection(url.netloc, timeout=30)
    try:
        browser.request("GET", f"{url.path}?{url.query}")
        response = browser.getresponse()
        assert response.status == 302
        query = parse_qs(urlsplit(response.getheader("location", "")).query)
    finally:
        browser.close()
    return query["code"][0], query["state"][0]


def refused(call: Any, readable: Readable) -> RosterError:
    with pytest.raises(RosterError) as raised:
        call()
    error = raised.value
    readable.add(error)
    readable.add(repr(error))
    cause = error.__cause__
    if isinstance(cause, grpc.RpcError):
        readable.add(cause.details())
        readable.add(cause.trailing_metadata())
    return error


def run(stack: SyncStack, readable: Readable) -> sync_pb2.SyncEvent:
    """Run a sync, keep every event, replay them with WatchSyncRun and read the run and its items."""
    events = list(stack.client.sync_rosters(DISTRICT))
    for event in events:
        readable.add(event)
    name = events[-1].run
    for event in stack.client.watch_run(name):
        readable.add(event)
    readable.add(stack.client.get_run(name))
    readable.add(stack.client.list_runs(DISTRICT))
    readable.add(stack.client.list_run_items(name))
    return events[-1]


def test_no_credential_appears_in_logs_events_errors_responses_or_the_database(
    stack: SyncStack, sandbox: SandboxHandle, wire: Wire, everything_logged: pytest.LogCaptureFixture
) -> None:
    tenant = sandbox.tenant()
    readable = Readable()

    code, state = sign_in(stack, readable)
    readable.add(stack.client.connect_sign_in(DISTRICT, code, state))
    readable.add(stack.client.list_school_mappings(DISTRICT))

    wrong = lambda: stack.client.connect_manual(  # noqa: E731 - a call to make twice
        DISTRICT,
        server_url=tenant.server_url,
        client_id=tenant.client_id,
        client_secret=WRONG_SECRET,
        auth_method=sync_pb2.AUTH_METHOD_OAUTH1,
    )
    assert "rejected" in str(refused(wrong, readable))

    readable.add(
        stack.client.connect_manual(
            DISTRICT,
            server_url=tenant.server_url,
            client_id=tenant.client_id,
            client_secret=tenant.bearer_token,
            auth_method=sync_pb2.AUTH_METHOD_BEARER,
        )
    )
    readable.add(stack.client.preview_sync(DISTRICT))

    readable.add(
        stack.client.connect_manual(
            DISTRICT,
            server_url=tenant.server_url,
            client_id=tenant.client_id,
            client_secret=tenant.client_secret,
            auth_method=sync_pb2.AUTH_METHOD_OAUTH1,
        )
    )
    readable.add(stack.client.preview_sync(DISTRICT))
    sandbox.set_faults([{"kind": "status", "status": 401, "times": 100}])
    try:
        failed = run(stack, readable)
    finally:
        sandbox.clear_faults()
    assert failed.state == sync_pb2.SYNC_RUN_STATE_FAILED, failed.message
    landed = run(stack, readable)
    assert landed.state == sync_pb2.SYNC_RUN_STATE_SUCCEEDED, landed.message
    connection = stack.client.get_connection(DISTRICT)
    readable.add(connection)

    secrets = {
        "ClassLink client secret": tenant.client_secret,
        "ClassLink bearer token": tenant.bearer_token,
        "refused secret": WRONG_SECRET,
        "ClassLink app secret": sandbox.sso["client_secret"],
        "partner token": sandbox.partner_token,
        "sync service token": stack.app.service_tokens.token(),
        **wire.credentials(),
    }
    assert any(name.startswith("oauth signature") for name in secrets), "no OAuth 1.0a request was seen"
    assert any(name.startswith("bearer token") for name in secrets), "no bearer request was seen"
    assert all(len(value) >= 12 for value in secrets.values()), "too short to search for meaningfully"
    assert connection.secret_hint == f"…{tenant.client_secret[-4:]}"

    logs = everything_logged.text + "\n".join(
        f"{record.getMessage()} {record.exc_text or ''} {record.stack_info or ''}"
        for record in everything_logged.records
    )
    sync_db = TableDump(stack.app.engine).text()
    roster_db = TableDump(stack.roster.engine).text()
    places = {"logs": logs, "responses, events and errors": readable.text(), "sync database": sync_db}
    places["roster database"] = roster_db
    assert everything_logged.records, "nothing was logged: the capture is broken"
    for place, text in places.items():
        assert [name for name, value in secrets.items() if value in text] == [], place
        assert JWT.findall(text) == [], place

    with stack.app.sessions() as session:
        stored = session.get(Connection, DISTRICT)
        assert stored is not None
        assert stored.secret_ciphertext in sync_db
        assert stack.app.secrets.decrypt(stored.secret_ciphertext).get_secret_value() == tenant.client_secret
