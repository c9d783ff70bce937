"""Processes dying mid-run: SIGKILL during staging and during the commit, SIGSTOP past a deadline.

The worker, the roster service and the sync service are each killed at both points; the roster
service is also frozen (SIGSTOP) for longer than the sync service's deadline on its calls.

The moment is pinned, not timed: the test holds a PostgreSQL table lock in the roster's database
(``staged_batches`` for staging, ``teachers`` for the commit), waits until the roster's transaction
is blocked on it and the run reports the matching phase, and only then sends the signal. The lock
is released after the signal, so the blocked transaction either finds its client gone (rolled back)
or, when the roster service is alive, completes as it would have.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from ew.sync.v1 import sync_pb2
from sqlalchemy import Connection, Engine, create_engine, text

from services.common.db import normalise_url
from services.sync.runs.executor import ROSTER_UNAVAILABLE
from services.sync.runs.recovery import WORKER_DIED
from tests.faults.conftest import Launch
from tests.faults.scenario import (
    DISTRICT,
    STAGING_PHASES,
    SYNC_ENV,
    connect_and_sync,
    prepare,
    settle,
    watch_to_end,
)
from tests.support.deployment import Deployment
from tests.support.pg_locks import blocked_on_a_lock
from tests.support.roster_snapshot import BEFORE, SYNCED

pytestmark = pytest.mark.timeout(150)

STAGING, COMMIT = "staging", "commit"
HELD_TABLE = {STAGING: "staged_batches", COMMIT: "teachers"}
# One roster call may take 3 s: a frozen roster service fails a run within seconds.
ROSTER_DEADLINE = {"EW_SYNC_ROSTER_DEADLINE": "3"}


@dataclass
class Pinned:
    """A run held at a point of its change set by a table lock in the roster's database."""

    deployment: Deployment
    run: str
    started: float
    after_sequence: int


@pytest.fixture(scope="module")
def deployment(launch: Launch) -> Deployment:
    """One synced district; each case leaves every process running again for the next."""
    return connect_and_sync(launch(sync_env=SYNC_ENV | ROSTER_DEADLINE, **DISTRICT))


@pytest.fixture(scope="module")
def roster_db(deployment: Deployment) -> Iterator[Engine]:
    """The roster service's database, as the test's own connection pool."""
    url = deployment.group.environment["EW_ROSTER_DATABASE_URL"]
    engine = create_engine(normalise_url(url))
    yield engine
    engine.dispose()


@contextmanager
def holding(engine: Engine, table: str) -> Iterator[Connection]:
    """Lock ``table`` against writes (reads go on) until the block ends."""
    with engine.connect() as connection:
        connection.execute(text(f"LOCK TABLE {table} IN EXCLUSIVE MODE"))
        try:
            yield connection
        finally:
            connection.rollback()


def ended_already(deployment: Deployment, run: str) -> Callable[[], bool]:
    def check() -> bool:
        return deployment.sync.get_run(run).state not in (
            sync_pb2.SYNC_RUN_STATE_QUEUED,
            sync_pb2.SYNC_RUN_STATE_RUNNING,
        )

    return check


def pin(deployment: Deployment, engine: Engine, point: str, act: Callable[[], None]) -> Pinned:
    """Start a run, hold it at ``point``, call ``act`` (the fault), then let the roster go on."""
    with holding(engine, HELD_TABLE[point]):
        started = time.monotonic()
        events = deployment.sync.sync_rosters(deployment.district_id)
        first = next(events)
        run = first.run
        events.close()
        assert blocked_on_a_lock(engine, ended_already(deployment, run)), "the run ended without reaching it"
        phase = deployment.sync.get_run(run).phase
        if point == STAGING:
            assert phase in STAGING_PHASES, sync_pb2.SyncPhase.Name(phase)
        else:
            assert phase == sync_pb2.SYNC_PHASE_COMMITTING, sync_pb2.SyncPhase.Name(phase)
        act()
    return Pinned(deployment, run, started, first.sequence)


CASES = [
    pytest.param("worker", STAGING, id="worker_during_staging"),
    pytest.param("worker", COMMIT, id="worker_during_commit"),
    pytest.param("roster", STAGING, id="roster_during_staging"),
    pytest.param("roster", COMMIT, id="roster_during_commit"),
    pytest.param("sync", STAGING, id="sync_during_staging"),
    pytest.param("sync", COMMIT, id="sync_during_commit"),
]


@pytest.mark.parametrize(("process", "point"), CASES)
def test_sigkill(
    deployment: Deployment,
    roster_db: Engine,
    record: Callable[[str, float, str, str], None],
    process: str,
    point: str,
) -> None:
    before = prepare(deployment)
    victim = deployment.children[process]

    pinned = pin(deployment, roster_db, point, victim.kill)
    {"worker": deployment.start_worker, "sync": deployment.start_sync, "roster": deployment.start_roster}[
        process
    ]()

    run = watch_to_end(deployment, pinned.run, pinned.after_sequence, pinned.started)
    found = settle(deployment, run, before, record)
    # Only a commit the roster service finished can land; a dead worker's run is failed by recovery.
    if process == "worker" and point == STAGING:
        assert (found, run.event.message) == (BEFORE, WORKER_DIED)
    if process == "roster":
        assert found == BEFORE
    if process == "sync":
        assert found == SYNCED


def test_sigstop_of_the_roster_past_its_deadline_fails_the_run_and_changes_nothing(
    deployment: Deployment, roster_db: Engine, record: Callable[[str, float, str, str], None]
) -> None:
    before = prepare(deployment)
    roster = deployment.children["roster"]

    pinned = pin(deployment, roster_db, STAGING, lambda: roster.process.send_signal(signal.SIGSTOP))
    try:
        run = watch_to_end(deployment, pinned.run, pinned.after_sequence, pinned.started)
    finally:
        roster.process.send_signal(signal.SIGCONT)

    assert run.event.state == sync_pb2.SYNC_RUN_STATE_FAILED
    assert run.event.message == ROSTER_UNAVAILABLE
    assert settle(deployment, run, before, record) == BEFORE
