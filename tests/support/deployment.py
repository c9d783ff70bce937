"""An end-to-end deployment: every part a real process on a real port.

OneRoster sandbox, roster service (``python -m services.roster``), sync service (``python -m
services.sync``) and, when ``EW_TEST_BROKER_URL`` is set (``make test-integration``), a separate
worker (``python -m services.sync.worker``) on the Redis broker under a namespace of its own; with
the stub broker the worker runs inside the sync service. Databases come from ``database_url``
(SQLite files, or fresh PostgreSQL databases with ``EW_TEST_DATABASE_URL``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ew.client.roster import RosterClient
from ew.client.sync import SyncClient
from ew.sync.v1 import sync_pb2

from services.common.auth import AuthSettings, Role, ServiceTokenProvider
from services.common.devtoken import mint_dev_token
from services.common.processes import (
    Child,
    ProcessGroup,
    base_environment,
    free_address,
    wait_for_log,
    wait_serving,
)
from tests.support.sandbox import SandboxHandle, start_sandbox

DISTRICT = "d-e2e"
WORKER_READY = "sync worker started"


@dataclass
class Deployment:
    """The running processes and clients on them."""

    group: ProcessGroup
    sandbox: SandboxHandle
    roster_target: str
    sync_target: str
    roster: RosterClient
    sync: SyncClient
    district_id: str
    redis: bool
    children: dict[str, Child] = field(default_factory=dict)

    @property
    def executor(self) -> Child:
        """The process that executes runs: the worker with Redis, else the sync service."""
        return self.children["worker" if self.redis else "sync"]

    def start_roster(self) -> Child:
        """Start (or restart) the roster service and wait until it serves."""
        child = self.group.start("roster", "services.roster")
        wait_serving(child, self.roster_target)
        self.children["roster"] = child
        return child

    def start_sync(self) -> Child:
        """Start (or restart) the sync service and wait until it serves."""
        child = self.group.start("sync", "services.sync", env={"EW_SYNC_LISTEN_ADDRESS": self.sync_target})
        wait_serving(child, self.sync_target)
        self.children["sync"] = child
        return child

    def start_worker(self) -> Child:
        """Start (or restart) the separate worker (Redis only) and wait until it consumes."""
        child = self.group.start("worker", "services.sync.worker")
        wait_for_log(child, WORKER_READY)
        self.children["worker"] = child
        return child

    def restart_executor(self) -> Child:
        """Start the executing process again after it was killed."""
        return self.start_worker() if self.redis else self.start_sync()

    def connect(self) -> None:
        """Connect the district to the sandbox's first tenant (OAuth 1.0a, typed by hand)."""
        tenant = self.sandbox.tenant()
        self.sync.connect_manual(
            self.district_id,
            server_url=tenant.server_url,
            client_id=tenant.client_id,
            client_secret=tenant.client_secret,
            auth_method=sync_pb2.AUTH_METHOD_OAUTH1,
        )

    def stop(self) -> None:
        """Close the clients, stop every process and the sandbox."""
        self.sync.close()
        self.roster.close()
        self.group.stop()
        self.sandbox.stop()


def start_deployment(
    workdir: Path,
    *,
    roster_url: str,
    sync_url: str,
    broker_url: str,
    sync_env: dict[str, str] | None = None,
    **sandbox_flags: Any,
) -> Deployment:
    """Start the sandbox (``sandbox_flags``), the roster and sync services and, with a broker, a worker.

    Logs go under ``workdir``; ``sync_env`` adds to (or overrides) the services' environment. The
    caller stops the deployment (``Deployment.stop``).
    """
    environment = base_environment(
        {
            "EW_JWT_ALLOW_DEV_KEY": "true",
            "EW_SECRET_ALLOW_DEV_KEY": "true",
            "EW_SYNC_ALLOW_INSECURE_HTTP": "true",
            "EW_ROSTER_DATABASE_URL": roster_url,
            "EW_SYNC_DATABASE_URL": sync_url,
            "EW_ROSTER_AUTO_MIGRATE": "true",
            "EW_SYNC_AUTO_MIGRATE": "true",
            "EW_BROKER_URL": broker_url,
            "EW_BROKER_NAMESPACE": f"ew-e2e-{uuid.uuid4().hex[:12]}",
            "EW_SYNC_PAGE_TOKEN_KEY": "e2e-page-token-key",
            "EW_SYNC_RUN_STALE_SECONDS": "3",
            "EW_SYNC_RECOVERY_INTERVAL_SECONDS": "0.5",
            **(sync_env or {}),
        }
    )
    for name in list(environment):
        if name.startswith(("EW_JWT_SECRET", "EW_SECRET_KEYS", "EW_TLS_")):
            del environment[name]
    group = ProcessGroup(workdir, environment)
    sandbox = start_sandbox(**sandbox_flags)
    roster_target = free_address()
    sync_target = free_address()
    environment["EW_ROSTER_LISTEN_ADDRESS"] = roster_target
    environment["EW_SYNC_ROSTER_TARGET"] = roster_target
    auth = AuthSettings(allow_dev_key=True)
    roster = RosterClient(roster_target, timeout=60, metadata=ServiceTokenProvider(auth).metadata)
    token = mint_dev_token(auth, district_id=DISTRICT, role=Role.DISTRICT_ADMIN, plan="district_premium")
    sync = SyncClient(sync_target, token=lambda: token, timeout=60)
    deployment = Deployment(
        group, sandbox, roster_target, sync_target, roster, sync, DISTRICT, bool(broker_url)
    )
    try:
        deployment.start_roster()
        deployment.start_sync()
        if deployment.redis:
            deployment.start_worker()
        roster.create_district(DISTRICT, "End-to-end District")
    except BaseException:
        deployment.stop()
        raise
    return deployment
