"""What the bench does to a running stack: syncs, a preview, changes in ClassLink, list calls and load.

Each function measures one thing and returns plain figures; ``benchmarks.sync`` decides what runs
where and ``benchmarks.report`` judges the figures against their targets.
"""

from __future__ import annotations

import asyncio
import statistics
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import grpc
from ew.client.sync import TERMINAL_STATES, SyncClient
from ew.roster.v1 import roster_service_pb2 as rpc
from ew.roster.v1 import roster_service_pb2_grpc
from ew.sync.v1 import sync_pb2, sync_service_pb2, sync_service_pb2_grpc

from benchmarks.stack import Metadata, Stack
from tests.support.sandbox import SandboxHandle

if TYPE_CHECKING:
    from ew.roster.v1.roster_service_pb2_grpc import RosterServiceAsyncStub
    from ew.sync.v1.sync_service_pb2_grpc import SyncServiceAsyncStub

LIST_PAGE_SIZE = 1000


class RunFailed(Exception):
    """A run the bench started did not succeed, or did something it should not have."""


@dataclass(frozen=True)
class RunTiming:
    """One sync as its caller saw it: wall time, time per phase, how steadily progress moved."""

    seconds: float
    phases: list[tuple[str, float]]
    longest_gap: float
    """Longest time without the percent changing, from the call to the last event."""
    events_per_second: float
    summary: sync_pb2.SyncSummary

    def phase_text(self) -> str:
        """The phases and their seconds, as ``staging 1.20s, committing 0.40s``."""
        return ", ".join(f"{name} {seconds:.2f}s" for name, seconds in self.phases)


def arrivals(events: Iterable[sync_pb2.SyncEvent]) -> Iterator[tuple[float, sync_pb2.SyncEvent]]:
    """Each event with the ``perf_counter`` time it arrived at."""
    for event in events:
        yield time.perf_counter(), event


def follow(events: Iterable[tuple[float, sync_pb2.SyncEvent]], started: float) -> RunTiming:
    """Times a run from its events and their arrival times; fails unless the run succeeded."""
    phase_starts: list[tuple[str, float]] = []
    last: sync_pb2.SyncEvent | None = None
    count, percent, changed_at, longest_gap, now = 0, -1, started, 0.0, started
    for now, event in events:
        count += 1
        name = sync_pb2.SyncPhase.Name(event.phase).removeprefix("SYNC_PHASE_").lower()
        if not phase_starts or phase_starts[-1][0] != name:
            phase_starts.append((name, now))
        if event.percent != percent:
            longest_gap = max(longest_gap, now - changed_at)
            percent, changed_at = event.percent, now
        last = event
    ended = now
    if last is None or last.state != sync_pb2.SYNC_RUN_STATE_SUCCEEDED:
        raise RunFailed(f"the sync did not succeed: {last.message if last else 'no events'}")
    ends = [start for _, start in phase_starts[1:]] + [ended]
    phases = [(name, end - start) for (name, start), end in zip(phase_starts, ends, strict=True)]
    seconds = ended - started
    return RunTiming(seconds, phases, longest_gap, count / seconds, last.summary)


def timed_sync(client: SyncClient, district_id: str) -> RunTiming:
    """One sync through ``SyncRosters``, followed to its last event."""
    started = time.perf_counter()
    return follow(arrivals(client.sync_rosters(district_id)), started)


def timed_preview(client: SyncClient, district_id: str) -> float:
    """Seconds until the whole plan of a sync is known (counts and guard verdict, first page of items).

    Measured as a big district previews: start a preview job, follow it to PREVIEWED, read its first page.
    """
    started = time.perf_counter()
    job = client.start_sync_preview(district_id).run
    last = None
    for event in client.watch_run(job.name):
        last = event
    if last is None or last.state != sync_pb2.SYNC_RUN_STATE_PREVIEWED:
        raise RuntimeError(f"the preview job did not end PREVIEWED: {last.message if last else 'no events'}")
    client.preview_sync(district_id, sync_run=job.name, page_size=100)
    return time.perf_counter() - started


def change_in_classlink(sandbox: SandboxHandle, changed: float, removed: float) -> tuple[int, int]:
    """Renames ``changed`` and removes ``removed`` (fractions) of the sandbox's teachers, spread evenly.

    Returns how many teachers were changed and removed.
    """
    teachers = sorted(
        u["sourcedId"]
        for u in sandbox.roster()["users"]
        if u["role"] == "teacher" and u["status"] == "active"
    )
    change_count, remove_count = round(len(teachers) * changed), round(len(teachers) * removed)
    stride = max(1, len(teachers) // max(1, change_count + remove_count))
    picked = teachers[::stride][: change_count + remove_count]
    ops: list[dict[str, object]] = [
        {"op": "update_user", "sourcedId": sid, "set": {"familyName": f"Changed-{n}"}}
        for n, sid in enumerate(picked[:change_count])
    ]
    ops += [{"op": "remove_user", "sourcedId": sid} for sid in picked[change_count:]]
    sandbox.mutate(ops)
    return change_count, len(picked) - change_count


def percentile(samples: list[float], fraction: float) -> float:
    """The ``fraction`` quantile (0.5, 0.99) of ``samples``, interpolated."""
    if len(samples) < 2:
        return samples[0] if samples else float("nan")
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return cuts[round(fraction * 100) - 1]


class ListTeachersCaller:
    """One caller paging through a district's teachers (page size 1,000), timing each call."""

    def __init__(self, stack: Stack, district_id: str) -> None:
        self._channel = grpc.insecure_channel(stack.roster_target)
        self._stub = roster_service_pb2_grpc.RosterServiceStub(self._channel)
        self._metadata = stack.roster_metadata()
        self._parent = f"districts/{district_id}"
        self._token = ""

    def call(self) -> float:
        """Seconds of one call for the next page (the first again after the last)."""
        request = rpc.ListTeachersRequest(
            parent=self._parent, page_size=LIST_PAGE_SIZE, page_token=self._token
        )
        started = time.perf_counter()
        response = self._stub.ListTeachers(request, metadata=self._metadata, timeout=60)
        self._token = response.next_page_token
        return time.perf_counter() - started

    def sample(self, calls: int) -> list[float]:
        """Latencies of ``calls`` calls made one after another now."""
        return [self.call() for _ in range(calls)]

    @contextmanager
    def in_background(self) -> Iterator[list[float]]:
        """Calls back to back on a thread while the block runs; yields the list the latencies go to."""
        latencies: list[float] = []
        stop = threading.Event()

        def loop() -> None:
            while not stop.is_set():
                latencies.append(self.call())

        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        try:
            yield latencies
        finally:
            stop.set()
            thread.join()

    def close(self) -> None:
        """Closes the channel."""
        self._channel.close()


@dataclass(frozen=True)
class LoadResult:
    """The load check: the run under load, the watchers' and the list calls' outcomes."""

    run: RunTiming
    watchers: int
    watcher_errors: int
    list_calls: int
    list_errors: dict[str, int]
    """Failed list calls by status code."""
    list_p50: float
    list_p99: float

    @property
    def errors(self) -> int:
        """Every failed call: broken or incomplete watches and failed list calls."""
        return self.watcher_errors + sum(self.list_errors.values())


async def _watch(stub: SyncServiceAsyncStub, run: str, metadata: Metadata) -> bool:
    """True when one watcher saw the run to its terminal event without an error."""
    request = sync_service_pb2.WatchSyncRunRequest(name=run)
    try:
        async for response in stub.WatchSyncRun(request, metadata=metadata):
            if response.event.state in TERMINAL_STATES:
                return True
    except grpc.aio.AioRpcError:
        return False
    return False


async def _list_call(
    stub: RosterServiceAsyncStub, parent: str, metadata: Metadata
) -> float | grpc.StatusCode:
    """Seconds one ListTeachers call for the district's first 1,000 teachers took, or its error."""
    request = rpc.ListTeachersRequest(parent=parent, page_size=LIST_PAGE_SIZE)
    started = time.perf_counter()
    try:
        await stub.ListTeachers(request, metadata=metadata, timeout=60)
    except grpc.aio.AioRpcError as error:
        return error.code()
    return time.perf_counter() - started


async def _load(stack: Stack, district_id: str, watchers: int, calls: int) -> LoadResult:
    sync_metadata: Metadata = (("authorization", f"Bearer {stack.token(district_id)}"),)
    roster_metadata = stack.roster_metadata()
    parent = f"districts/{district_id}"
    async with (
        grpc.aio.insecure_channel(stack.sync_target) as sync_channel,
        grpc.aio.insecure_channel(stack.roster_target) as roster_channel,
    ):
        sync_stub = sync_service_pb2_grpc.SyncServiceStub(sync_channel)
        roster_stub = roster_service_pb2_grpc.RosterServiceStub(roster_channel)
        started = time.perf_counter()
        start = await sync_stub.StartSyncRun(
            sync_service_pb2.StartSyncRunRequest(parent=parent), metadata=sync_metadata
        )
        run = start.run.name
        watching = [asyncio.create_task(_watch(sync_stub, run, sync_metadata)) for _ in range(watchers)]
        listing = [
            asyncio.create_task(_list_call(roster_stub, parent, roster_metadata)) for _ in range(calls)
        ]
        events = []
        async for response in sync_stub.WatchSyncRun(
            sync_service_pb2.WatchSyncRunRequest(name=run), metadata=sync_metadata
        ):
            events.append((time.perf_counter(), response.event))
            if response.event.state in TERMINAL_STATES:
                break
        watched = await asyncio.gather(*watching)
        outcomes = await asyncio.gather(*listing)
    latencies = [o for o in outcomes if isinstance(o, float)]
    errors = Counter(o.name for o in outcomes if isinstance(o, grpc.StatusCode))
    return LoadResult(
        run=follow(events, started),
        watchers=watchers,
        watcher_errors=watched.count(False),
        list_calls=calls,
        list_errors=dict(errors),
        list_p50=percentile(latencies, 0.5),
        list_p99=percentile(latencies, 0.99),
    )


def load_check(stack: Stack, district_id: str, *, watchers: int = 50, calls: int = 200) -> LoadResult:
    """One re-sync followed by ``watchers`` streams, with ``calls`` ListTeachers calls sent at once.

    The calls (page size 1,000) go to the district being synced as the run starts.
    """
    return asyncio.run(_load(stack, district_id, watchers, calls))
