"""The sync service's dependency container: settings, database, secrets, identity, broker and clients.

``create_app`` builds nothing bound to an event loop, so the gRPC server and a worker process can
both use it; asyncio clients are made on demand by the code that runs them (``new_roster_client``,
``oneroster_client``) and closed by it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import dramatiq
from ew.client.roster import AsyncRosterClient
from pydantic_settings import SettingsConfigDict
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from services.common.auth import AuthSettings, ServiceTokenProvider
from services.common.clock import Clock, utc_now
from services.common.db import READ_ONLY, make_engine
from services.common.redaction import RedactingFilter, install_redaction
from services.common.secrets import SecretBox, SecretSettings
from services.common.tls import TlsSettings
from services.sync.oneroster import OneRosterClient, ServerConfig
from services.sync.oneroster.client import PageObserver
from services.sync.oneroster.transport import WaitObserver
from services.sync.runs.broker import create_broker
from services.sync.runs.notifier import Notifier, create_notifier
from services.sync.settings import SyncSettings
from services.sync.webhooks.settings import WebhookSettings

T = TypeVar("T")


class RosterClientTlsSettings(TlsSettings):
    """TLS of the sync service's calls to RosterService, from ``EW_SYNC_ROSTER_TLS_*`` variables."""

    model_config = SettingsConfigDict(env_prefix="EW_SYNC_ROSTER_TLS_", extra="ignore")


@dataclass
class App:
    """Everything the use cases, the servicers and the run executor share."""

    settings: SyncSettings
    engine: Engine
    sessions: sessionmaker[Session]
    readers: sessionmaker[Session]
    secrets: SecretBox
    auth: AuthSettings
    service_tokens: ServiceTokenProvider
    server_tls: TlsSettings
    roster_tls: TlsSettings
    broker: dramatiq.Broker
    notifier: Notifier
    redactor: RedactingFilter
    webhooks: WebhookSettings
    clock: Clock = field(default=utc_now)

    async def transaction(self, work: Callable[[Session], T]) -> T:
        """Run ``work`` in one database transaction on a worker thread, so SQL never blocks the loop."""

        def run() -> T:
            with self.sessions.begin() as session:
                return work(session)

        return await asyncio.to_thread(run)

    async def read(self, work: Callable[[Session], T]) -> T:
        """Run ``work``, which only reads, in one transaction that never waits for a writer (SQLite WAL)."""

        def run() -> T:
            with self.readers.begin() as session:
                return work(session)

        return await asyncio.to_thread(run)

    def new_roster_client(self) -> AsyncRosterClient:
        """A RosterService client for the running event loop, calling as the service identity."""
        return AsyncRosterClient(
            self.settings.roster_target,
            timeout=self.settings.roster_deadline,
            metadata=self.service_tokens.metadata,
            credentials=self.roster_tls.channel_credentials() if self.roster_tls.client_enabled else None,
        )

    def oneroster_client(
        self,
        config: ServerConfig,
        *,
        on_wait: WaitObserver | None = None,
        on_page: PageObserver | None = None,
    ) -> OneRosterClient:
        """A OneRoster client for one district's server (use as an async context manager).

        ``on_wait`` hears each wait the server asks for, ``on_page`` each page read.
        """
        return OneRosterClient(config, on_wait=on_wait, on_page=on_page)

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()


def create_app(
    settings: SyncSettings,
    *,
    auth: AuthSettings | None = None,
    secrets: SecretBox | None = None,
    server_tls: TlsSettings | None = None,
    roster_tls: TlsSettings | None = None,
    webhooks: WebhookSettings | None = None,
    clock: Clock = utc_now,
) -> App:
    """Build the container; parts not given are read from their environment variables.

    Installs log redaction for the process and registers the configured ClassLink secrets with it.
    """
    auth = auth or AuthSettings()
    redactor = install_redaction()
    webhooks = webhooks or WebhookSettings()
    for secret in (settings.classlink_client_secret, settings.classlink_partner_token, webhooks.secret):
        redactor.register(secret.get_secret_value())
    engine = make_engine(settings.database_url)
    return App(
        settings=settings,
        engine=engine,
        sessions=sessionmaker(engine, expire_on_commit=False),
        readers=sessionmaker(engine.execution_options(**READ_ONLY), expire_on_commit=False),
        secrets=secrets or SecretBox.from_settings(SecretSettings()),
        auth=auth,
        service_tokens=ServiceTokenProvider(auth),
        server_tls=server_tls or TlsSettings(),
        roster_tls=roster_tls or RosterClientTlsSettings(),
        broker=create_broker(settings),
        notifier=create_notifier(settings),
        redactor=redactor,
        webhooks=webhooks,
        clock=clock,
    )
