"""Dramatiq actors of the sync service; ``dramatiq services.sync.runs.tasks`` runs them in a worker.

The message carries the run id only (STYLE D3). Executing a run twice is safe: the executor
claims the run with ``UPDATE … WHERE state = 'QUEUED'``, so a duplicate delivery finds it taken
and returns. Retries are off: a run that failed is FAILED with a reason, and a new SyncRosters
starts a fresh run; a worker that died mid-run leaves the message unacknowledged, its redelivery
is a no-op claim, and recovery marks the run FAILED from its stale heartbeat.
"""

from __future__ import annotations

import asyncio
import threading

import dramatiq
from opentelemetry import trace

from services.sync.app import App, create_app
from services.sync.runs.broker import broker
from services.sync.runs.executor import execute_run
from services.sync.settings import load_settings

QUEUE = "sync"
tracer = trace.get_tracer(__name__)
TIME_LIMIT_MS = 2 * 60 * 60 * 1000

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
    max_retries=0,
    time_limit=TIME_LIMIT_MS,
    throws=(),
)
def run_sync(run_id: str) -> None:
    """Execute one sync run (idempotent: only a QUEUED run is claimed), in a span of the sender's trace."""
    with tracer.start_as_current_span("sync run", attributes={"ew.run_id": run_id}):
        asyncio.run(execute_run(worker_app(), run_id))


def enqueue_run(run_id: str) -> None:
    """Send the run to the workers."""
    run_sync.send(run_id)
