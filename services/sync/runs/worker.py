"""The sync worker process (``python -m services.sync.worker``): a Dramatiq worker for sync runs.

Equivalent to ``dramatiq services.sync.runs.tasks --queues sync``, plus a recovery pass at startup and
every ``EW_SYNC_RECOVERY_INTERVAL_SECONDS`` so runs of a worker that died are settled even when no
sync server runs recovery. Stops gracefully on SIGINT/SIGTERM (the run in progress finishes first,
up to the time limit of the stop).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from types import FrameType

from dramatiq import Worker

from services.common.logs import configure_logging
from services.common.metrics import start_metrics_server
from services.common.secret_files import apply_secret_files
from services.common.tracing import configure_tracing
from services.sync.runs import broker, recovery, tasks

logger = logging.getLogger(__name__)

STOP_TIMEOUT_MS = 60_000


def main() -> None:
    """Run the worker until a signal stops it."""
    apply_secret_files()
    configure_logging()
    configure_tracing("ew-sync-worker")
    start_metrics_server()
    if broker.is_embedded():
        raise SystemExit(
            "EW_BROKER_URL is empty: runs execute inside the sync server (stub broker); "
            "set EW_BROKER_URL=redis://… or amqp://… to run a separate worker."
        )
    app = tasks.worker_app()
    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    asyncio.run(recovery.recover(app, tasks.enqueue_run))
    worker = Worker(app.broker, queues={tasks.QUEUE}, worker_threads=app.settings.worker_threads)
    worker.start()
    logger.info("sync worker started (%d threads)", app.settings.worker_threads)
    while not stopping.wait(app.settings.recovery_interval_seconds):
        try:
            asyncio.run(recovery.recover(app, tasks.enqueue_run))
        except Exception:
            logger.exception("sync run recovery pass failed")
    logger.info("sync worker stopping")
    worker.stop(STOP_TIMEOUT_MS)
    app.close()


if __name__ == "__main__":
    main()
