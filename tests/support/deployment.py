"""An end-to-end deployment: every part a real process on a real port.

OneRoster sandbox, roster service (``python -m services.roster``), sync service (``python -m
services.sync``) and, when ``EW_TEST_BROKER_URL`` is set (``make test-integration``), a separate
worker (``python -m services.sync.worker``) on the Redis broker under a namespace of its own; with
the stub broker the worker runs inside the sync service. Databases come from ``database_url``
(SQLite files, or fresh PostgreSQL databases with ``EW_TEST_DATABASE_URL``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ew.client.roster import RosterClient
from ew.client.sync import SyncClient
from ew.sync.v1 import sync_pb2

from services.common.processes import (
    Child,
    ProcessGroup,
    wait_for_log,
    wait_serving,
)
from tests.support.sandbox import SandboxHandle

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
