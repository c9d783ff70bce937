"""The infrastructure failing mid-run: Redis and PostgreSQL restarted, the webhook receiver down.

Redis and PostgreSQL are the test's own (a redis-server and an initdb cluster on spare ports), never
the machine's. Each restart happens while the run reads ClassLink's teachers (slowed pages keep it
there); the run must still end, with the roster before or fully synced, and the next sync converge.
A webhook receiver that is down never holds a run back, and gets its events once it is back.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest
from ew.sync.v1 import sync_pb2

from services.common.processes import wait_for_log
from tests.faults.conftest import Launch, OwnRedis
from tests.faults.scenario import DISTRICT, SYNC_ENV, connect_and_sync, ended, follow, prepare, settle
from tests.support.postgres import OwnPostgres, own_postgres
from tests.support.roster_snapshot import SYNCED
from tests.support.webhook_receiver import SECRET, Receiver, running_receiver

pytestmark = pytest.mark.timeout(150)

SLOW_TEACHERS = [{"kind": "slow", "delay": 0.5, "times": -1, "path": "teachers"}]
SUCCEEDED_EVENT = "sync_run.succeeded"


class RestartWhileReadingTeachers:
    """An ``on_event`` that restarts something once, when the run starts reading teachers."""

    def __init__(self, restart: Callable[[], None]) -> None:
        self.restart = restart
        self.done_at: int | None = None

    def __call__(self, event: sync_pb2.SyncEvent) -> None:
        if self.done_at is None and event.phase == sync_pb2.SYNC_PHASE_READING_TEACHERS:
            self.restart()
            self.done_at = event.sequence

    def happened_mid_run(self, run_end: sync_pb2.SyncEvent) -> bool:
        """The restart happened, before the run's last event."""
        return self.done_at is not None and self.done_at < run_end.sequence


def test_redis_restarted_mid_run(
    launch: Launch, own_redis: OwnRedis, record: Callable[[str, float, str, str], None]
) -> None:
    deployment = connect_and_sync(launch(broker_url=own_redis.url, sync_env=SYNC_ENV, **DISTRICT))
    before = prepare(deployment)
    deployment.sandbox.set_faults(SLOW_TEACHERS)

    def restart() -> None:
        own_redis.stop()
        own_redis.start()

    restarter = RestartWhileReadingTeachers(restart)
    events, started = follow(deployment, restarter)

    run = ended(deployment, events, started)
    assert restarter.happened_mid_run(run.event)
    settle(deployment, run, before, record)


@pytest.fixture(scope="session")
def cluster() -> Iterator[OwnPostgres]:
    """A cluster of the test's own; it outlives the module's deployments, which stop first."""
    with own_postgres() as running:
        yield running


def test_postgresql_restarted_mid_run(
    launch: Launch, cluster: OwnPostgres, record: Callable[[str, float, str, str], None]
) -> None:
    deployment = connect_and_sync(
        launch(
            roster_url=cluster.create_database("roster"),
            sync_url=cluster.create_database("sync"),
            sync_env=SYNC_ENV,
            **DISTRICT,
        )
    )
    before = prepare(deployment)
    deployment.sandbox.set_faults(SLOW_TEACHERS)

    def restart() -> None:
        cluster.stop()
        cluster.start()

    restarter = RestartWhileReadingTeachers(restart)
    events, started = follow(deployment, restarter)

    run = ended(deployment, events, started)
    assert restarter.happened_mid_run(run.event)
    settle(deployment, run, before, record)


@pytest.fixture(scope="module")
def receiver_down() -> Iterator[tuple[Receiver, threading.Event]]:
    """A receiver that answers 503 while its event is set (down behind its load balancer)."""
    down = threading.Event()
    with running_receiver(lambda _: 503 if down.is_set() else 200) as receiver:
        yield receiver, down


def succeeded_events(events: list[dict[str, object]]) -> list[object]:
    return [event["id"] for event in events if event["type"] == SUCCEEDED_EVENT]


def test_the_webhook_receiver_down_holds_no_run_back_and_gets_its_events_later(
    launch: Launch,
    receiver_down: tuple[Receiver, threading.Event],
    record: Callable[[str, float, str, str], None],
) -> None:
    receiver, down = receiver_down
    webhooks = {
        "EW_WEBHOOK_URL": receiver.url,
        "EW_WEBHOOK_SECRET": SECRET,
        "EW_WEBHOOK_BACKOFF_BASE_SECONDS": "0.2",
        "EW_WEBHOOK_BACKOFF_MAX_SECONDS": "0.5",
        "EW_WEBHOOK_POLL_INTERVAL_SECONDS": "0.1",
    }
    deployment = launch(sync_env=SYNC_ENV | webhooks, **DISTRICT)
    sender = deployment.group.start("webhooks", "services.sync.webhooks")
    wait_for_log(sender, "webhook sender started")
    connect_and_sync(deployment)
    assert receiver.wait_for(lambda seen: len(succeeded_events(seen.acknowledged)) == 1)
    before = prepare(deployment)
    down.set()

    events, started = follow(deployment)

    run = ended(deployment, events, started)
    assert run.event.state == sync_pb2.SYNC_RUN_STATE_SUCCEEDED, run.event.message
    # Tried and refused while down, then delivered once it is back: at least once, nothing lost.
    assert receiver.wait_for(lambda seen: len(succeeded_events(seen.requests)) >= 2)
    assert len(succeeded_events(receiver.acknowledged)) == 1
    down.clear()
    assert receiver.wait_for(lambda seen: len(set(succeeded_events(seen.acknowledged))) == 2)
    assert settle(deployment, run, before, record) == SYNCED
