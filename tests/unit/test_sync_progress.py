"""How the percent moves through phases whose work is partly uncounted, one heartbeat at a time.

The reporter writes real events to a real sync database; a hand-driven clock makes every heartbeat
a second apart, so the test says exactly which beat moved the bar.
"""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from sqlalchemy.orm import Session, sessionmaker

from services.sync.runs import repository
from services.sync.runs.notifier import InProcessNotifier
from services.sync.runs.progress import PHASE_RANGES, ProgressReporter
from services.sync.store.models import SyncRun
from services.sync.vocabulary import SyncPhase, SyncRunState, SyncTrigger

NOW = dt.datetime(2026, 12, 3, 8, 0, tzinfo=dt.UTC)
WORKER = "worker-1"


class Clock:
    """Seconds that pass only when the test says so."""

    def __init__(self) -> None:
        self.seconds = 1000.0

    def __call__(self) -> float:
        return self.seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def reporter(sync_sessions: sessionmaker[Session], clock: Clock) -> ProgressReporter:
    run_id = str(uuid.uuid4())
    with sync_sessions.begin() as session:
        session.add(
            SyncRun(
                id=run_id,
                district_id="d1",
                trigger=SyncTrigger.MANUAL,
                state=SyncRunState.QUEUED,
                phase=SyncPhase.QUEUED,
                percent=0,
                requested_by="admin",
                attempt=0,
                create_time=NOW,
                last_sequence=0,
            )
        )
    with sync_sessions.begin() as session:
        assert repository.claim(session, run_id, WORKER, NOW)
    return ProgressReporter(sync_sessions, InProcessNotifier(), run_id, WORKER, clock=clock, now=lambda: NOW)


def stored_percent(sessions: sessionmaker[Session], reporter: ProgressReporter) -> int:
    with sessions.begin() as session:
        run = session.get(SyncRun, reporter.run_id)
        assert run is not None
        return run.percent


def beats(reporter: ProgressReporter, clock: Clock, count: int) -> None:
    for _ in range(count):
        clock.seconds += 1.0
        reporter.tick()


def test_an_uncounted_commit_moves_a_point_a_beat_through_half_its_phase_then_holds(
    reporter: ProgressReporter, clock: Clock, sync_sessions: sessionmaker[Session]
) -> None:
    low, high = PHASE_RANGES[SyncPhase.COMMITTING]
    reporter.enter(SyncPhase.COMMITTING)
    seen = []
    for _ in range(high - low):
        beats(reporter, clock, 1)
        seen.append(stored_percent(sync_sessions, reporter))

    middle = low + (high - low) // 2
    assert seen[: middle - low] == list(range(low + 1, middle + 1))
    assert set(seen[middle - low :]) == {middle}


def test_the_records_counted_after_a_long_commit_move_the_bar_from_where_it_stands(
    reporter: ProgressReporter, clock: Clock, sync_sessions: sessionmaker[Session]
) -> None:
    _, high = PHASE_RANGES[SyncPhase.COMMITTING]
    reporter.enter(SyncPhase.COMMITTING)
    beats(reporter, clock, 60)
    held = stored_percent(sync_sessions, reporter)

    reporter.count_from_here(1000)
    percents = []
    for done in range(100, 1001, 100):
        clock.seconds += 1.0
        reporter.advance(done)
        percents.append(stored_percent(sync_sessions, reporter))

    assert percents[0] > held, "the first tenth of the records left the bar where the commit held it"
    assert percents == sorted(percents) and percents[-1] == high


def test_the_planner_counted_after_waiting_for_ews_roster_never_falls_behind_the_nudges(
    reporter: ProgressReporter, clock: Clock, sync_sessions: sessionmaker[Session]
) -> None:
    low, high = PHASE_RANGES[SyncPhase.PLANNING]
    reporter.enter(SyncPhase.PLANNING)
    beats(reporter, clock, 3)
    waited = stored_percent(sync_sessions, reporter)
    assert waited == low + 3

    reporter.count_from_here()
    points = high - waited
    percents = []
    for step in range(1, points + 1):
        reporter.note(-(-100_000 * step // points), 100_000)  # rounded up: a whole point each
        beats(reporter, clock, 1)
        percents.append(stored_percent(sync_sessions, reporter))

    # Each beat the planner decided a point's worth of people, and each beat the bar moved a point.
    assert percents == list(range(waited + 1, high + 1))


def test_planning_counts_ews_roster_through_half_its_range_then_the_planner_through_the_rest(
    reporter: ProgressReporter, clock: Clock, sync_sessions: sessionmaker[Session]
) -> None:
    low, high = PHASE_RANGES[SyncPhase.PLANNING]
    reporter.enter(SyncPhase.PLANNING)
    reporter.count_from_here(share=0.5)
    reporter.note(40_000, 100_000)
    beats(reporter, clock, 1)
    partway = stored_percent(sync_sessions, reporter)
    reporter.note(100_000, 100_000)
    beats(reporter, clock, 1)
    read = stored_percent(sync_sessions, reporter)

    reporter.count_from_here()
    reporter.note(50_000, 100_000)
    beats(reporter, clock, 1)
    planned_half = stored_percent(sync_sessions, reporter)

    middle = low + (high - low) // 2
    assert low < partway < read == middle
    assert planned_half == middle + (high - middle) // 2
