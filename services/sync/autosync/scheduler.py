"""The AutoSync scheduler: it only enqueues. Each tick claims due districts and starts their AUTO runs.

A tick repeats one transaction until no due district is left that it may start:

1. ``claim_due`` locks a batch of districts whose ``next_run_time`` has passed (``FOR UPDATE SKIP
   LOCKED``: another scheduler replica takes other districts, never the same ones);
2. each claimed district moves to the next due time after *now* (so downtime across several due
   times gives one run), and gets a run with trigger AUTO through the same start path as every
   other run (``create_or_attach``), unless it already has a queued or running run, or its newest
   run waits for review (an AUTO run never approves one, and never piles up behind one); a district
   found without a connection has its AutoSync turned off;
3. a district whose ClassLink server already has ``EW_SYNC_AUTOSYNC_MAX_RUNS_PER_SERVER`` AUTO runs
   queued or running stays due, untouched; its server is left out of the rest of the tick, and a
   later tick starts it when a run has ended;
4. after the commit, the created runs are sent to the workers (a run the queue refuses ends FAILED).

Each district is handled in its own savepoint: one that fails (a stored time zone that stopped
resolving, an unexpected error) is rolled back alone, logged, and retried ``RETRY_AFTER_FAILURE``
later, so it cannot stop AutoSync for everyone else by failing first in every tick.

Time comes from ``app.clock``; the embedded scheduler (stub broker) runs inside the sync server,
``python -m services.sync.scheduler`` runs it alone (Redis or RabbitMQ broker).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from services.common.errors import Unavailable
from services.sync.app import App
from services.sync.autosync.schedule import next_run_time
from services.sync.autosync.usecases import schedule_of, turn_off
from services.sync.runs import repository
from services.sync.runs.usecases import create_or_attach, queue
from services.sync.store import autosync as store
from services.sync.store.autosync import DueDistrict
from services.sync.vocabulary import SyncRunState, SyncTrigger

logger = logging.getLogger(__name__)

REQUESTED_BY = "autosync"
"""The ``requested_by`` of runs the scheduler starts."""

RETRY_AFTER_FAILURE = dt.timedelta(hours=1)
"""How long a district whose start failed waits before the scheduler tries it again."""


@dataclass
class Tick:
    """What one tick did: runs started, districts passed over or failed, servers at their cap."""

    started: list[str] = field(default_factory=list)
    passed: int = 0
    failed: int = 0
    capped_servers: set[str] = field(default_factory=set)

    def add(self, other: Tick) -> None:
        """Count ``other``'s work in this one (a scheduler's totals over its ticks)."""
        self.started += other.started
        self.passed += other.passed
        self.failed += other.failed
        self.capped_servers |= other.capped_servers


def _start_due(session: Session, app: App, progress: Tick) -> tuple[int, list[str]]:
    """One batch: claim, advance and start; (districts claimed, runs created to queue)."""
    now = app.clock()
    due = store.claim_due(
        session, now, limit=app.settings.scheduler_batch, skip_servers=progress.capped_servers
    )
    store.lock_servers(session, [district.server_url for district in due if district.server_url])
    created: list[str] = []
    for district in due:
        try:
            with session.begin_nested():
                run_id = _start_one(session, app, district, progress, now)
        except Exception as error:
            district_id = district.settings.district_id
            # The error's type only: its text may quote settings or a server's answer.
            logger.error(
                "AutoSync could not start district %s (%s); trying it again at %s",
                district_id,
                type(error).__name__,
                (now + RETRY_AFTER_FAILURE).isoformat(),
            )
            store.advance(session, district_id, now + RETRY_AFTER_FAILURE, last_auto_run_id=None)
            progress.failed += 1
            continue
        if run_id is not None:
            created.append(run_id)
    return len(due), created


def _start_one(
    session: Session, app: App, district: DueDistrict, progress: Tick, now: dt.datetime
) -> str | None:
    """Advance one claimed district and start its run; the run's id, or None when it gets none."""
    settings = app.settings
    district_id = district.settings.district_id
    if district.server_url is None:  # disconnected: AutoSync cannot run, so it is off
        turn_off(session, district_id, by=REQUESTED_BY, now=now)
        progress.passed += 1
        return None
    following = next_run_time(
        schedule_of(district.settings, district.pauses), district_id, settings.autosync_spread, now
    )
    if _busy(session, district_id):
        store.advance(session, district_id, following, last_auto_run_id=None)
        progress.passed += 1
        return None
    if district.server_url in progress.capped_servers or (
        repository.active_auto_runs(session, district.server_url) >= settings.autosync_max_runs_per_server
    ):
        progress.capped_servers.add(district.server_url)
        return None
    started = create_or_attach(
        session,
        district_id=district_id,
        requested_by=REQUESTED_BY,
        approve_run_id=None,
        trigger=SyncTrigger.AUTO,
        now=now,
    )
    if started.attached:  # an administrator's run began since ``_busy`` looked: it is this due time's
        store.advance(session, district_id, following, last_auto_run_id=None)
        progress.passed += 1
        return None
    store.advance(session, district_id, following, last_auto_run_id=started.run.id)
    return started.run.id


def _busy(session: Session, district_id: str) -> bool:
    """True when the district has a queued or running run, or its newest run waits for review."""
    if repository.active_run(session, district_id) is not None:
        return True
    return repository.latest_run_state(session, district_id) is SyncRunState.NEEDS_REVIEW


async def tick(app: App, enqueue: Callable[[str], None]) -> Tick:
    """Start every district due now that may start (see the module docstring)."""
    result = Tick()
    claimed = -1
    while claimed != 0:
        # Every claimed district is either advanced or puts its server on the capped list, which
        # the next claim leaves out: each batch makes progress, so the loop ends.
        claimed, created = await app.transaction(lambda session: _start_due(session, app, result))
        for run_id in created:
            with contextlib.suppress(Unavailable):  # the run is FAILED with the reason; go on
                await queue(app, run_id, enqueue)
            result.started.append(run_id)
    return result


async def run_scheduler(
    app: App, enqueue: Callable[[str], None], stopping: asyncio.Event, *, ticks: int | None = None
) -> Tick:
    """Tick every ``EW_SYNC_SCHEDULER_INTERVAL`` until ``stopping`` is set, or ``ticks`` times.

    Returns what all its ticks did together; a failed tick is logged and counts as a tick.
    """
    interval = app.settings.scheduler_interval.total_seconds()
    total = Tick()
    count = 0
    while not stopping.is_set():
        count += 1
        try:
            done = await tick(app, enqueue)
        except Exception:
            logger.exception("AutoSync scheduler tick failed; trying again in %.0f s", interval)
        else:
            total.add(done)
            if done.started or done.capped_servers or done.failed:
                logger.info(
                    "AutoSync started %d runs, passed over %d districts, %d failed, %d servers at their cap",
                    len(done.started),
                    done.passed,
                    done.failed,
                    len(done.capped_servers),
                )
        if ticks is not None and count >= ticks:
            break
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), interval)
    return total
