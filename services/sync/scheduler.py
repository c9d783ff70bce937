"""``python -m services.sync.scheduler``: the AutoSync scheduler alone (``services.sync.autosync.scheduler``).

It only enqueues: due districts get a run with trigger AUTO on the Dramatiq broker, which workers
(``python -m services.sync.worker``) execute. Several replicas may run against one database; each
due time still produces one run. Stops on SIGINT/SIGTERM after the tick in progress, or after
``--ticks N`` ticks; either way it prints what it did: runs started, districts passed over (due,
but busy, waiting for review, or disconnected) and districts that failed.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

from services.common.logs import configure_logging
from services.common.metrics import start_metrics_server
from services.common.secret_files import apply_secret_files
from services.common.tracing import configure_tracing
from services.sync.autosync.scheduler import run_scheduler
from services.sync.runs import broker, tasks


async def _serve(ticks: int | None) -> None:
    app = tasks.worker_app()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    print(
        f"AutoSync scheduler started (every {app.settings.scheduler_interval.total_seconds():g} s)",
        flush=True,
    )
    try:
        done = await run_scheduler(app, tasks.enqueue_run, stopping, ticks=ticks)
    finally:
        app.close()
    print(
        f"AutoSync scheduler stopped: started {len(done.started)} runs, passed over {done.passed} "
        f"districts, {done.failed} failed",
        flush=True,
    )


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m services.sync.scheduler", description=__doc__)
    parser.add_argument(
        "--ticks", type=int, metavar="N", help="stop after N ticks (default: run until a signal)"
    )
    arguments = parser.parse_args()
    if arguments.ticks is not None and arguments.ticks < 1:
        parser.error("--ticks must be at least 1")
    return arguments


def main() -> None:
    """Run the scheduler until a signal stops it (or for ``--ticks N`` ticks)."""
    arguments = _arguments()
    apply_secret_files()
    configure_logging()
    configure_tracing("ew-sync-scheduler")
    start_metrics_server()
    if broker.is_embedded():
        raise SystemExit(
            "EW_BROKER_URL is empty: with the in-process stub broker the sync server runs the AutoSync "
            "scheduler itself (EW_SYNC_SCHEDULER_EMBEDDED); set EW_BROKER_URL (redis://… or amqp://…) to run "
            "it alone."
        )
    asyncio.run(_serve(arguments.ticks))


if __name__ == "__main__":
    main()
