"""Dramatiq actors of the sync service; ``dramatiq services.sync.runs.tasks`` runs them in a worker.

The message carries the run id only (STYLE D3). Executing a run twice is safe: the executor
claims the run with ``UPDATE … WHERE state = 'QUEUED'``, so a duplicate delivery finds it taken
and returns. A run's own failures never raise (the run ends FAILED with a reason, and a new
SyncRosters starts a fresh run); what does raise is the infrastructure (the sync database down
when claiming), and such a message is retried with back-off. One that exhausts its retries goes
to the dead-letter path (``services.sync.runs.dead_letters``), which marks its QUEUED run FAILED
with the reason. A worker that died mid-run leaves the message unacknowledged, its redelivery is a
no-op claim, and recovery marks the run FAILED from its stale heartbeat.
"""

from __future__ import annotations

import asyncio
import logging
import threading

import dramatiq
from dramatiq.broker import MessageProxy
from dramatiq.middleware import Retries
from opentelemetry import trace

from services.sync.app import App, create_app
from services.sync.runs.broker import broker, queue_name
from services.sync.runs.dead_letters import DeadLetters, fail_queued_run
from services.sync.runs.executor import execute_run
from services.sync.runs.preview_job import execution_for
from services.sync.settings import load_settings

logger = logging.getLogger(__name__)

QUEUE = queue_name("sync")
tracer = trace.get_tracer(__name__)
TIME_LIMIT_MS = 2 * 60 * 60 * 1000
MAX_RETRIES = 3
MIN_BACKOFF_MS = 1_000
MAX_BACKOFF_MS = 30_000

_app_lock = threading.Lock()
_app: App | None = None


def install_app(app: App) -> None:
    """Run this process's runs with ``app`` (the sync server's container, stub broker)."""
    global _app
    with _app_lock:
        _app = app


def uninstall_app(app: App) -> None:
    """Forget ``app`` when its server stops."""
    global _app
    with _app_lock:
        if _app is app:
            _app = None


def worker_app() -> App:
    """The container runs use: the installed one, or one built from settings (worker process)."""
    global _app
    with _app_lock:
        if _app is None:
            _app = create_app(load_settings())
        return _app


@dramatiq.actor(
    actor_name="run_sync",
    queue_name=QUEUE,
    broker=broker,
    max_retries=MAX_RETRIES,
    min_backoff=MIN_BACKOFF_MS,
    max_backoff=MAX_BACKOFF_MS,
    time_limit=TIME_LIMIT_MS,
    throws=(),
)
def run_sync(run_id: str) -> None:
    """Execute one run, a sync or a preview job (idempotent: only a QUEUED run is claimed).

    In a span of the sender's trace.
    """
    with tracer.start_as_current_span("sync run", attributes={"ew.run_id": run_id}):
        asyncio.run(execute_run(worker_app(), run_id, execution_for))


def enqueue_run(run_id: str) -> None:
    """Send the run to the workers."""
    run_sync.send(run_id)


def _dead(message: MessageProxy, reason: str) -> None:
    """The dead-letter path of this process's actors: a sync run's message marks its run FAILED."""
    run_id = message.args[0] if message.args and isinstance(message.args[0], str) else None
    if message.actor_name != run_sync.actor_name or run_id is None:
        logger.error(
            "message %s of %s is dead (%s); it names no run", message.message_id, message.actor_name, reason
        )
        return
    if fail_queued_run(worker_app(), run_id, reason):
        logger.error("run %s failed: its message is dead (%s)", run_id, reason)
    else:
        logger.error(
            "run %s: its message is dead (%s); the run is not queued, so it stays as it is", run_id, reason
        )


broker.add_middleware(DeadLetters(_dead), before=Retries)
