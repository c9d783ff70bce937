"""The sync gRPC server (grpc.aio): one factory for tests and ``serve()``; health, reflection, shutdown."""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass

import grpc
from ew.client.channels import open_channel
from ew.client.roster import AsyncRosterClient
from ew.sync.v1 import sync_service_pb2, sync_service_pb2_grpc
from grpc_health.v1 import health, health_pb2_grpc

from services.common.auth import TokenVerifier
from services.common.auth_interceptor import AsyncAuthInterceptor
from services.common.grpc_errors import AsyncErrorInterceptor
from services.common.grpc_server import AsyncStreamDrainer, ServerConnectionSettings, server_options
from services.common.health import AsyncHealthMonitor, Readiness, database, grpc_service
from services.common.metrics import AsyncMetricsInterceptor
from services.common.reflection import enable_reflection
from services.common.tls import add_server_port
from services.sync.api.audited import AuditInterceptor
from services.sync.api.servicer import SyncServicer
from services.sync.app import App
from services.sync.runs import lifecycle
from services.sync.runs.broker import broker_dependencies

log = logging.getLogger(__name__)

SERVICE_NAME = sync_service_pb2.DESCRIPTOR.services_by_name["SyncService"].full_name


@dataclass
class SyncServer:
    """A created, not yet started server and the parts ``serve()`` and tests need."""

    server: grpc.aio.Server
    port: int
    health: health.aio.HealthServicer
    monitor: AsyncHealthMonitor
    drainer: AsyncStreamDrainer
    roster: AsyncRosterClient
    roster_health: grpc.Channel
    app: App

    async def start(self) -> None:
        """Serve, start what runs need (in-process worker, wake-ups, recovery), then report health."""
        await self.server.start()
        await lifecycle.start(self.app)
        await self.monitor.start()

    async def stop(self, grace: float | None) -> None:
        """Report NOT_SERVING, end streams (callers re-attach), let unary calls finish within ``grace``.

        Then stop the run machinery.
        """
        await self.health.enter_graceful_shutdown()
        await self.monitor.stop()
        self.drainer.drain()
        await self.server.stop(grace)
        await lifecycle.stop(self.app)
        await self.roster.close()
        self.roster_health.close()


def create_server(
    app: App, address: str | None = None, *, connections: ServerConnectionSettings | None = None
) -> SyncServer:
    """A non-started server bound to ``address`` (default: the settings'; port 0 picks a free port).

    Call it inside the event loop that will run the server. Every RPC except health and reflection
    needs a bearer token; domain errors become statuses in one interceptor; the audited RPCs are
    recorded by the innermost one, after the handler decided. Once started, its health service
    reports readiness from the database, the broker and the roster service. ``connections``
    (keepalive, connection age) not given are read from ``EW_GRPC_*``.
    """
    address = address or app.settings.listen_address
    # After authentication, so the stream tasks it starts see the caller's principal.
    drainer = AsyncStreamDrainer()
    server = grpc.aio.server(
        interceptors=[
            AsyncMetricsInterceptor(),
            AsyncAuthInterceptor(TokenVerifier(app.auth)),
            drainer,
            AsyncErrorInterceptor(),
            AuditInterceptor(app),
        ],
        options=server_options(connections),
    )
    roster = app.new_roster_client()
    sync_service_pb2_grpc.add_SyncServiceServicer_to_server(SyncServicer(app, roster), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    roster_health = _roster_channel(app)
    dependencies = [
        database(app.engine),
        *broker_dependencies(app.broker),
        grpc_service("roster", roster_health, app.settings.roster_deadline),
    ]
    monitor = AsyncHealthMonitor(
        health_servicer, [SERVICE_NAME], Readiness(dependencies), app.settings.health_interval
    )
    enable_reflection([SERVICE_NAME, health.SERVICE_NAME], server)
    port = add_server_port(server, address, app.server_tls)
    if port == 0:
        raise RuntimeError(f"could not bind the sync server to {address}")
    return SyncServer(server, port, health_servicer, monitor, drainer, roster, roster_health, app)


def _roster_channel(app: App) -> grpc.Channel:
    """A blocking channel to RosterService for health probes (they run on a worker thread)."""
    credentials = app.roster_tls.channel_credentials() if app.roster_tls.client_enabled else None
    return open_channel(app.settings.roster_target, credentials, [])


async def serve(app: App) -> None:
    """Run until SIGTERM or SIGINT, then drain in-flight calls within the grace period."""
    sync = create_server(app)
    await sync.start()
    host = app.settings.listen_address.rpartition(":")[0]
    print(f"sync service listening on {host}:{sync.port}", flush=True)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    await stopping.wait()
    log.info("shutting down; in-flight calls get %.0f s", app.settings.grace_period)
    await sync.stop(app.settings.grace_period)
