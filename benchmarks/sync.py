"""``python -m benchmarks.sync``: initial and no-change sync of 100,000 teachers / 2,000 schools.

Real processes as in production: the OneRoster sandbox, the roster service, the sync service and,
on PostgreSQL, a separate worker on the Redis broker (SQLite runs the stub broker's worker inside
the sync service). Each backend gets fresh databases. Printed per backend: wall time of the
initial sync and of a re-sync with nothing changed, each as a ratio to the time of just
downloading the same OneRoster pages with a bare httpx loop (measured in the same run), and the
peak RSS of every process (sampled with psutil). Targets: initial ≤ 3× download, no-change ≤ 1.5×
download, every process ≤ 600 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil
from ew.client.roster import RosterClient
from ew.client.sync import SyncClient
from ew.sync.v1 import sync_pb2
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from benchmarks.oneroster import bare_loop
from services.common.auth import AuthSettings, Role, ServiceTokenProvider
from services.common.db import normalise_url
from services.common.devtoken import mint_dev_token
from services.common.processes import ProcessGroup, base_environment, free_address, wait_for_log, wait_serving
from tests.support.sandbox import SandboxHandle, start_sandbox

DISTRICT = "d-bench"
POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
REDIS = "redis://127.0.0.1:6379/0"
MB = 1024 * 1024


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


@contextmanager
def postgres_databases() -> Iterator[tuple[str, str]]:
    """Fresh roster and sync databases on the local PostgreSQL, dropped afterwards."""
    server = os.environ.get("EW_BENCH_DATABASE_URL", POSTGRES)
    names = [f"ew_bench_{purpose}_{uuid.uuid4().hex[:8]}" for purpose in ("roster", "sync")]
    admin = create_engine(normalise_url(server), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for name in names:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        base = make_url(normalise_url(server))
        roster_url, sync_url = (base.set(database=n).render_as_string(hide_password=False) for n in names)
        yield roster_url, sync_url
    finally:
        with admin.connect() as conn:
            for name in names:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@dataclass
class Result:
    """One backend's figures: seconds per phase, the teachers synced and each process's peak RSS in bytes."""

    backend: str
    download: float
    initial: float
    no_change: float
    teachers: int
    peaks: dict[str, int]


def timed_sync(client: SyncClient, label: str) -> tuple[float, sync_pb2.SyncEvent]:
    """Run one sync; print how long each phase took (time between its first event and the next's)."""
    started = time.perf_counter()
    phase_starts: list[tuple[str, float]] = []
    last: sync_pb2.SyncEvent | None = None
    for event in client.sync_rosters(DISTRICT):
        name = sync_pb2.SyncPhase.Name(event.phase).removeprefix("SYNC_PHASE_").lower()
        if not phase_starts or phase_starts[-1][0] != name:
            phase_starts.append((name, time.perf_counter()))
        last = event
    elapsed = time.perf_counter() - started
    assert last is not None
    if last.state != sync_pb2.SYNC_RUN_STATE_SUCCEEDED:
        raise SystemExit(f"sync did not succeed: {last.message}")
    ends = [start for _, start in phase_starts[1:]] + [started + elapsed]
    phases = ", ".join(
        f"{name} {end - start:.2f}s" for (name, start), end in zip(phase_starts, ends, strict=True)
    )
    print(f"  {label}: {phases}", flush=True)
    return elapsed, last


def measure(backend: str, sandbox: SandboxHandle, roster_url: str, sync_url: str, broker_url: str) -> Result:
    """Runs the services on ``backend``; times a bare download, an initial and a no-change sync."""
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-sync-{backend}-"))
    print(f"  [{backend}] logs in {workdir}", flush=True)
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
    token = mint_dev_token(auth, district_id=DISTRICT, role=Role.DISTRICT_ADMIN, plan="district_premium")
    try:
        with PeakRss() as rss:
            rss.watch("sandbox", sandbox.process.pid)
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
            with (
                RosterClient(
                    roster_target, timeout=120, metadata=ServiceTokenProvider(auth).metadata
                ) as roster,
                SyncClient(sync_target, token=lambda: token, timeout=120) as client,
            ):
                roster.create_district(DISTRICT, "Benchmark District")
                tenant = sandbox.tenant()
                client.connect_manual(
                    DISTRICT,
                    server_url=tenant.server_url,
                    client_id=tenant.client_id,
                    client_secret=tenant.client_secret,
                )
                config = sandbox.server_config(concurrency=1)
                started = time.perf_counter()
                teachers = asyncio.run(bare_loop(config))
                download = time.perf_counter() - started
                initial, first = timed_sync(client, f"[{backend}] initial")
                no_change, second = timed_sync(client, f"[{backend}] no-change")
            if second.summary.teachers_added or second.summary.teachers_updated:
                raise SystemExit(f"the re-sync changed something: {second.summary}")
            print(
                f"  [{backend}] initial summary: {first.summary.teachers_added:,} added, "
                f"{first.summary.schools_created:,} schools; re-sync unchanged "
                f"{second.summary.teachers_unchanged:,}",
                flush=True,
            )
        return Result(backend, download, initial, no_change, teachers, dict(rss.peaks))
    finally:
        group.stop()


def report(result: Result) -> None:
    """Prints one backend's times as ratios to the download, and each process's peak RSS."""
    print(f"\n== {result.backend}: {result.teachers:,} teachers ==")
    print(f"download only (bare httpx loop):  {result.download:7.2f} s")
    print(
        f"initial sync:                     {result.initial:7.2f} s  "
        f"{result.initial / result.download:5.2f}x download  (target <= 3x)"
    )
    print(
        f"no-change re-sync:                {result.no_change:7.2f} s  "
        f"{result.no_change / result.download:5.2f}x download  (target <= 1.5x)"
    )
    for name, peak in sorted(result.peaks.items()):
        flag = "" if peak <= 600 * MB else "  OVER 600 MB"
        print(f"peak RSS {name:<10}                {peak / MB:7.0f} MB{flag}")


def main() -> None:
    """Starts one sandbox and benchmarks each chosen backend against it, fresh databases each."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--teachers", type=int, default=100_000)
    parser.add_argument("--schools", type=int, default=2_000)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    args = parser.parse_args()
    results: list[Result] = []
    with start_sandbox(
        seed=3, schools=args.schools, teachers=args.teachers, students=0, administrators=0
    ) as sandbox:
        if args.backend in ("sqlite", "both"):
            with tempfile.TemporaryDirectory(prefix="bench-sync-db-") as tmp:
                results.append(
                    measure("sqlite", sandbox, f"sqlite:///{tmp}/roster.db", f"sqlite:///{tmp}/sync.db", "")
                )
                report(results[-1])
        if args.backend in ("postgresql", "both"):
            with postgres_databases() as (roster_url, sync_url):
                broker = os.environ.get("EW_BENCH_BROKER_URL", REDIS)
                results.append(measure("postgresql+redis", sandbox, roster_url, sync_url, broker))
                report(results[-1])


if __name__ == "__main__":
    main()
