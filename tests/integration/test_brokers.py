"""Both production brokers against this machine's servers, each with a separate worker process.

A whole sync on RabbitMQ, a preview job on Redis, and the dead-letter path on RabbitMQ and on Redis.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Callable

import dramatiq
import pytest
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.brokers.redis import RedisBroker
from ew.sync.v1 import sync_pb2
from sqlalchemy.orm import sessionmaker

from services.common.db import make_engine
from services.sync.runs import repository
from services.sync.vocabulary import SyncTrigger
from tests.support.deployment import Deployment

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

RABBITMQ_URL = os.environ.get("EW_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
REDIS_URL = os.environ.get("EW_TEST_BROKER_URL", "redis://127.0.0.1:6379/0")
BROKERS = [pytest.param(RABBITMQ_URL, id="rabbitmq"), pytest.param(REDIS_URL, id="redis")]


def test_a_whole_sync_runs_through_rabbitmq_on_a_separate_worker(deploy: Callable[..., Deployment]) -> None:
    deployment = deploy(broker_url=RABBITMQ_URL, teachers=40, schools=3)
    deployment.connect()

    events = deployment.sync.sync_rosters(deployment.district_id)
    seen = list(events)

    assert seen[-1].state == sync_pb2.SYNC_RUN_STATE_SUCCEEDED, seen[-1].message
    assert events.run is not None
    # The separate worker executed it, not the sync service.
    assert f"run {events.run.run_id}: committed" in deployment.children["worker"].log()
    assert f"run {events.run.run_id}: committed" not in deployment.children["sync"].log()
    teachers = list(deployment.roster.list_teachers(deployment.district_id))
    assert len(teachers) == seen[-1].summary.teachers_added > 0
    # Progress reached the watcher while the run went on (no pub/sub on RabbitMQ: the store is polled).
    assert len({event.phase for event in seen}) >= 5


def test_a_preview_job_runs_through_redis_on_a_separate_worker(deploy: Callable[..., Deployment]) -> None:
    deployment = deploy(broker_url=REDIS_URL, teachers=20, schools=2)
    deployment.connect()

    job = deployment.sync.start_sync_preview(deployment.district_id).run
    seen = list(deployment.sync.watch_run(job.name))

    assert seen[-1].state == sync_pb2.SYNC_RUN_STATE_PREVIEWED, seen[-1].message
    assert f"preview job {job.run_id}: plan of" in deployment.children["worker"].log()
    assert f"preview job {job.run_id}" not in deployment.children["sync"].log()
    page = deployment.sync.preview_sync(deployment.district_id, sync_run=job.name)
    assert page.summary.teachers_added == seen[-1].summary.teachers_added > 0
    assert list(deployment.roster.list_teachers(deployment.district_id)) == []


def _queued_run(deployment: Deployment) -> str:
    """A QUEUED run whose message was never sent, in the deployment's sync database."""
    engine = make_engine(deployment.group.environment["EW_SYNC_DATABASE_URL"])
    try:
        with sessionmaker(engine).begin() as session:
            run_id = str(uuid.uuid4())
            repository.insert_run(
                session,
                run_id=run_id,
                district_id=deployment.district_id,
                trigger=SyncTrigger.MANUAL,
                requested_by="integration-test",
                approved_run_id=None,
                now=dt.datetime.now(dt.UTC),
                message="Waiting for a worker to start the sync",
            )
    finally:
        engine.dispose()
    return run_id


def _send_poisoned(broker_url: str, namespace: str, run_id: str) -> None:
    """Send the worker's queue a run_sync message with an argument too many: every attempt raises."""
    broker: dramatiq.Broker
    if broker_url.startswith("amqp"):
        broker = RabbitmqBroker(url=broker_url)
        queue = f"{namespace}.sync"
    else:
        broker = RedisBroker(url=broker_url, namespace=namespace)  # type: ignore[no-untyped-call]
        queue = "sync"
    try:
        broker.enqueue(
            dramatiq.Message(
                queue_name=queue,
                actor_name="run_sync",
                args=(run_id, "unexpected"),
                kwargs={},
                options={"max_retries": 2, "min_backoff": 10, "max_backoff": 50},
            )
        )
    finally:
        broker.close()


@pytest.mark.parametrize("broker_url", BROKERS)
def test_a_poisoned_message_exhausts_its_retries_and_its_run_ends_failed(
    deploy: Callable[..., Deployment], broker_url: str
) -> None:
    deployment = deploy(broker_url=broker_url, teachers=10, schools=2)
    deployment.connect()
    run_id = _queued_run(deployment)
    name = f"districts/{deployment.district_id}/syncRuns/{run_id}"

    _send_poisoned(broker_url, deployment.group.environment["EW_BROKER_NAMESPACE"], run_id)

    events = list(deployment.sync.watch_run(name))
    assert events[-1].state == sync_pb2.SYNC_RUN_STATE_FAILED
    failed = deployment.sync.get_run(name)
    assert "The job queue gave up on this sync (TypeError:" in failed.error_message
    assert f"run {run_id} failed: its message is dead" in deployment.children["worker"].log()
    assert list(deployment.roster.list_teachers(deployment.district_id)) == []
    # The district is free: the next sync goes through the same worker.
    assert list(deployment.sync.sync_rosters(deployment.district_id))[-1].state == (
        sync_pb2.SYNC_RUN_STATE_SUCCEEDED
    )
