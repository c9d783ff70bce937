"""The webhook sender against a real local HTTP receiver that checks every signature.

The retry schedule runs on an injected clock that the test moves to each next attempt, so an hour
of failures takes no wall time; the restart test runs the sender as a real process and kills it.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from ew.sync.v1 import sync_pb2
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from services.common.db import make_engine
from services.sync.autosync.scheduler import tick
from services.sync.migrate import upgrade
from services.sync.runs.tasks import enqueue_run
from services.sync.store import outbox
from services.sync.store.models import OutboxEvent
from services.sync.vocabulary import WebhookEventType
from services.sync.webhooks.sender import WebhookSender
from services.sync.webhooks.settings import WebhookSettings
from tests.support.autosync import WallClock
from tests.support.pg_locks import blocked_on_a_lock, postgresql_only
from tests.support.roster import Clock
from tests.support.sandbox import REPO_ROOT
from tests.support.sync_stack import sync_stack
from tests.support.webhook_receiver import SECRET, Receiver, running_receiver

pytestmark = pytest.mark.timeout(120)

DISTRICTS = {"d-a": 3, "d-b": 2}
"""Events enqueued per district, in order."""


def enqueue_events(sessions: sessionmaker[Session], now: dt.datetime) -> dict[str, list[str]]:
    """Enqueue each district's events interleaved across districts; returns their ids per district."""
    ids: dict[str, list[str]] = {district: [] for district in DISTRICTS}
    with sessions.begin() as session:
        for number in range(max(DISTRICTS.values())):
            for district, count in DISTRICTS.items():
                if number < count:
                    ids[district].append(
                        outbox.enqueue(
                            session,
                            district,
                            WebhookEventType.SYNC_RUN_SUCCEEDED,
                            {"number": number},
                            now=now,
                        )
                    )
    return ids


def delivered_in_order(receiver: Receiver, ids: dict[str, list[str]]) -> None:
    """Every event acknowledged exactly once, each district's in the order they were enqueued."""
    acknowledged = receiver.acknowledged_ids()
    assert collections.Counter(acknowledged) == collections.Counter(i for d in ids.values() for i in d)
    for district, district_ids in ids.items():
        assert [i for i in acknowledged if i in district_ids] == district_ids, district


def settings(receiver: Receiver, **overrides: Any) -> WebhookSettings:
    values: dict[str, Any] = {"url": receiver.url, "secret": SECRET, "backoff_base_seconds": 5.0}
    return WebhookSettings(**(values | overrides))


async def deliver_until_done(sender: WebhookSender, sessions: sessionmaker[Session], clock: Clock) -> None:
    """Run delivery passes; when nothing is due, move the clock to the next attempt's time."""
    for _ in range(500):
        if await sender.deliver_due():
            continue
        with sessions() as session:
            undelivered = select(OutboxEvent.next_attempt_time).where(OutboxEvent.delivered_time.is_(None))
            if session.scalar(undelivered) is None:
                await sender.close()
                return
            # A district's later events wait behind its head, whose retry is the next thing due.
            due = session.scalar(
                undelivered.where(OutboxEvent.next_attempt_time > clock()).order_by(
                    OutboxEvent.next_attempt_time
                )
            )
        assert due is not None, "undelivered events, but none will ever be due"
        clock.advance(due - clock())
    raise AssertionError("the outbox never emptied")


def test_a_receiver_failing_three_times_gets_every_event_once_in_order_with_doubling_waits(
    sync_engine: Engine,
) -> None:
    clock = Clock()
    start = clock()
    sessions = sessionmaker(sync_engine, expire_on_commit=False)
    with running_receiver(lambda n: 500 if n <= 3 else 200, now=lambda: clock().timestamp()) as receiver:
        ids = enqueue_events(sessions, clock())
        sender = WebhookSender(sessions, settings(receiver), clock=clock)

        asyncio.run(deliver_until_done(sender, sessions, clock))

    delivered_in_order(receiver, ids)
    assert receiver.bad_signatures == 0
    assert len(receiver.requests) == sum(DISTRICTS.values()) + 3
    # The first events of both districts failed together; one failed again after 5 s and once more
    # (or the other once) after 10 s: waits of 5 s, then 10 s.
    first = [t - receiver.request_times[0] for t in receiver.request_times[:4]]
    assert first == [0, 0, 5, 5]
    assert receiver.request_times[4] - receiver.request_times[0] in (5, 15)
    bodies = {event["id"]: event for event in receiver.acknowledged}
    event = bodies[ids["d-a"][0]]
    assert event["type"] == "sync_run.succeeded" and event["district_id"] == "d-a"
    assert event["data"] == {"number": 0} and dt.datetime.fromisoformat(event["time"]) == start


def test_a_receiver_down_for_an_hour_still_gets_every_event_in_order(sync_engine: Engine) -> None:
    clock = Clock()
    back_at = clock() + dt.timedelta(hours=1)
    sessions = sessionmaker(sync_engine, expire_on_commit=False)
    answer: Callable[[int], int] = lambda n: 200 if clock() >= back_at else 503  # noqa: E731
    with running_receiver(answer, now=lambda: clock().timestamp()) as receiver:
        ids = enqueue_events(sessions, clock())
        sender = WebhookSender(sessions, settings(receiver, backoff_max_seconds=300), clock=clock)

        asyncio.run(deliver_until_done(sender, sessions, clock))

    delivered_in_order(receiver, ids)
    times = sorted(set(receiver.request_times))
    gaps = [later - earlier for earlier, later in zip(times, times[1:], strict=False)]
    assert max(gaps) <= 300
    # Waits double from 5 s up to the 300 s cap: about 17 attempts in the hour, not thousands.
    assert 15 <= len([t for t in times if t < back_at.timestamp()]) <= 20
    assert min(t for t in times if t >= back_at.timestamp()) - back_at.timestamp() <= 300


@contextmanager
def sender_process(database_url: str, receiver: Receiver) -> Iterator[subprocess.Popen[str]]:
    environment = dict(
        os.environ,
        EW_SYNC_DATABASE_URL=database_url,
        EW_WEBHOOK_URL=receiver.url,
        EW_WEBHOOK_SECRET=SECRET,
        EW_WEBHOOK_BACKOFF_BASE_SECONDS="0.05",
        EW_WEBHOOK_BACKOFF_MAX_SECONDS="0.2",
        EW_WEBHOOK_POLL_INTERVAL_SECONDS="0.05",
        EW_WEBHOOK_TIMEOUT_SECONDS="1",
        EW_WEBHOOK_LEASE_SECONDS="1.5",
        PYTHONPATH=os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "clients" / "src")]),
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "services.sync.webhooks"],
        cwd=REPO_ROOT,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)
        if process.stderr is not None:
            process.stderr.close()


def test_a_sender_killed_mid_retry_and_started_again_loses_nothing(
    database_url: Callable[[str], str],
) -> None:
    url = database_url("sync")
    engine = make_engine(url)
    upgrade(engine)
    sessions = sessionmaker(engine, expire_on_commit=False)
    try:
        # Every delivery fails until the test opens the gate: the kill is surely mid-retry.
        gate = threading.Event()
        with running_receiver(lambda n: 200 if gate.is_set() else 500) as receiver:
            ids = enqueue_events(sessions, dt.datetime.now(dt.UTC))
            with sender_process(url, receiver) as first:
                assert receiver.wait_for(lambda r: len(r.requests) >= 3)
                first.send_signal(signal.SIGKILL)
                first.wait(timeout=30)
            assert receiver.acknowledged == []
            with sessions() as session:
                left = session.scalars(select(OutboxEvent).where(OutboxEvent.delivered_time.is_(None))).all()
                assert len(left) == sum(DISTRICTS.values())
                assert max(event.attempts for event in left) >= 1
            gate.set()
            with sender_process(url, receiver) as second:
                assert receiver.wait_for(lambda r: len(r.acknowledged) >= sum(DISTRICTS.values()))
                second.send_signal(signal.SIGTERM)
                assert second.wait(timeout=30) == 0
        delivered_in_order(receiver, ids)
        assert receiver.bad_signatures == 0
    finally:
        engine.dispose()


def test_autosync_switches_and_an_automatic_run_that_needs_review_reach_the_webhook_in_order(
    database_url: Callable[[str], str],
) -> None:
    clock = WallClock()
    with running_receiver(now=lambda: clock().timestamp()) as receiver:
        webhooks = settings(receiver, backoff_base_seconds=0.05, poll_interval_seconds=0.05)
        with sync_stack(
            database_url("roster"),
            database_url("sync"),
            settings={"scheduler_embedded": False, "autosync_spread": dt.timedelta(0)},
            clock=clock,
            schools=3,
            teachers=30,
            webhooks=webhooks,
        ) as stack:
            first = list(stack.client.sync_rosters(stack.district_id))[-1]
            assert first.state == sync_pb2.SYNC_RUN_STATE_SUCCEEDED
            autosync = stack.client.set_autosync(
                sync_pb2.AutoSync(
                    name=f"districts/{stack.district_id}/autoSync",
                    enabled=True,
                    cadence=sync_pb2.AUTO_SYNC_CADENCE_DAILY,
                    time_zone="UTC",
                )
            )
            teachers = [u for u in stack.sandbox.roster()["users"] if u["role"] == "teacher"]
            stack.sandbox.mutate([{"op": "remove_user", "sourcedId": u["sourcedId"]} for u in teachers[:10]])
            before = stack.roster.snapshot()
            # Each delivery is signed with the sender's clock: let it land before the clock moves on.
            assert receiver.wait_for(lambda r: len(r.acknowledged) == 2)

            clock.advance(autosync.next_run_time.ToDatetime(dt.UTC) - clock())
            (run_id,) = asyncio.run(tick(stack.app, enqueue_run)).started
            name = f"districts/{stack.district_id}/syncRuns/{run_id}"
            assert list(stack.client.watch_run(name))[-1].state == sync_pb2.SYNC_RUN_STATE_NEEDS_REVIEW
            assert receiver.wait_for(lambda r: len(r.acknowledged) == 3)
            clock.advance(dt.timedelta(days=1, minutes=1))
            assert asyncio.run(tick(stack.app, enqueue_run)).started == []
            autosync.enabled = False
            stack.client.set_autosync(autosync)
            assert receiver.wait_for(lambda r: len(r.acknowledged) == 4)

            assert stack.roster.snapshot() == before
            assert len(stack.client.list_runs(stack.district_id).runs) == 2
            reviewed = stack.client.get_run(name).summary
    assert receiver.bad_signatures == 0
    succeeded, enabled, review, disabled = receiver.acknowledged
    assert succeeded["type"] == "sync_run.succeeded"
    assert succeeded["data"]["trigger"] == "MANUAL" and succeeded["data"]["summary"]["teachers_added"] == str(
        first.summary.teachers_added
    )
    assert enabled["type"] == "autosync.enabled" and enabled["data"]["enabled"] is True
    assert review["type"] == "sync_run.needs_review" and review["district_id"] == stack.district_id
    assert review["data"]["run"] == name and review["data"]["trigger"] == "AUTO"
    assert review["data"]["state"] == "NEEDS_REVIEW" and review["data"]["summary"][
        "teachers_archived"
    ] == str(reviewed.teachers_archived)
    assert disabled["type"] == "autosync.disabled" and disabled["data"]["enabled"] is False


def test_several_senders_deliver_each_event_once_and_each_district_in_order(sync_engine: Engine) -> None:
    sessions = sessionmaker(sync_engine, expire_on_commit=False)
    total = sum(DISTRICTS.values())

    async def three_senders(receiver: Receiver) -> None:
        stop = asyncio.Event()
        webhook_settings = settings(receiver, poll_interval_seconds=0.01)
        senders = [WebhookSender(sessions, webhook_settings) for _ in range(3)]
        running = [asyncio.create_task(sender.run(stop)) for sender in senders]
        # Wait (off the loop) until every event was acknowledged, then stop the senders.
        assert await asyncio.to_thread(receiver.wait_for, lambda r: len(r.acknowledged) >= total)
        stop.set()
        await asyncio.gather(*running)
        await asyncio.gather(*(sender.close() for sender in senders))

    with running_receiver() as receiver:
        ids = enqueue_events(sessions, dt.datetime.now(dt.UTC))
        asyncio.run(three_senders(receiver))

    delivered_in_order(receiver, ids)
    assert len(receiver.requests) == total


@postgresql_only
def test_a_later_event_of_a_district_cannot_commit_before_an_earlier_one(
    sync_engine: Engine, sync_sessions: sessionmaker[Session]
) -> None:
    now = dt.datetime(2027, 1, 4, 9, 0, tzinfo=dt.UTC)
    done = threading.Event()
    later: list[str] = []

    def enqueue_later() -> None:
        try:
            with sync_sessions.begin() as session:
                later.append(outbox.enqueue(session, "d-a", WebhookEventType.AUTOSYNC_DISABLED, {}, now=now))
        finally:
            done.set()

    with sync_sessions.begin() as session:
        earlier = outbox.enqueue(session, "d-a", WebhookEventType.SYNC_RUN_FAILED, {}, now=now)
        writer = threading.Thread(target=enqueue_later)
        writer.start()
        # The later write waits for this transaction: nothing of the district is visible meanwhile.
        assert blocked_on_a_lock(sync_engine, done.is_set), "the later event committed before the earlier one"
        with sync_sessions.begin() as claiming:
            assert outbox.claim_due(claiming, now, lease=dt.timedelta(minutes=1), limit=10) == []
    writer.join(30)

    with sync_sessions.begin() as claiming:
        claimed = outbox.claim_due(claiming, now, lease=dt.timedelta(minutes=1), limit=10)
    assert [delivery.event_id for delivery in claimed] == [earlier]
    assert len(later) == 1


def test_the_sender_prunes_delivered_events_past_their_retention_and_keeps_the_rest(
    sync_sessions: sessionmaker[Session],
) -> None:
    clock = Clock()
    start = clock()
    stops: list[Callable[[], object]] = []

    def enqueue_one(number: int) -> str:
        with sync_sessions.begin() as session:
            event_type = WebhookEventType.SYNC_RUN_SUCCEEDED
            return outbox.enqueue(session, "d-a", event_type, {"n": number}, now=clock())

    def deliver_all(webhooks: WebhookSettings) -> None:
        asyncio.run(
            deliver_until_done(WebhookSender(sync_sessions, webhooks, clock=clock), sync_sessions, clock)
        )

    def answer(n: int) -> int:
        if n <= 2:
            return 200
        stops[0]()  # the loop's first delivery: it pruned before it
        return 500

    async def run_until_a_request(sender: WebhookSender) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        stops.append(lambda: loop.call_soon_threadsafe(stop.set))
        await sender.run(stop)
        await sender.close()

    with running_receiver(answer, now=lambda: clock().timestamp()) as receiver:
        webhooks = settings(receiver, retention_days=30)
        old = enqueue_one(1)
        deliver_all(webhooks)
        clock.advance(dt.timedelta(days=29))
        recent = enqueue_one(2)
        deliver_all(webhooks)
        clock.advance(dt.timedelta(days=2))  # the first event was delivered 31 days ago
        waiting = enqueue_one(3)

        asyncio.run(run_until_a_request(WebhookSender(sync_sessions, webhooks, clock=clock)))

    with sync_sessions() as session:
        kept = {event.event_id: event.delivered_time for event in session.scalars(select(OutboxEvent))}
    assert old not in kept
    assert set(kept) == {recent, waiting}
    assert kept[waiting] is None
    assert clock() - start == dt.timedelta(days=31)
