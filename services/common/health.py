"""Health that means something: readiness follows what a server depends on; liveness stands apart.

Each server registers the standard ``grpc.health.v1.Health`` service and reports, through it:

- **readiness** on the overall service ``""`` and on its API's name (``ew.roster.v1.RosterService``,
  ``ew.sync.v1.SyncService``): SERVING while every dependency answers (its database; for the sync
  service also the broker and the roster service), NOT_SERVING while any does not. A load balancer
  or Kubernetes readiness probe asks this one and stops sending calls meanwhile.
- **liveness** on the service name ``liveness``: SERVING while the process serves at all, so a
  liveness probe restarts a hung process, not one waiting for its database.

A monitor probes every ``interval`` seconds on a worker thread (probes block: SQL, Redis, gRPC) and
logs each change with the failing dependency's error. On graceful shutdown every name turns
NOT_SERVING and stays so.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeAlias

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from sqlalchemy import Engine, text

log = logging.getLogger(__name__)

LIVENESS_SERVICE = "liveness"
READINESS_SERVICE = ""

Status: TypeAlias = health_pb2.HealthCheckResponse.ServingStatus.ValueType

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@dataclass(frozen=True)
class Dependency:
    """Something a server needs; ``probe`` raises when it cannot be reached."""

    name: str
    probe: Callable[[], None]


def database(engine: Engine) -> Dependency:
    """The server's database: a ``SELECT 1`` on a pooled connection."""

    def probe() -> None:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    return Dependency("database", probe)


def grpc_service(name: str, channel: grpc.Channel, timeout: float) -> Dependency:
    """Another gRPC server, ready by its own health service's overall status."""
    stub = health_pb2_grpc.HealthStub(channel)

    def probe() -> None:
        response = stub.Check(health_pb2.HealthCheckRequest(service=READINESS_SERVICE), timeout=timeout)
        if response.status != SERVING:
            status = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
            raise RuntimeError(f"{name} reports {status}")

    return Dependency(name, probe)


class Readiness:
    """Probes the dependencies and remembers the last verdict, logging each change."""

    def __init__(self, dependencies: Sequence[Dependency]) -> None:
        self.dependencies = tuple(dependencies)
        self._failing: dict[str, str] | None = None

    def check(self) -> bool:
        """Probe every dependency now; True when all answer."""
        failing: dict[str, str] = {}
        for dependency in self.dependencies:
            try:
                dependency.probe()
            except Exception as error:  # any failure to reach it means not ready
                failing[dependency.name] = f"{type(error).__name__}: {error}".splitlines()[0]
        if failing != self._failing:
            if failing:
                log.warning("not ready: %s", "; ".join(f"{name}: {why}" for name, why in failing.items()))
            elif self._failing:
                log.info("ready again: %s answer", ", ".join(d.name for d in self.dependencies))
        self._failing = failing
        return not failing


def statuses(services: Sequence[str], ready: bool) -> dict[str, Status]:
    """What to report for each name: readiness on ``services`` and ``""``, liveness apart."""
    verdict = SERVING if ready else NOT_SERVING
    return {READINESS_SERVICE: verdict, **dict.fromkeys(services, verdict), LIVENESS_SERVICE: SERVING}


class HealthMonitor:
    """Keeps a threaded server's health servicer in step with its dependencies."""

    def __init__(
        self, servicer: health.HealthServicer, services: Sequence[str], readiness: Readiness, interval: float
    ) -> None:
        self._servicer = servicer
        self._services = tuple(services)
        self._readiness = readiness
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def update(self) -> None:
        """Probe once and publish the verdict."""
        for service, status in statuses(self._services, self._readiness.check()).items():
            self._servicer.set(service, status)

    def start(self) -> None:
        """Publish a first verdict, then probe in the background until ``stop``."""
        self.update()
        self._thread = threading.Thread(target=self._run, name="health-monitor", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.update()

    def stop(self) -> None:
        """Stop probing."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None


class AsyncHealthMonitor:
    """Keeps a ``grpc.aio`` server's health servicer in step with its dependencies."""

    def __init__(
        self,
        servicer: health.aio.HealthServicer,
        services: Sequence[str],
        readiness: Readiness,
        interval: float,
    ) -> None:
        self._servicer = servicer
        self._services = tuple(services)
        self._readiness = readiness
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    async def update(self) -> None:
        """Probe once (on a worker thread) and publish the verdict."""
        ready = await asyncio.to_thread(self._readiness.check)
        for service, status in statuses(self._services, ready).items():
            await self._servicer.set(service, status)

    async def start(self) -> None:
        """Publish a first verdict, then probe in the background until ``stop``."""
        await self.update()
        self._task = asyncio.create_task(self._run(), name="health-monitor")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.update()

    async def stop(self) -> None:
        """Stop probing."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
