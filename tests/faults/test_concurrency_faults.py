"""Starts that race, a clock that jumps, a message delivered twice: each gives exactly one execution.

Two ``SyncRosters``, a ``ForceSyncNow`` and a scheduler tick land at one instant (the scheduler
process ticks every 0.2 s, and the district becomes due at the barrier): one run is created, every
caller gets it (or ABORTED), and it syncs. A clock jumping across a due time (and two more) gives
one AutoSync run. A run's Dramatiq message sent twice while the worker is frozen is executed once:
the second delivery finds the run claimed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import signal
import threading
import time
from collections.abc import Callable, Iterator

import dramatiq
import pytest
from dramatiq.brokers.redis import RedisBroker
from ew.client.errors import AbortedError
from ew.sync.v1 import sync_pb2
from sqlalchemy import Engine, create_engine, update

from services.common.db import normalise_url
from services.common.processes import first_line, wait_for_log
from services.sync.autosync.scheduler import tick
from services.sync.store.models import AutoSyncSettings
from tests.faults.conftest import Launch
from tests.faults.scenario import DISTRICT, SYNC_ENV, connect_and_sync, prepare, settle, watch_to_end
from tests.support.autosync import WallClock, scheduler_app
from tests.support.deployment import Deployment
from tests.support.roster_snapshot import SYNCED

pytestmark = pytest.mark.timeout(150)

NOT_QUEUED = "is not queued any more; nothing to do"


@pytest.fixture(scope="module")
def deployment(launch: Launch) -> Deployment:
    """One synced district with AutoSync on (monthly; its next run is weeks away)."""
    running = connect_and_sync(launch(sync_env=SYNC_ENV | {"EW_SYNC_AUTOSYNC_SPREAD": "PT0S"}, **DISTRICT))
    running.sync.set_autosync(
        sync_pb2.AutoSync(
            name=f"districts/{running.district_id}/autoSync",
            enabled=True,
            cadence=sync_pb2.AUTO_SYNC_CADENCE_MONTHLY,
            day=1,
            hour=3,
            time_zone="America/New_York",
        )
    )
    return running


@pytest.fixture(scope="module")
def sync_url(deployment: Deployment) -> str:
    return deployment.group.environment["EW_SYNC_DATABASE_URL"]


@pytest.fixture(scope="module")
def sync_db(sync_url: str) -> Iterator[Engine]:
    engine = create_engine(normalise_url(sync_url))
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def broker(deployment: Deployment) -> Iterator[RedisBroker]:
    """A sender on the deployment's Redis namespace: what the sync service's broker sends, we can send."""
    environment = deployment.group.environment
    sender = RedisBroker(url=environment["EW_BROKER_URL"], namespace=environment["EW_BROKER_NAMESPACE"])  # type: ignore[no-untyped-call]
    yield sender
    sender.close()


def send_run(broker: RedisBroker, run_id: str) -> None:
    """The message ``services.sync.runs.tasks.enqueue_run`` sends for ``run_id``."""
    broker.enqueue(
        dramatiq.Message(queue_name="sync", actor_name="run_sync", args=(run_id,), kwargs={}, options={})
    )


def run_names(deployment: Deployment) -> list[str]:
    return [run.name for run in deployment.sync.list_runs(deployment.district_id, page_size=100).runs]


def next_run_time(engine: Engine, district_id: str) -> dt.datetime:
    with engine.connect() as connection:
        found = connection.scalar(
            AutoSyncSettings.__table__.select()
            .with_only_columns(AutoSyncSettings.next_run_time)
            .where(AutoSyncSettings.district_id == district_id)
        )
    assert isinstance(found, dt.datetime)
    return found


def set_next_run_time(engine: Engine, district_id: str, when: dt.datetime) -> None:
    with engine.begin() as connection:
        connection.execute(
            update(AutoSyncSettings)
            .where(AutoSyncSettings.district_id == district_id)
            .values(next_run_time=when)
        )


def test_two_syncrosters_a_force_sync_and_a_scheduler_tick_at_once_make_one_run(
    deployment: Deployment, sync_db: Engine, record: Callable[[str, float, str, str], None]
) -> None:
    before = prepare(deployment)
    runs_before = set(run_names(deployment))
    scheduler = deployment.group.start(
        "scheduler",
        "services.sync.scheduler",
        env={"EW_SYNC_SCHEDULER_INTERVAL": "PT0.2S"},
        capture_stdout=True,
    )
    assert "AutoSync scheduler started" in first_line(scheduler)
    barrier = threading.Barrier(4)
    got: list[str] = []
    refused: list[Exception] = []

    def sync_rosters() -> None:
        barrier.wait()
        try:
            events = deployment.sync.sync_rosters(deployment.district_id)
            got.append(next(events).run)
            events.close()
        except AbortedError as error:
            refused.append(error)

    def force_sync() -> None:
        barrier.wait()
        try:
            got.append(deployment.sync.force_sync_now(deployment.district_id).run.name)
        except AbortedError as error:
            refused.append(error)

    def make_due() -> None:
        barrier.wait()
        set_next_run_time(sync_db, deployment.district_id, dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))

    started = time.monotonic()
    threads = [threading.Thread(target=work) for work in (sync_rosters, sync_rosters, force_sync, make_due)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    # The scheduler's next tick took the due district: started its run or passed it over as busy.
    deadline = time.monotonic() + 30
    while next_run_time(sync_db, deployment.district_id) <= dt.datetime.now(dt.UTC):
        assert time.monotonic() < deadline and scheduler.running, scheduler.log_tail()
        time.sleep(0.05)  # polling pace only: the moved due time is what is waited for
    scheduler.terminate()

    new_runs = set(run_names(deployment)) - runs_before
    assert len(new_runs) == 1, new_runs
    (run_name,) = new_runs
    assert got and set(got) == {run_name}, (got, refused)
    run = watch_to_end(deployment, run_name, 0, started)
    assert settle(deployment, run, before, record) == SYNCED


def test_a_clock_jumping_across_due_times_makes_one_autosync_run(
    deployment: Deployment,
    sync_db: Engine,
    sync_url: str,
    broker: RedisBroker,
    record: Callable[[str, float, str, str], None],
) -> None:
    before = prepare(deployment)
    clock = WallClock()
    set_next_run_time(sync_db, deployment.district_id, clock() + dt.timedelta(hours=1))
    sent: list[str] = []

    def enqueue(run_id: str) -> None:
        sent.append(run_id)
        send_run(broker, run_id)

    with scheduler_app(sync_url, clock, autosync_spread=dt.timedelta(0)) as app:
        assert asyncio.run(tick(app, enqueue)).started == []  # not due yet
        started = time.monotonic()
        clock.advance(dt.timedelta(days=95))  # across this due time and two more monthly ones
        first = asyncio.run(tick(app, enqueue)).started
        again = asyncio.run(tick(app, enqueue)).started

    assert len(first) == 1 and again == [] and sent == first
    assert next_run_time(sync_db, deployment.district_id) > clock()
    run = watch_to_end(deployment, f"districts/{deployment.district_id}/syncRuns/{first[0]}", 0, started)
    assert run.event.state == sync_pb2.SYNC_RUN_STATE_SUCCEEDED, run.event.message
    assert settle(deployment, run, before, record) == SYNCED


def test_a_run_message_delivered_twice_executes_once(
    deployment: Deployment, broker: RedisBroker, record: Callable[[str, float, str, str], None]
) -> None:
    before = prepare(deployment)
    worker = deployment.children["worker"]
    worker.process.send_signal(signal.SIGSTOP)
    try:
        started = time.monotonic()
        events = deployment.sync.sync_rosters(deployment.district_id)
        first = next(events)
        events.close()
        assert first.state == sync_pb2.SYNC_RUN_STATE_QUEUED
        send_run(broker, first.run.rpartition("/")[2])
    finally:
        worker.process.send_signal(signal.SIGCONT)

    run = watch_to_end(deployment, first.run, 0, started)
    wait_for_log(worker, NOT_QUEUED)
    assert worker.log().count(NOT_QUEUED) == 1
    every = list(deployment.sync.watch_run(first.run))
    assert [event.phase for event in every].count(sync_pb2.SYNC_PHASE_CONNECTING) == 1
    assert settle(deployment, run, before, record) == SYNCED
