"""Progress of one run: persisted events with a monotonic percent, throttled, with a heartbeat.

Each phase owns a slice of 0–100 (weights follow where time goes: reading teachers and staging
them dominate); within a phase, percent follows done/total. A preview job stops after planning, so
its phases share the whole 0–100 between them, and its messages do not speak of syncing
(``phase_ranges``, ``phase_messages``). Percent never goes down and stays at most 99 until the run
succeeds (or a preview job stored its plan). Events are persisted (gapless sequence, in the sync
database) and then announced through the notifier. ``advance`` is throttled to a few events per
second; a heartbeat thread writes an event whenever a second passed without one, and refreshes
``heartbeat_time``, so watchers see life at least once a second and recovery can tell a dead
worker from a slow one. A heartbeat in a phase that counted nothing since the last event moves the
percent one point, through at most half of the room its count had, so the bar never stands still
for long and the work counted later still has room to move it. Work counted after other work (the
EW read a planning phase waits for, then the planner; the sync's own records after the roster's
commit) counts from where the bar stands (``count_from_here``), through a share of what is left, so
a nudge never leaves the count behind the bar. A heartbeat
thread (not an asyncio task) keeps beating while the run's loop is busy with CPU work such as
planning 100,000 teachers.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections.abc import Callable, Mapping

from sqlalchemy.orm import Session, sessionmaker

from services.common.clock import Clock, utc_now
from services.sync.runs import repository
from services.sync.runs.notifier import Notifier
from services.sync.runs.repository import EventValues, RunCancelled, RunLost
from services.sync.vocabulary import SyncPhase, SyncRunState, SyncTrigger

logger = logging.getLogger(__name__)

PHASE_RANGES: dict[SyncPhase, tuple[int, int]] = {
    SyncPhase.QUEUED: (0, 0),
    SyncPhase.CONNECTING: (0, 2),
    SyncPhase.READING_SCHOOLS: (2, 4),
    SyncPhase.READING_TEACHERS: (4, 28),
    # Planning first counts EW's roster still arriving (half the range), then the planner.
    SyncPhase.PLANNING: (28, 40),
    SyncPhase.CREATING_SCHOOLS: (40, 42),
    SyncPhase.SYNCING_TEACHERS: (42, 63),
    SyncPhase.ARCHIVING: (63, 66),
    # The roster's commit is one statement-level transaction the sync cannot count: its heartbeat
    # moves a point a beat through half the range; the sync's own records, about as long at any
    # size, count through the rest.
    SyncPhase.COMMITTING: (66, 99),
    SyncPhase.DONE: (100, 100),
}

# A preview job reads and plans, then stores its plan: no staging, so reading teachers takes most.
PREVIEW_PHASE_RANGES: dict[SyncPhase, tuple[int, int]] = {
    SyncPhase.QUEUED: (0, 0),
    SyncPhase.CONNECTING: (0, 5),
    SyncPhase.READING_SCHOOLS: (5, 15),
    SyncPhase.READING_TEACHERS: (15, 80),
    SyncPhase.PLANNING: (80, 99),
    SyncPhase.DONE: (100, 100),
}

PHASE_MESSAGES: dict[SyncPhase, str] = {
    SyncPhase.QUEUED: "Waiting for a worker to start the sync",
    SyncPhase.CONNECTING: "Connecting to ClassLink",
    SyncPhase.READING_SCHOOLS: "Reading schools from ClassLink",
    SyncPhase.READING_TEACHERS: "Data from ClassLink is syncing",
    SyncPhase.PLANNING: "Working out what to change",
    SyncPhase.CREATING_SCHOOLS: "Creating schools in EW",
    SyncPhase.SYNCING_TEACHERS: "Adding and updating teachers in EW",
    SyncPhase.ARCHIVING: "Archiving teachers no longer in ClassLink",
    SyncPhase.COMMITTING: "Saving every change in one step",
    SyncPhase.DONE: "Sync complete",
}

PREVIEW_PHASE_MESSAGES: Mapping[SyncPhase, str] = {
    **PHASE_MESSAGES,
    SyncPhase.QUEUED: "Waiting for a worker to start the preview",
    SyncPhase.READING_TEACHERS: "Reading teachers from ClassLink",
}

MAX_UNFINISHED_PERCENT = 99


def phase_ranges(trigger: SyncTrigger) -> Mapping[SyncPhase, tuple[int, int]]:
    """The slices of 0–100 a run with ``trigger`` goes through."""
    return PREVIEW_PHASE_RANGES if trigger is SyncTrigger.PREVIEW else PHASE_RANGES


def phase_messages(trigger: SyncTrigger) -> Mapping[SyncPhase, str]:
    """What a run with ``trigger`` says in each phase unless it has more to say."""
    return PREVIEW_PHASE_MESSAGES if trigger is SyncTrigger.PREVIEW else PHASE_MESSAGES


def counted_percent(low: int, high: int, done: int, total: int) -> int:
    """The percent a phase spanning ``low``–``high`` reaches after ``done`` of ``total`` items."""
    if total <= 0:
        return low
    fraction = min(max(done / total, 0.0), 1.0)
    return low + int((high - low) * fraction)


class ProgressReporter:
    """Writes one run's events for the worker that claimed it; thread-safe."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        notifier: Notifier,
        run_id: str,
        worker_id: str,
        *,
        trigger: SyncTrigger = SyncTrigger.MANUAL,
        min_interval: float = 0.25,
        heartbeat_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        now: Clock = utc_now,
    ) -> None:
        self._sessions = sessions
        self._notifier = notifier
        self.run_id = run_id
        self.worker_id = worker_id
        self._ranges = phase_ranges(trigger)
        self._messages = phase_messages(trigger)
        self._min_interval = min_interval
        self._heartbeat_interval = heartbeat_interval
        self._clock = clock
        self._now = now
        self._lock = threading.Lock()
        self._phase = SyncPhase.QUEUED
        self._percent = 0
        self._floor = 0
        self._end = 0
        self._done = 0
        self._total = 0
        self._message = self._messages[SyncPhase.QUEUED]
        self._last_write = float("-inf")
        self._percent_moved = float("-inf")
        self._lost: RunLost | None = None
        self._cancelled = False
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    @property
    def phase(self) -> SyncPhase:
        """The phase the run is in."""
        return self._phase

    def phase_message(self, phase: SyncPhase) -> str:
        """What this run says in ``phase`` unless it has more to say."""
        return self._messages[phase]

    def start_heartbeat(self) -> None:
        """Start the ticker that keeps events flowing while the run works."""
        self._ticker = threading.Thread(
            target=contextvars.copy_context().run,
            args=(self._beat,),
            name=f"sync-heartbeat-{self.run_id[:8]}",
            daemon=True,
        )
        self._ticker.start()

    def stop_heartbeat(self) -> None:
        """Stop the ticker (before the terminal event)."""
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
            self._ticker = None

    def enter(self, phase: SyncPhase, *, total: int = 0, message: str | None = None) -> None:
        """Start a phase; always persisted."""
        with self._lock:
            previous = (self._phase, self._floor, self._end, self._done, self._total, self._message)
            self._phase = phase
            low, high = self._ranges[phase]
            self._floor = min(max(low, self._percent), high)
            self._end = high
            self._done = 0
            self._total = total
            self._message = message or self._messages[phase]
            try:
                self._write_locked()
            except RunCancelled:
                # A cancelled run never entered the phase (the commit, above all).
                self._phase, self._floor, self._end, self._done, self._total, self._message = previous
                raise

    def count_from_here(self, total: int = 0, *, message: str | None = None, share: float = 1.0) -> None:
        """Count ``total`` items from the percent the phase reached, through ``share`` of what is left.

        Always persisted. A share below 1 leaves the rest of the phase to the work counted after it.
        """
        with self._lock:
            high = self._ranges[self._phase][1]
            self._floor = min(self._percent, high)
            self._end = self._floor + int((high - self._floor) * share)
            self._done = 0
            self._total = total
            if message is not None:
                self._message = message
            self._write_locked()

    def advance(self, done: int, total: int | None = None, *, message: str | None = None) -> None:
        """Report items done in the current phase; persisted at most every ``min_interval``."""
        with self._lock:
            self._done = done
            if total is not None:
                self._total = total
            if message is not None:
                self._message = message
            if self._clock() - self._last_write >= self._min_interval:
                self._write_locked()

    def note(self, done: int, total: int) -> None:
        """Count items done without writing an event; the next heartbeat shows them.

        For work inside a sync-database transaction (the bookkeeping), where writing an event
        from the same thread could wait on that very transaction.
        """
        with self._lock:
            self._done, self._total = done, total

    def tell(self, message: str) -> None:
        """Show ``message`` in the current phase now (percent unchanged); the next phase replaces it."""
        with self._lock:
            self._message = message
            self._write_locked()

    def check(self) -> None:
        """The checkpoint: raise ``RunLost`` or ``RunCancelled`` when a write or the heartbeat found that.

        ``RunLost``: the run was taken from this worker; ``RunCancelled``: an administrator cancelled it.
        """
        if self._lost is not None:
            raise self._lost
        if self._cancelled:
            raise RunCancelled(self.run_id)

    def terminal_event(
        self,
        session: Session,
        state: SyncRunState,
        *,
        message: str,
        summary_json: str | None,
        error_message: str | None = None,
    ) -> int:
        """Write the last event in the caller's transaction (bookkeeping commits with it).

        Call ``announce`` after the transaction committed.
        """
        # A preview job that stored its plan has finished its work too.
        finished = state in (SyncRunState.SUCCEEDED, SyncRunState.PREVIEWED)
        phase = SyncPhase.DONE if finished else self._phase
        percent = 100 if finished else self._percent
        return repository.append_worker_event(
            session,
            self.run_id,
            EventValues(
                state=state,
                phase=phase,
                percent=percent,
                done=self._done,
                total=self._total,
                message=message,
                summary_json=summary_json,
                error_message=error_message,
            ),
            self._now(),
            worker_id=self.worker_id,
        )

    def announce(self) -> None:
        """Wake watchers after a committed write made outside the reporter."""
        self._notifier.notify(self.run_id)

    def _write_locked(self, *, checkpoint: bool = True) -> None:
        """Persist the current progress; a checkpoint raises once the run was cancelled."""
        if checkpoint:
            self.check()
        elif self._lost is not None:
            raise self._lost
        computed = self._counted_locked()
        percent = min(max(self._percent, computed), MAX_UNFINISHED_PERCENT)
        if percent != self._percent:
            self._percent_moved = self._clock()
        self._percent = percent
        values = EventValues(
            state=SyncRunState.RUNNING,
            phase=self._phase,
            percent=self._percent,
            done=self._done,
            total=self._total,
            message=self._message,
        )
        try:
            with self._sessions.begin() as session:
                repository.append_worker_event(session, self.run_id, values, self._now(), self.worker_id)
                cancelled = repository.cancel_requested(session, self.run_id)
        except RunLost as lost:
            self._lost = lost
            raise
        except RunCancelled:
            self._cancelled = True
            raise
        self._last_write = self._clock()
        self._notifier.notify(self.run_id)
        if cancelled:
            self._cancelled = True
            if checkpoint:
                raise RunCancelled(self.run_id)

    def _counted_locked(self) -> int:
        """The percent the current count reaches, counted from where it began."""
        return counted_percent(self._floor, self._end, self._done, self._total)

    def _nudge_locked(self) -> bool:
        """Move a phase that counts nothing right now (the roster's commit) one point.

        Watchers must see the percent move at least every couple of seconds; a phase whose work
        cannot be counted moves one point per heartbeat instead, through at most half the room of
        its count, so the work counted later (the sync's records) can still move the bar.
        True when it moved.
        """
        ceiling = self._floor + (self._end - self._floor) // 2
        if self._counted_locked() <= self._percent < ceiling:
            self._percent = max(self._percent, self._floor) + 1
            self._percent_moved = self._clock()
            return True
        return False

    def tick(self) -> bool:
        """One heartbeat: an event when a beat passed without one, moving a percent that stood still.

        False once the run is no longer this worker's to report on.
        """
        with self._lock:
            if self._lost is not None:
                return False
            due = self._clock() - self._heartbeat_interval * 0.9
            # Counted work that moves slower than the beat (a nudge ran ahead of the count)
            # still writes events; the percent moves a point once it stood still for a beat.
            nudged = self._percent_moved <= due and self._nudge_locked()
            if not nudged and self._last_write > due:
                return True
            try:
                self._write_locked(checkpoint=False)
            except (RunLost, RunCancelled):
                return False
            except Exception:
                # A database hiccup must not kill the ticker; the next tick retries.
                logger.warning("could not write a heartbeat event", exc_info=True)
            return True

    def _beat(self) -> None:
        while not self._stop.wait(self._heartbeat_interval / 4):
            if not self.tick():
                return
