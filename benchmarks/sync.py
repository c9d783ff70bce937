"""``python -m benchmarks.sync``: the sync at several sizes and on each backend, against its floors.

Real processes as in production (see ``benchmarks.stack``): the OneRoster sandbox, the roster service,
the sync service and, on PostgreSQL, a separate worker on Redis. For every size and backend, on fresh
databases: the floors (``benchmarks.floors``), an initial sync, a no-change re-sync, a preview and a
re-sync after 1% of the teachers changed and 0.5% were removed in the sandbox. At the headline size
(the one closest to 100,000) also: ListTeachers latency idle and during a re-sync, the load check
(50 watchers and 200 ListTeachers calls at once on one re-sync) and a second district on a slow sandbox
(``--profile slow``) against the bare download under the same profile. Prints every figure with its
target and PASS or MISS, and writes ``benchmarks/results/latest.md`` and ``latest.png``.

Schools scale with teachers (one per 50), so 100,000 teachers come with 2,000 schools.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from ew.client.errors import RosterError

from benchmarks import report, scenarios
from benchmarks.databases import BACKENDS, empty_databases, fresh_roster_database
from benchmarks.floors import DistrictRows, download_floor, read_floor, rows_from_snapshot, write_floor
from benchmarks.report import HeadlineResult, SizeResult
from benchmarks.stack import REDIS, Stack, running_stack
from tests.support.sandbox import SandboxHandle, start_sandbox

DISTRICT = "d-bench"
SLOW_DISTRICT = "d-bench-slow"
HEADLINE = 100_000
RESULTS = Path(__file__).parent / "results"
CONCURRENCY = 4  # the sync service's default OneRoster concurrency; the download floor uses the same


def schools_for(teachers: int) -> int:
    """One school per 50 teachers: 2,000 schools for 100,000 teachers."""
    return max(1, teachers // 50)


def headline_size(sizes: Sequence[int]) -> int:
    """The size the once-only figures are measured at: the one closest to 100,000."""
    return min(sizes, key=lambda size: (abs(size - HEADLINE), -size))


@contextlib.contextmanager
def sandbox_of(teachers: int, **flags: object) -> Iterator[SandboxHandle]:
    """A sandbox serving one district of ``teachers`` teachers (no students, no staff)."""
    started = time.perf_counter()
    with start_sandbox(
        seed=3,
        schools=schools_for(teachers),
        teachers=teachers,
        students=0,
        administrators=0,
        startup_timeout=600,
        **flags,
    ) as sandbox:
        print(f"  sandbox {flags or ''} ready in {time.perf_counter() - started:.1f} s", flush=True)
        yield sandbox


def floors(backend: str, sandbox: SandboxHandle, district: DistrictRows) -> tuple[float, float, float]:
    """The download, write and read floors of the district on ``backend``, in seconds."""
    download = download_floor(sandbox.server_config(concurrency=CONCURRENCY))
    with fresh_roster_database(backend) as url:
        write = write_floor(url, district)
        read, _ = read_floor(url)
    return download, write, read


def core(
    label: str, stack: Stack, sandbox: SandboxHandle, district: DistrictRows, backend: str, size: int
) -> SizeResult:
    """Floors, initial, no-change, preview and changed re-sync of one backend at one size."""
    download, write, read = floors(backend, sandbox, district)
    print(f"  [{label}] floors: download {download:.2f}s, write {write:.2f}s, read {read:.2f}s", flush=True)
    stack.connect(DISTRICT, sandbox)
    with stack.sync_client(DISTRICT) as client:
        initial = scenarios.timed_sync(client, DISTRICT)
        print(f"  [{label}] initial {initial.seconds:.2f}s: {initial.phase_text()}", flush=True)
        if initial.summary.teachers_added != len(district.teachers):
            print(f"  [{label}] note: {initial.summary.teachers_added:,} added of {len(district.teachers):,}")
        no_change = scenarios.timed_sync(client, DISTRICT)
        print(f"  [{label}] no-change {no_change.seconds:.2f}s: {no_change.phase_text()}", flush=True)
        if no_change.summary.teachers_added or no_change.summary.teachers_updated:
            raise scenarios.RunFailed(f"the no-change re-sync changed something: {no_change.summary}")
        preview = scenarios.timed_preview(client, DISTRICT)
        print(f"  [{label}] preview {preview:.2f}s", flush=True)
        changed_count, removed_count = scenarios.change_in_classlink(sandbox, changed=0.01, removed=0.005)
        changed = scenarios.timed_sync(client, DISTRICT)
        summary = changed.summary
        print(
            f"  [{label}] changed {changed.seconds:.2f}s ({summary.teachers_updated:,} updated, "
            f"{summary.teachers_archived:,} archived for {changed_count:,} changed and {removed_count:,} "
            f"removed): {changed.phase_text()}",
            flush=True,
        )
    runs = (initial, no_change, changed)
    return SizeResult(
        backend=backend,
        teachers=size,
        schools=schools_for(size),
        download=download,
        write=write,
        read=read,
        initial=initial.seconds,
        no_change=no_change.seconds,
        changed=changed.seconds,
        preview=preview,
        longest_gap=max(r.longest_gap for r in runs),
        events_per_second=min(r.events_per_second for r in runs),
    )


def headline(label: str, stack: Stack, slow: SandboxHandle, backend: str, teachers: int) -> HeadlineResult:
    """List latency idle and during a re-sync, the load check and the slow server, on a synced district."""
    caller = scenarios.ListTeachersCaller(stack, DISTRICT)
    caller.sample(10)  # warm the roster's connections and caches
    idle = caller.sample(200)
    with stack.sync_client(DISTRICT) as client:
        baseline = scenarios.timed_sync(client, DISTRICT)
        with caller.in_background() as busy:
            scenarios.timed_sync(client, DISTRICT)
    caller.close()
    idle_p99, busy_p99 = scenarios.percentile(idle, 0.99), scenarios.percentile(busy, 0.99)
    print(
        f"  [{label}] ListTeachers p99 idle {idle_p99 * 1000:.0f} ms, during a sync {busy_p99 * 1000:.0f} ms"
    )
    load = scenarios.load_check(stack, DISTRICT)
    print(
        f"  [{label}] load: run {load.run.seconds:.2f}s (without load {baseline.seconds:.2f}s), "
        f"{load.watchers} watchers ({load.watcher_errors} failed), {load.list_calls:,} list calls at once "
        f"(failed: {load.list_errors or 'none'}), p50 {load.list_p50 * 1000:.0f} ms, "
        f"p99 {load.list_p99 * 1000:.0f} ms",
        flush=True,
    )
    slow_download = download_floor(slow.server_config(concurrency=CONCURRENCY))
    stack.connect(SLOW_DISTRICT, slow)
    with stack.sync_client(SLOW_DISTRICT) as client:
        slow_initial = scenarios.timed_sync(client, SLOW_DISTRICT)
        slow_no_change = scenarios.timed_sync(client, SLOW_DISTRICT)
    print(
        f"  [{label}] slow server: download {slow_download:.2f}s, initial {slow_initial.seconds:.2f}s, "
        f"no-change {slow_no_change.seconds:.2f}s",
        flush=True,
    )
    return HeadlineResult(
        backend=backend,
        teachers=teachers,
        list_idle_p99=idle_p99,
        list_busy_p99=busy_p99,
        slow_download=slow_download,
        slow_initial=slow_initial.seconds,
        slow_no_change=slow_no_change.seconds,
        load_run=load.run.seconds,
        load_baseline=baseline.seconds,
        load_watchers=load.watchers,
        load_list_calls=load.list_calls,
        load_errors=load.errors,
        load_list_p50=load.list_p50,
        load_list_p99=load.list_p99,
    )


def measure_backend(
    backend: str,
    size: int,
    sandbox: SandboxHandle,
    slow: SandboxHandle | None,
    district: DistrictRows,
    failures: list[str],
) -> tuple[SizeResult | None, HeadlineResult | None]:
    """Everything measured on one backend at one size, on fresh databases and fresh processes.

    A run that fails is added to ``failures``; the figures measured before it are kept.
    """
    label = f"{backend}-{size}"
    broker = os.environ.get("EW_BENCH_BROKER_URL", REDIS) if backend == "postgresql" else ""
    result: SizeResult | None = None
    extra: HeadlineResult | None = None
    with empty_databases(backend, "roster", "sync") as (roster_url, sync_url):
        with running_stack(label, roster_url, sync_url, broker) as stack:
            stack.rss.watch("sandbox", sandbox.process.pid)
            try:
                result = core(label, stack, sandbox, district, backend, size)
                if slow is not None:
                    extra = headline(label, stack, slow, backend, size)
            except (scenarios.RunFailed, RosterError) as error:
                failures.append(f"{backend} {size:,}: {error} (logs in {stack.logs})")
                print(f"  [{label}] FAILED: {error}", flush=True)
            peaks = dict(stack.rss.peaks)
    return (None if result is None else SizeResult(**{**vars(result), "peaks": peaks})), extra


def main(argv: Sequence[str] | None = None) -> None:
    """Runs every size (outer) on every backend (inner), then prints and writes the results."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--sizes", default="20000,100000,250000", help="comma-separated teacher counts")
    parser.add_argument("--backends", default=",".join(BACKENDS), help="comma-separated: sqlite,postgresql")
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder for latest.md and latest.png")
    args = parser.parse_args(argv)
    sizes = sorted({int(size) for size in args.sizes.split(",") if size.strip()})
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if not sizes or any(size < 1 for size in sizes) or set(backends) - set(BACKENDS) or not backends:
        parser.error(f"--sizes takes positive counts; --backends a list of {', '.join(BACKENDS)}")
    command = shlex.join(["python", "-m", "benchmarks.sync", *(argv if argv is not None else sys.argv[1:])])
    started = time.perf_counter()
    results: list[SizeResult] = []
    headlines: list[HeadlineResult] = []
    failures: list[str] = []
    for size in sizes:
        print(f"\n== {size:,} teachers, {schools_for(size):,} schools ==", flush=True)
        with contextlib.ExitStack() as slow_sandbox:
            # The slow server's district is never changed, so both backends share it.
            slow = (
                slow_sandbox.enter_context(sandbox_of(size, profile="slow"))
                if size == headline_size(sizes)
                else None
            )
            for backend in backends:
                # A fresh sandbox per backend: the changed re-sync edits the district.
                with sandbox_of(size) as sandbox:
                    district = rows_from_snapshot(sandbox.roster())
                    result, extra = measure_backend(backend, size, sandbox, slow, district, failures)
                results += [result] if result is not None else []
                headlines += [extra] if extra is not None else []
    checks = report.all_checks(results, headlines)
    print(f"\n== results ({time.perf_counter() - started:.0f} s in all) ==")
    report.print_checks(checks)
    for failure in failures:
        print(f"FAILED {failure}")
    table, picture = report.write_results(args.results, results, headlines, checks, failures, command)
    print(f"\nwrote {table} and {picture}")
    if failures:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
