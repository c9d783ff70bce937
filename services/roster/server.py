"""The roster gRPC server: one factory for tests and ``serve()``, health, reflection, shutdown."""

from __future__ import annotations

import datetime as dt
import logging
import signal
import threading
from collections.abc import Sequence
from concurrent import futures
from dataclasses import dataclass
from types import FrameType

import grpc
from ew.roster.v1 import roster_service_pb2, roster_service_pb2_grpc
from grpc_health.v1 import health, health_pb2_grpc
from sqlalchemy import Engine

from services.common.auth import AuthSettings, TokenVerifier
from services.common.auth_interceptor import AuthInterceptor
from services.common.clock import Clock, utc_now
from services.common.grpc_errors import ErrorInterceptor
from services.common.grpc_server import ServerConnectionSettings, server_options
from services.common.health import HealthMonitor, Readiness, database
from services.common.metrics import MetricsInterceptor
from services.common.pagetokens import RosterPageTokens
from services.common.reflection import enable_reflection
from services.common.tls import TlsSettings, add_server_port
from services.roster.audit import AuditInterceptor, AuditLog
from services.roster.changesets import ChangeSetUseCases
from services.roster.db import roster_engine
from services.roster.servicer import RosterServicer
from services.roster.settings import RosterSettings
from services.roster.usecases import RosterUseCases, Store

log = logging.getLogger(__name__)

SERVICE_NAME = roster_service_pb2.DESCRIPTOR.services_by_name["RosterService"].full_name


@dataclass
class RosterServer:
    """A created, not yet started server and the parts ``serve()`` and tests need."""

    server: grpc.Server
    port: int
    health: health.HealthServicer
    monitor: HealthMonitor
    change_sets: ChangeSetUseCases
    engine: Engine
    audit_log: AuditLog

    def stop(self, grace: float | None) -> None:
        """Report NOT_SERVING, let in-flight calls finish within ``grace``, release the database."""
        self.health.enter_graceful_shutdown()
        self.monitor.stop()
        self.server.stop(grace).wait()
        self.engine.dispose()


def create_server(
    settings: RosterSettings,
    *,
    auth: AuthSettings | None = None,
    tls: TlsSettings | None = None,
    interceptors: Sequence[grpc.ServerInterceptor] = (),
    clock: Clock = utc_now,
    engine: Engine | None = None,
    connections: ServerConnectionSettings | None = None,
) -> RosterServer:
    """Build a non-started server bound to ``settings.listen_address`` (port 0 picks a free port).

    Its health service reports readiness from its database (``services.common.health``) from now
    until ``stop``. Token and TLS settings not given are read from ``EW_JWT_*`` and ``EW_TLS_*``
    here, once, so a bad configuration fails at startup. The auth interceptor sees every call
    first: each RPC except health and reflection needs a valid bearer token. ``interceptors`` run
    next, then the error interceptor that maps domain errors to statuses, and innermost the audit
    hook of ``audit``. ``connections`` (keepalive,
    connection age) not given are read from ``EW_GRPC_*``.
    """
    verifier = TokenVerifier(auth or AuthSettings())
    tls = tls or TlsSettings()
    engine = engine or roster_engine(settings.database_url)
    store = Store(engine, clock, RosterPageTokens(settings.page_token_key.get_secret_value().encode()))
    change_sets = ChangeSetUseCases(store, settings.change_set_ttl)
    audit_log = AuditLog(store, dt.timedelta(days=settings.audit_retention_days))
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=settings.max_workers, thread_name_prefix="roster-rpc"),
        interceptors=[
            MetricsInterceptor(),
            AuthInterceptor(verifier),
            *interceptors,
            ErrorInterceptor(),
            AuditInterceptor(store),
        ],
        options=server_options(connections),
    )
    roster_service_pb2_grpc.add_RosterServiceServicer_to_server(
        RosterServicer(RosterUseCases(store), change_sets, audit_log), server
    )
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    monitor = HealthMonitor(
        health_servicer, [SERVICE_NAME], Readiness([database(engine)]), settings.health_interval
    )
    enable_reflection([SERVICE_NAME, health.SERVICE_NAME], server)
    port = add_server_port(server, settings.listen_address, tls)
    if port == 0:
        raise RuntimeError(f"could not bind the roster server to {settings.listen_address}")
    monitor.start()
    return RosterServer(server, port, health_servicer, monitor, change_sets, engine, audit_log)


def _clean_up_periodically(roster: RosterServer, interval: float, stop: threading.Event) -> None:
    while not stop.wait(interval):
        try:
            expired = roster.change_sets.clean_up()
            if expired:
                log.info("expired %d open change sets", expired)
            pruned = roster.audit_log.prune()
            if pruned:
                log.info("pruned %d audit events past their retention", pruned)
        except Exception:
            log.exception("change set clean-up failed; retrying in %.0f s", interval)


def serve(settings: RosterSettings, *, auth: AuthSettings, tls: TlsSettings) -> None:
    """Run until SIGTERM or SIGINT, then drain in-flight calls within the grace period."""
    roster = create_server(settings, auth=auth, tls=tls)
    stopping = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s; shutting down", signal.Signals(signum).name)
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    roster.server.start()
    host = settings.listen_address.rpartition(":")[0]
    print(f"Roster service listening on {host}:{roster.port}", flush=True)
    cleaner = threading.Thread(
        target=_clean_up_periodically,
        args=(roster, settings.cleanup_interval, stopping),
        name="roster-cleanup",
        daemon=True,
    )
    cleaner.start()
    stopping.wait()
    roster.stop(settings.grace_period)
    cleaner.join()
