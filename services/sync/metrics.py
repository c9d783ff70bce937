"""The sync service's Prometheus metrics: runs, teachers changed, the run queue, webhooks.

Counters and histograms move where things happen (the executor and recovery record finished runs;
OneRoster traffic is counted in ``services.sync.oneroster.metrics``); ``RunQueueCollector`` reads
the queue's depth and lag from the sync database and the broker on each scrape, so every replica
reports the same figures (alert on ``max``). ``WEBHOOK_DELIVERIES`` is for the webhook sender to
count its attempts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import dramatiq
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from services.sync.runs.repository import TERMINAL_STATES
from services.sync.store.models import SyncRun
from services.sync.store.plan_records import summary_from_json
from services.sync.vocabulary import SyncRunState

if TYPE_CHECKING:
    from services.sync.app import App

RUNS_FINISHED = Counter(
    "ew_sync_runs_finished_total", "Sync runs that ended, by trigger and final state.", ("trigger", "state")
)
RUN_SECONDS = Histogram(
    "ew_sync_run_duration_seconds",
    "Time from a run's start to its end, by trigger and final state.",
    ("trigger", "state"),
    buckets=(1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200),
)
TEACHERS_CHANGED = Counter(
    "ew_sync_teachers_changed_total", "Teachers changed by succeeded runs, by kind of change.", ("kind",)
)
WEBHOOK_DELIVERIES = Counter(
    "ew_webhook_deliveries_total", "Webhook delivery attempts, by outcome.", ("outcome",)
)

_TEACHER_KINDS = ("added", "updated", "archived", "reactivated")


def record_finished_run(run: SyncRun) -> None:
    """Count a run that reached its final state (its row as committed)."""
    labels = (run.trigger.value, run.state.value)
    RUNS_FINISHED.labels(*labels).inc()
    if run.start_time is not None and run.end_time is not None:
        RUN_SECONDS.labels(*labels).observe((run.end_time - run.start_time).total_seconds())
    if run.state is SyncRunState.SUCCEEDED and run.summary_json:
        summary = summary_from_json(run.summary_json)
        for kind in _TEACHER_KINDS:
            TEACHERS_CHANGED.labels(kind).inc(getattr(summary, f"teachers_{kind}"))


async def count_finished_run(app: App, run_id: str) -> None:
    """Count the run if it has ended (read after the transaction that ended it committed)."""
    run = await app.transaction(lambda session: session.get(SyncRun, run_id))
    if run is not None and run.state in TERMINAL_STATES:
        record_finished_run(run)


def _waiting_messages(broker: dramatiq.Broker, queues: Iterator[str]) -> Iterator[tuple[str, int]]:
    for queue in queues:
        if isinstance(broker, RedisBroker):
            yield queue, int(broker.client.llen(f"{broker.namespace}:{queue}"))
        elif isinstance(broker, RabbitmqBroker):
            ready, _delayed, _dead = broker.get_queue_message_counts(queue)
            yield queue, ready
        elif isinstance(broker, StubBroker):
            yield queue, broker.queues[queue].qsize()


class RunQueueCollector(Collector):
    """Queue depth and lag, read on each scrape."""

    def __init__(
        self, sessions: sessionmaker[Session], broker: dramatiq.Broker, now: Callable[[], dt.datetime]
    ) -> None:
        self._sessions = sessions
        self._broker = broker
        self._now = now

    def collect(self) -> Iterator[Metric]:
        """The gauges, from one read of the runs and one of the broker."""
        runs = GaugeMetricFamily("ew_sync_runs_active", "Runs QUEUED or RUNNING now.", labels=["state"])
        oldest = GaugeMetricFamily(
            "ew_sync_queue_lag_seconds", "Age of the oldest QUEUED run (0 when none waits)."
        )
        heartbeat = GaugeMetricFamily(
            "ew_sync_run_heartbeat_age_seconds",
            "Seconds since the stalest RUNNING run's heartbeat (0 when none runs).",
        )
        waiting = GaugeMetricFamily(
            "ew_queue_messages", "Messages waiting in the broker, by queue.", labels=["queue"]
        )
        now = self._now()
        with self._sessions() as session:
            rows = session.execute(
                select(SyncRun.state, func.count())
                .where(SyncRun.state.in_((SyncRunState.QUEUED, SyncRunState.RUNNING)))
                .group_by(SyncRun.state)
            )
            counts = dict(rows.all())
            queued_since = session.scalar(
                select(func.min(SyncRun.create_time)).where(SyncRun.state == SyncRunState.QUEUED)
            )
            beat_since = session.scalar(
                select(func.min(SyncRun.heartbeat_time)).where(SyncRun.state == SyncRunState.RUNNING)
            )
        for state in (SyncRunState.QUEUED, SyncRunState.RUNNING):
            runs.add_metric([state.value], counts.get(state, 0))
        oldest.add_metric([], _age(now, queued_since))
        heartbeat.add_metric([], _age(now, beat_since))
        for queue, count in _waiting_messages(self._broker, iter(sorted(self._broker.get_declared_queues()))):
            waiting.add_metric([queue], count)
        yield from (runs, oldest, heartbeat, waiting)


def _age(now: dt.datetime, since: dt.datetime | None) -> float:
    return max((now - since).total_seconds(), 0.0) if since is not None else 0.0
