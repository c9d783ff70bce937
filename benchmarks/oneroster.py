"""``python -m benchmarks.oneroster``: pull 100,000 teachers and 2,000 schools from the sandbox.

Compares the client (sequential pages, then concurrent pages) with a bare sequential httpx loop that
downloads the same pages with the same OAuth 1.0a signing but parses nothing. Targets: sequential
client within 1.3x of the bare loop; concurrent client faster than the bare loop; reading the
administrators, aides and proctors too costs at most 5% over schools and teachers alone. Two scenarios:
loopback with pages served from memory (the client's parsing cost dominates), and every page
delayed by ``--page-delay`` as a remote server's response time. Prints the figures, the ratios and
the peak memory of a pull.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import time
import tracemalloc
from collections.abc import Awaitable, Callable

import httpx

from services.sync.oneroster import OneRosterClient, Roster, ServerConfig
from services.sync.oneroster.auth import build_auth
from tests.support.sandbox import SandboxHandle, start_sandbox


async def client_pull(config: ServerConfig) -> int:
    """One full pull through the client (schools, teachers and staff); returns the number of teachers."""
    async with OneRosterClient(config) as client:
        roster: Roster = await client.pull_roster()
    return len(roster.teachers)


async def client_pull_without_staff(config: ServerConfig) -> int:
    """Schools and teachers only: what a pull cost before it also read administrators, aides and proctors."""
    async with OneRosterClient(config) as client:
        await client.list_schools()
        teachers = await client.list_teachers()
    return len(teachers.records)


async def bare_loop(config: ServerConfig) -> int:
    """The same pages, one after another, read into memory and never parsed."""
    rows = 0
    async with httpx.AsyncClient(auth=build_auth(config.credentials), timeout=60) as http:
        for path in ("/schools", "/teachers"):
            offset = 0
            while True:
                response = await http.get(
                    config.base_url + path, params={"limit": config.page_size, "offset": offset}
                )
                response.raise_for_status()
                body = response.content
                total = int(response.headers["x-total-count"])
                offset += config.page_size
                if path == "/teachers":
                    rows = total
                if offset >= total or not body:
                    break
    return rows


async def best_of(runs: int, job: Callable[[], Awaitable[int]]) -> tuple[float, float, int]:
    """The fastest of ``runs`` runs: (wall seconds, this process's CPU seconds, teachers)."""
    best = (float("inf"), float("inf"), 0)
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.process_time()
        count = await job()
        best = min(best, (time.perf_counter() - wall, time.process_time() - cpu, count))
    return best


async def measure(handle: SandboxHandle, runs: int, concurrency: int, page_delay: float) -> None:
    """Prints the best times of the bare loop and the client in one scenario, and their ratios to targets."""
    if page_delay:
        handle.set_faults([{"kind": "slow", "delay": page_delay, "times": -1}])
        print(
            f"\n-- every page answered after {page_delay * 1000:.0f} ms, as a remote Roster Server would --"
        )
    else:
        handle.clear_faults()
        print("\n-- loopback, pages served from memory (the client's own cost dominates) --")
    sequential = handle.server_config(concurrency=1)
    concurrent = handle.server_config(concurrency=concurrency)
    await bare_loop(sequential)  # warm the server's caches and the connection path once
    bare_s, bare_cpu, bare_n = await best_of(runs, lambda: bare_loop(sequential))
    seq_s, seq_cpu, seq_n = await best_of(runs, lambda: client_pull(sequential))
    con_s, con_cpu, con_n = await best_of(runs, lambda: client_pull(concurrent))
    lean_s, lean_cpu, lean_n = await best_of(runs, lambda: client_pull_without_staff(concurrent))
    assert seq_n == con_n == bare_n == lean_n, (seq_n, con_n, bare_n, lean_n)

    print(f"teachers pulled:                 {seq_n:,} (page size {sequential.page_size}, best of {runs})")
    print("                                 wall      teachers/s   client CPU")
    print(f"bare httpx loop (no parsing):    {bare_s:5.2f} s  {bare_n / bare_s:10,.0f}   {bare_cpu:5.2f} s")
    print(f"client, sequential pages:        {seq_s:5.2f} s  {seq_n / seq_s:10,.0f}   {seq_cpu:5.2f} s")
    label = f"client, {concurrency} concurrent pages:"
    print(f"{label:<33}{con_s:5.2f} s  {con_n / con_s:10,.0f}   {con_cpu:5.2f} s")
    label = "same, without staff accounts:"
    print(f"{label:<33}{lean_s:5.2f} s  {lean_n / lean_s:10,.0f}   {lean_cpu:5.2f} s")
    print(f"ratio sequential / bare:         {seq_s / bare_s:5.2f}x  (target <= 1.30x)")
    print(f"ratio concurrent / bare:         {con_s / bare_s:5.2f}x  (target < 1.00x)")
    print(f"ratio with staff / without:      {con_s / lean_s:5.2f}x  (staff reading: target <= 1.05x)")


async def memory(handle: SandboxHandle, concurrency: int) -> None:
    """Prints the peak Python memory (tracemalloc) and the peak RSS of one concurrent pull."""
    handle.clear_faults()
    tracemalloc.start()
    await client_pull(handle.server_config(concurrency=concurrency))
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"\npeak Python memory of one pull:  {traced_peak / 2**20:5.1f} MiB (tracemalloc)")
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this process:        {peak_rss:5.1f} MiB")


def main() -> None:
    """Starts a sandbox of the requested size and runs both scenarios, then the memory measurement."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--teachers", type=int, default=100_000)
    parser.add_argument("--schools", type=int, default=2_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument(
        "--page-delay", type=float, default=0.02, help="server time per page, second scenario"
    )
    args = parser.parse_args()
    started = time.perf_counter()
    with start_sandbox(
        seed=7,
        teachers=args.teachers,
        schools=args.schools,
        students=1000,
        administrators=100,
        staff=200,
        startup_timeout=300,
    ) as handle:
        ready = time.perf_counter() - started
        print(f"sandbox ready in {ready:.1f} s: {args.teachers:,} teachers, {args.schools:,} schools")
        asyncio.run(measure(handle, args.runs, args.concurrency, 0.0))
        asyncio.run(measure(handle, args.runs, args.concurrency, args.page_delay))
        asyncio.run(memory(handle, args.concurrency))


if __name__ == "__main__":
    main()
