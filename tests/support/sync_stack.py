"""An in-process sync stack for the run suites: sandbox, roster server, sync server, client.

The sync server (grpc.aio, port 0, stub broker with its in-process worker) runs on its own event
loop in a background thread, so tests drive it with the real blocking client library
(``ew.client.sync.SyncClient``) exactly as an administrator's tool does.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import grpc
from ew.client.sync import SyncClient
from ew.sync.v1 import sync_pb2
from pydantic import SecretStr

from services.common.auth import AuthSettings, Role
from services.common.clock import Clock, utc_now
from services.common.db import make_engine
from services.common.devtoken import mint_dev_token
from services.common.secrets import DEV_SECRET_KEY, SecretBox
from services.sync.api.server import SyncServer, create_server
from services.sync.app import App, create_app
from services.sync.migrate import upgrade
from services.sync.settings import SyncSettings
from services.sync.webhooks.settings import WebhookSettings
from tests.support.pki import Pki
from tests.support.roster import Roster, dev_auth, running_roster
from tests.support.sandbox import REPO_ROOT, SandboxHandle, sso_settings, start_sandbox

DISTRICT = "d-runs"
PREMIUM = "district_premium"


class ServerThread:
    """A sync server on its own event loop in a daemon thread."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="sync-server", daemon=True)
        self._thread.start()
        self.server: SyncServer = self._call(self._start())
        self.target = f"127.0.0.1:{self.server.port}"

    def _call(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=60)

    async def _start(self) -> SyncServer:
        server = create_server(self.app, "127.0.0.1:0")
        await server.start()
        return server

    def stop(self) -> None:
        """Stop the server and its run machinery, then the loop."""
        self._call(self.server.stop(None))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=30)
        self.loop.close()


@dataclass
class SyncStack:
    """Everything a run test talks to."""

    sandbox: SandboxHandle
    roster: Roster
    app: App
    server: ServerThread
    client: SyncClient
    district_id: str
    credentials: grpc.ChannelCredentials | None = None

    def token(
        self, *, role: Role = Role.DISTRICT_ADMIN, district_id: str | None = None, plan: str = PREMIUM
    ) -> str:
        """A dev token for a caller of this (or another) district."""
        return mint_dev_token(
            self.app.auth, district_id=district_id or self.district_id, role=role, plan=plan
        )

    def cli_environment(self) -> dict[str, str]:
        """The environment of an ``ew-sync`` process run as this district's administrator."""
        return dict(
            os.environ,
            EW_TOKEN=self.token(),
            EW_SYNC_TARGET=self.server.target,
            COLUMNS="200",
            PYTHONPATH=os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "clients" / "src")]),
        )

    def client_as(self, token: str) -> SyncClient:
        """Another client on the same server, with a fixed token."""
        return SyncClient(self.server.target, token=lambda: token, credentials=self.credentials)

    def connect(self) -> None:
        """Connect the district to the sandbox's first tenant with OAuth 1.0a credentials."""
        tenant = self.sandbox.tenant()
        self.client.connect_manual(
            self.district_id,
            server_url=tenant.server_url,
            client_id=tenant.client_id,
            client_secret=tenant.client_secret,
            auth_method=sync_pb2.AUTH_METHOD_OAUTH1,
        )


def sync_settings(database_url: str, roster_target: str, **overrides: Any) -> SyncSettings:
    """Settings for an in-process sync server against ``roster_target``."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "listen_address": "127.0.0.1:0",
        "roster_target": roster_target,
        "allow_insecure_http": True,
        "page_token_key": SecretStr("run-tests-page-token-key"),
        "oneroster_concurrency": 2,
        # The in-process worker needs the stub broker; a shell's EW_BROKER_URL makes create_app refuse.
        "broker_url": "",
    }
    return SyncSettings(**(values | overrides))


@contextmanager
def paged_stack(database_url: Callable[[str], str]) -> Iterator[SyncStack]:
    """A stack whose 60 teachers come in pages of 10: a sync long enough to interrupt or cut."""
    with sync_stack(
        database_url("roster"),
        database_url("sync"),
        settings={"oneroster_page_size": 10},
        schools=3,
        teachers=60,
    ) as running:
        yield running


@contextmanager
def sign_in_stack(database_url: Callable[[str], str], sandbox: SandboxHandle) -> Iterator[SyncStack]:
    """A stack offering ClassLink sign-in against ``sandbox``, its district not connected yet."""
    with sync_stack(
        database_url("roster"),
        database_url("sync"),
        sandbox=sandbox,
        settings=sso_settings(sandbox),
        connect=False,
    ) as running:
        yield running


@contextmanager
def sync_stack(
    roster_url: str,
    sync_url: str,
    *,
    sandbox: SandboxHandle | None = None,
    settings: dict[str, Any] | None = None,
    connect: bool = True,
    tls: Pki | None = None,
    roster_auth: AuthSettings | None = None,
    roster_interceptors: Sequence[grpc.ServerInterceptor] = (),
    clock: Clock = utc_now,
    webhooks: WebhookSettings | None = None,
    **sandbox_flags: Any,
) -> Iterator[SyncStack]:
    """Start the sandbox (unless given), roster and sync servers; create and connect the district.

    With ``tls`` both servers require client certificates from its CA: the sync service calls the
    roster with its client certificate, and the stack's clients present it too. ``roster_auth``
    gives the roster server other token settings than the sync service's (a misconfiguration);
    ``roster_interceptors`` run inside the roster server's authentication; ``clock`` tells the sync
    service the time. ``webhooks`` makes the
    sync server deliver webhook events from its process (none are sent without it).
    """
    own_sandbox = sandbox is None
    handle = sandbox or start_sandbox(**sandbox_flags)
    server_tls = tls.server() if tls else None
    client_tls = tls.client() if tls else None
    credentials = client_tls.channel_credentials() if client_tls else None
    try:
        with running_roster(
            roster_url,
            auth=roster_auth,
            tls=server_tls,
            client_tls=client_tls,
            interceptors=roster_interceptors,
        ) as roster:
            roster.client.create_district(DISTRICT, "Runs District")
            engine = make_engine(sync_url)
            try:
                upgrade(engine)
            finally:
                engine.dispose()
            app = create_app(
                sync_settings(sync_url, roster.address, **(settings or {})),
                auth=dev_auth(),
                secrets=SecretBox([DEV_SECRET_KEY]),
                server_tls=server_tls,
                roster_tls=client_tls,
                clock=clock,
                webhooks=webhooks or WebhookSettings(url=""),
            )
            server = ServerThread(app)
            token = mint_dev_token(app.auth, district_id=DISTRICT, role=Role.DISTRICT_ADMIN, plan=PREMIUM)
            client = SyncClient(server.target, token=lambda: token, credentials=credentials)
            stack = SyncStack(handle, roster, app, server, client, DISTRICT, credentials)
            try:
                if connect:
                    stack.connect()
                yield stack
            finally:
                client.close()
                server.stop()
                app.close()
    finally:
        if own_sandbox:
            handle.stop()
