"""Start and stop what runs need beside the gRPC server: wake-ups, the in-process worker, recovery.

With ``EW_SYNC_SCHEDULER_EMBEDDED`` (the default with the stub broker) the AutoSync scheduler runs
here too, since only this process can hand runs to the in-process worker.

The server calls ``start(app)`` once it serves and ``stop(app)`` after it stopped. With the stub
broker (``EW_BROKER_URL`` empty) runs execute in this process on a Dramatiq ``Worker``'s threads,
and, when ``EW_WEBHOOK_URL`` is set, a webhook sender delivers their events from this process too;
with a real broker they execute in worker processes (``python -m services.sync.worker``), events
go out through ``python -m services.sync.webhooks``, and this process only streams their events.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dramatiq import Worker

from services.sync.autosync.scheduler import Tick, run_scheduler
from services.sync.runs import broker, recovery, tasks
from services.sync.webhooks.sender import WebhookSender

if TYPE_CHECKING:
    from services.sync.app import App

WORKER_POLL_MS = 100
WORKER_STOP_TIMEOUT_MS = 5000


@dataclass
class _Webhooks:
    sender: WebhookSender
    task: asyncio.Task[None]


@dataclass
class _Running:
    worker: Worker | None
    recovery: asyncio.Task[None]
    scheduler: asyncio.Task[Tick] | None
    stopping: asyncio.Event
    webhooks: _Webhooks | None


_running: dict[int, _Running] = {}


async def start(app: App) -> None:
    """Start wake-ups, the in-process worker (stub broker) and the recovery loop."""
    await app.notifier.start()
    worker: Worker | None = None
    webhooks: _Webhooks | None = None
    # One event stops the scheduler and the webhook sender (each after the pass in progress).
    stopping = asyncio.Event()
    if broker.is_embedded():
        tasks.install_app(app)
        worker = Worker(app.broker, worker_timeout=WORKER_POLL_MS, worker_threads=app.settings.worker_threads)
        worker.start()
        await recovery.recover(app, tasks.enqueue_run, requeue_all_queued=True)
        if app.webhooks.configured:
            webhooks = _start_webhooks(app, stopping)
    else:
        await recovery.recover(app, tasks.enqueue_run)
    _running[id(app)] = _Running(
        worker=worker,
        recovery=asyncio.create_task(recovery.recovery_loop(app, tasks.enqueue_run), name="run-recovery"),
        scheduler=asyncio.create_task(
            run_scheduler(app, tasks.enqueue_run, stopping), name="autosync-scheduler"
        )
        if app.settings.scheduler_embedded
        else None,
        stopping=stopping,
        webhooks=webhooks,
    )


def _start_webhooks(app: App, stopping: asyncio.Event) -> _Webhooks:
    sender = WebhookSender(app.sessions, app.webhooks, clock=app.clock)
    return _Webhooks(sender, asyncio.create_task(sender.run(stopping), name="webhook-sender"))


def _detach(worker: Worker) -> None:
    """Drop the middleware a stopped worker left on the process-wide stub broker.

    ``Worker.start`` adds one that routes new queues to that worker; a later worker (the next
    server in this process) adds its own.
    """
    broker_ = worker.broker
    broker_.middleware[:] = [m for m in broker_.middleware if getattr(m, "worker", None) is not worker]


async def stop(app: App) -> None:
    """Stop the recovery loop, the in-process worker and the wake-ups.

    A run still executing in the in-process worker is left RUNNING; its heartbeat stops, and
    recovery in the next process marks it FAILED (nothing half-applied: it had not committed).
    """
    running = _running.pop(id(app), None)
    if running is not None:
        running.stopping.set()
        if running.scheduler is not None:
            await running.scheduler
        running.recovery.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running.recovery
        if running.worker is not None:
            await asyncio.to_thread(running.worker.stop, WORKER_STOP_TIMEOUT_MS)
            _detach(running.worker)
            tasks.uninstall_app(app)
        if running.webhooks is not None:
            await running.webhooks.task
            await running.webhooks.sender.close()
    await app.notifier.close()
