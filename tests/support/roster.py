"""A real roster server on port 0 over a freshly migrated database, for the roster suites.

The server authenticates every call as in production (development key); the suite's client and
``Roster.channel()`` call as the sync service's identity, which may do everything.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple

import grpc
import pytest
from ew.client.errors import RosterError
from ew.client.roster import RosterClient
from sqlalchemy import Engine, func, select

from services.common.auth import AuthSettings, Metadata, ServiceTokenProvider
from services.common.tls import TlsSettings
from services.roster import migrate
from services.roster import repository as repo
from services.roster.db import roster_engine
from services.roster.server import RosterServer, create_server
from services.roster.settings import RosterSettings


class Clock:
    """A clock the test moves forward (change set expiry without waiting)."""

    def __init__(self) -> None:
        self._now = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)
        self._lock = threading.Lock()

    def __call__(self) -> dt.datetime:
        with self._lock:
            return self._now

    def advance(self, delta: dt.timedelta) -> None:
        """Move the clock forward."""
        with self._lock:
            self._now += delta


class _CallDetails(NamedTuple):
    method: str
    timeout: float | None
    metadata: Any
    credentials: grpc.CallCredentials | None
    wait_for_ready: bool | None
    compression: Any


class _Bearer(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    """Adds a token's ``authorization`` metadata to every call of a channel."""

    def __init__(self, metadata: Callable[[], Metadata]) -> None:
        self._metadata = metadata

    def _details(self, details: Any) -> Any:
        return _CallDetails(
            details.method,
            details.timeout,
            (*(details.metadata or ()), *self._metadata()),
            details.credentials,
            details.wait_for_ready,
            details.compression,
        )

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)


@dataclass
class Roster:
    """A started server, a client on it (as the service identity), its engine, clock and token settings."""

    server: RosterServer
    client: RosterClient
    engine: Engine
    clock: Clock
    address: str
    auth: AuthSettings
    service_tokens: ServiceTokenProvider
    credentials: grpc.ChannelCredentials | None = None

    def channel(self) -> grpc.Channel:
        """A channel to the server whose calls carry the service identity's token; close it after use."""
        plain = (
            grpc.insecure_channel(self.address)
            if self.credentials is None
            else grpc.secure_channel(self.address, self.credentials)
        )
        return grpc.intercept_channel(plain, _Bearer(self.service_tokens.metadata))

    def snapshot(self) -> dict[str, list[tuple[object, ...]]]:
        """Every roster row (districts, schools, teachers, memberships), to prove nothing changed."""
        tables = {
            "districts": repo.districts,
            "schools": repo.schools,
            "teachers": repo.teachers,
            "teacher_schools": repo.teacher_schools,
        }
        with self.engine.connect() as conn:
            return {
                name: sorted(tuple(row) for row in conn.execute(select(table)))
                for name, table in tables.items()
            }

    def staged_rows(self) -> int:
        """Staged rows of every change set."""
        with self.engine.connect() as conn:
            return sum(
                int(conn.execute(select(func.count()).select_from(t)).scalar_one())
                for t in (
                    repo.staged_schools,
                    repo.staged_teachers,
                    repo.staged_memberships,
                    repo.staged_school_changes,
                )
            )


def refused(
    roster: Roster, code: grpc.StatusCode, call: Callable[..., Any], *args: Any, **kwargs: Any
) -> str:
    """Assert the call fails with ``code`` and changes nothing; return the message."""
    before = roster.snapshot()
    with pytest.raises(RosterError) as info:
        result = call(*args, **kwargs)
        if isinstance(result, Iterator):
            list(result)
    assert info.value.code == code, info.value.message
    assert roster.snapshot() == before
    return info.value.message


class OnFirstCall(grpc.ServerInterceptor):
    """Replaces the first call of the roster's unary ``method`` with ``intercepted``; later calls pass."""

    def __init__(self, method: str) -> None:
        self.method = f"/ew.roster.v1.RosterService/{method}"
        self._lock = threading.Lock()
        self._fired = False

    def intercepted(self, handler: Any, request: Any, context: grpc.ServicerContext) -> Any:
        """What the first call does instead; ``handler.unary_unary`` is the real call."""
        raise NotImplementedError

    def intercept_service(self, continuation: Any, handler_call_details: Any) -> Any:
        handler = continuation(handler_call_details)
        with self._lock:
            if handler_call_details.method != self.method or self._fired:
                return handler
            self._fired = True
        return grpc.unary_unary_rpc_method_handler(
            lambda request, context: self.intercepted(handler, request, context),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


class StopOnCall(OnFirstCall):
    """Stops the roster server the first time ``method`` is called: the roster dies at that moment.

    ``after=False`` stops it before the call takes effect; ``after=True`` lets the call finish
    (a commit lands) and stops the server before the answer leaves. ``shutdown`` is the server's
    shutdown event once stopping began; ``roster`` must be given before the call arrives.
    """

    def __init__(self, method: str, *, after: bool) -> None:
        super().__init__(method)
        self.after = after
        self.roster: Roster | None = None
        self.shutdown: threading.Event | None = None

    def intercepted(self, handler: Any, request: Any, context: grpc.ServicerContext) -> Any:
        """Stop the roster server (after the call took effect, with ``after``)."""
        if self.after:
            handler.unary_unary(request, context)
        assert self.roster is not None, "StopOnCall.roster was not set"
        self.shutdown = self.roster.server.server.stop(None)
        context.abort(grpc.StatusCode.UNAVAILABLE, "the roster server stopped")


class HoldOnCall(OnFirstCall):
    """Holds the first call of ``method`` until ``release()``: the caller pauses at that moment.

    ``reached`` is set once the call arrived (and is held), so a test acts while the caller waits
    on exactly that call, with no sleeps; the held call then goes ahead as usual.
    """

    def __init__(self, method: str) -> None:
        super().__init__(method)
        self.reached = threading.Event()
        self._released = threading.Event()

    def release(self) -> None:
        """Let the held call go ahead."""
        self._released.set()

    def intercepted(self, handler: Any, request: Any, context: grpc.ServicerContext) -> Any:
        """Wait for ``release()``, then make the call."""
        self.reached.set()
        if not self._released.wait(timeout=60):
            context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "the test never released the held call")
        return handler.unary_unary(request, context)


@contextmanager
def restarted_roster(roster: Roster) -> Iterator[RosterClient]:
    """A new roster server on a stopped one's address and database; yields a client on it."""
    port = int(roster.address.rsplit(":", 1)[1])
    config = RosterSettings(
        database_url=roster.engine.url.render_as_string(hide_password=False),
        listen_address=f"127.0.0.1:{port}",
    )
    server = create_server(config, auth=roster.auth, clock=roster.clock, engine=roster.engine)
    server.server.start()
    client = RosterClient(roster.address, timeout=60, metadata=roster.service_tokens.metadata)
    try:
        yield client
    finally:
        client.close()
        server.server.stop(None).wait()


def dev_auth() -> AuthSettings:
    """Token settings signing with the public development key (tests only)."""
    return AuthSettings(allow_dev_key=True)


@contextmanager
def running_roster(
    database_url: str,
    *,
    interceptors: Sequence[grpc.ServerInterceptor] = (),
    auth: AuthSettings | None = None,
    tls: TlsSettings | None = None,
    client_tls: TlsSettings | None = None,
    **settings: object,
) -> Iterator[Roster]:
    """Migrate ``database_url``, start a roster server on 127.0.0.1:0 and connect a client.

    ``tls`` serves TLS; ``client_tls`` is then what the suite's client trusts and presents.
    """
    auth = auth or dev_auth()
    engine = roster_engine(database_url)
    migrate.upgrade(engine)
    clock = Clock()
    config = RosterSettings(database_url=database_url, listen_address="127.0.0.1:0", **settings)  # type: ignore[arg-type]
    server = create_server(config, auth=auth, tls=tls, clock=clock, engine=engine, interceptors=interceptors)
    server.server.start()
    address = f"127.0.0.1:{server.port}"
    tokens = ServiceTokenProvider(auth)
    credentials = client_tls.channel_credentials() if client_tls is not None else None
    client = RosterClient(address, timeout=60, metadata=tokens.metadata, credentials=credentials)
    try:
        yield Roster(server, client, engine, clock, address, auth, tokens, credentials)
    finally:
        client.close()
        server.stop(None)


@contextmanager
def roster_with_districts(database_url: str, **options: Any) -> Iterator[Roster]:
    """``running_roster`` (with these ``options``) that has districts d1 and d2 created."""
    with running_roster(database_url, **options) as running:
        running.client.create_district("d1", "District One")
        running.client.create_district("d2", "District Two")
        yield running
