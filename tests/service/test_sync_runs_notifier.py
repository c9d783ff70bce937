"""Run wake-ups: a notify from a worker thread (or another process, through Redis) wakes a watcher.

A watcher that is not woken still re-reads on its safety timeout, so the streaming tests would pass
without working wake-ups; these tests prove the wake-up itself arrives (``wait`` returns True).
"""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections.abc import AsyncIterator

import pytest

from services.sync.runs.notifier import InProcessNotifier, Notifier, RedisNotifier

pytestmark = pytest.mark.timeout(30)

SAFETY = 10.0


@pytest.fixture(params=["in-process", "redis"])
async def notifier(request: pytest.FixtureRequest) -> AsyncIterator[Notifier]:
    made: Notifier
    if request.param == "in-process":
        made = InProcessNotifier()
    else:
        url = os.environ.get("EW_TEST_BROKER_URL")
        if not url:
            pytest.skip("EW_TEST_BROKER_URL is not set (make test-integration sets it)")
        made = RedisNotifier(url, channel_prefix=f"ew-test-{uuid.uuid4().hex[:8]}:run:")
    await made.start()
    yield made
    await made.close()


async def test_a_notify_from_a_worker_thread_wakes_the_watcher(notifier: Notifier) -> None:
    run_id = str(uuid.uuid4())
    async with notifier.subscribe(run_id) as subscription:
        worker = threading.Thread(target=notifier.notify, args=(run_id,))
        worker.start()
        woken = await subscription.wait(SAFETY)
        worker.join()
    assert woken


async def test_a_notify_before_the_wait_is_not_lost(notifier: Notifier) -> None:
    run_id = str(uuid.uuid4())
    async with notifier.subscribe(run_id) as subscription:
        await asyncio.to_thread(notifier.notify, run_id)
        assert await subscription.wait(SAFETY)


async def test_other_runs_do_not_wake_the_watcher(notifier: Notifier) -> None:
    run_id, other = str(uuid.uuid4()), str(uuid.uuid4())
    async with notifier.subscribe(run_id) as subscription, notifier.subscribe(other) as other_subscription:
        await asyncio.to_thread(notifier.notify, other)
        assert await other_subscription.wait(SAFETY)
        assert not await subscription.wait(0.2)
