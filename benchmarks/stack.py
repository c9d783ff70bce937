"""The services as production runs them, as real processes, with each process's peak memory sampled.

SQLite runs the stub broker's worker inside the sync service; PostgreSQL runs a separate Dramatiq
worker on Redis. ``PeakRss`` samples every watched process every 100 ms with psutil.
"""

from __future__ import annotations

import os
import tempfile
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil
from ew.client.roster import RosterClient
from ew.client.sync import SyncClient

from services.common.auth import AuthSettings, Role, ServiceTokenProvider
from services.common.devtoken import mint_dev_token
from services.common.processes import ProcessGroup, base_environment, free_address, wait_for_log, wait_serving
from tests.support.sandbox import SandboxHandle

Metadata = tuple[tuple[str, str | bytes], ...]
REDIS = "redis://127.0.0.1:6379/0"
# A preview or a 250k sync is one long call; the bench measures it rather than cutting it short.
CALL_TIMEOUT = 1800.0


class PeakRss:
    """Samples the resident memory of processes every 100 ms and keeps each one's peak."""

    def __init__(self) -> None:
        self.processes: dict[str, psutil.Process] = {}
        self.peaks: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def watch(self, name: str, pid: int) -> None:
        """Samples process ``pid`` from now on, its peak reported under ``name``."""
        self.processes[name] = psutil.Process(pid)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.wait(0.1):
            for name, process in list(self.processes.items()):
                try:
                    rss = process.memory_info().rss
                except psutil.Error:
                    continue
                self.peaks[name] = max(self.peaks.get(name, 0), rss)


@dataclass
class Stack:
    """Running roster and sync services (and worker), a roster client and each process's peak RSS."""

    roster_target: str
    sync_target: str
    auth: AuthSettings
    roster: RosterClient
    rss: PeakRss
    logs: Path

    def roster_metadata(self) -> Metadata:
        """The service token's call metadata, for raw roster stubs."""
        return ServiceTokenProvider(self.auth).metadata()

    def token(self, district_id: str) -> str:
        """A district admin's token for ``district_id``."""
        return mint_dev_token(
            self.auth, district_id=district_id, role=Role.DISTRICT_ADMIN, plan="district_premium"
        )

    def sync_client(self, district_id: str) -> SyncClient:
        """A sync client acting as ``district_id``'s admin; close it (or use it as a context manager)."""
        token = self.token(district_id)
        return SyncClient(self.sync_target, token=lambda: token, timeout=CALL_TIMEOUT)

    def connect(self, district_id: str, sandbox: SandboxHandle) -> None:
        """Creates ``district_id`` in the roster and connects it to the sandbox's first district."""
        self.roster.create_district(district_id, f"Benchmark {district_id}")
        tenant = sandbox.tenant()
        with self.sync_client(district_id) as client:
            client.connect_manual(
                district_id,
                server_url=tenant.server_url,
                client_id=tenant.client_id,
                client_secret=tenant.client_secret,
            )


@contextmanager
def running_stack(label: str, roster_url: str, sync_url: str, broker_url: str) -> Iterator[Stack]:
    """Starts the services on the given databases; a worker process too when ``broker_url`` is set."""
    workdir = Path(tempfile.mkdtemp(prefix=f"ew-bench-{label}-"))
    print(f"  [{label}] logs in {workdir}", flush=True)
    roster_target, sync_target = free_address(), free_address()
    environment = base_environment(
        {
            "EW_JWT_ALLOW_DEV_KEY": "true",
            "EW_SECRET_ALLOW_DEV_KEY": "true",
            "EW_SYNC_ALLOW_INSECURE_HTTP": "true",
            "EW_ROSTER_DATABASE_URL": roster_url,
            "EW_SYNC_DATABASE_URL": sync_url,
            "EW_ROSTER_AUTO_MIGRATE": "true",
            "EW_SYNC_AUTO_MIGRATE": "true",
            "EW_ROSTER_LISTEN_ADDRESS": roster_target,
            "EW_SYNC_LISTEN_ADDRESS": sync_target,
            "EW_SYNC_ROSTER_TARGET": roster_target,
            "EW_BROKER_URL": broker_url,
            "EW_BROKER_NAMESPACE": f"ew-bench-{uuid.uuid4().hex[:8]}",
        }
    )
    group = ProcessGroup(workdir, environment)
    auth = AuthSettings(allow_dev_key=True)
    try:
        with PeakRss() as rss:
            rss.watch("benchmark", os.getpid())
            roster_child = group.start("roster", "services.roster")
            rss.watch("roster", roster_child.process.pid)
            wait_serving(roster_child, roster_target)
            sync_child = group.start("sync", "services.sync")
            rss.watch("sync", sync_child.process.pid)
            wait_serving(sync_child, sync_target)
            if broker_url:
                worker = group.start("worker", "services.sync.worker")
                rss.watch("worker", worker.process.pid)
                wait_for_log(worker, "sync worker started")
            metadata = ServiceTokenProvider(auth).metadata
            with RosterClient(roster_target, timeout=CALL_TIMEOUT, metadata=metadata) as roster:
                yield Stack(roster_target, sync_target, auth, roster, rss, workdir)
    finally:
        group.stop()
