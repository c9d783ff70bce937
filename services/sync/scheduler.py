"""``python -m services.sync.scheduler``: the AutoSync scheduler alone (``services.sync.autosync.scheduler``).

It only enqueues: due districts get a run with trigger AUTO on the Dramatiq broker, which workers
(``python -m services.sync.worker``) execute. Several replicas may run against one database; each
due time still produces one run. Stops on SIGINT/SIGTERM after the tick in progress.
"""

from __future__ import annotations

import asyncio
import signal

from services.common.logs import configure_logging
from services.common.metrics import start_metrics_server
from services.common.secret_files import apply_secret_files
from services.common.tracing import configure_tracing
from services.sync.autosync.scheduler import run_scheduler
from services.sync.runs import broker, tasks


async def _serve() -> None:
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
        await run_scheduler(app, tasks.enqueue_run, stopping)
    finally:
        app.close()


def main() -> None:
    """Run the scheduler until a signal stops it."""
    apply_secret_files()
    configure_logging()
    configure_tracing("ew-sync-scheduler")
    start_metrics_server()
    if broker.is_embedded():
        raise SystemExit(
            "EW_BROKER_URL is empty: with the in-process stub broker the sync server runs the AutoSync "
            "scheduler itself (EW_SYNC_SCHEDULER_EMBEDDED); set EW_BROKER_URL=redis://… to run it alone."
        )
    asyncio.run(_serve())


if __name__ == "__main__":
    main()
