"""Wake-ups that tell run watchers "a new event of run X is persisted; read it".

The events themselves live in the sync database (replay, history); a notifier only carries the
nudge, so a lost wake-up costs at most one safety timeout and never an event. Watchers subscribe
BEFORE reading the persisted events, then wait, then read again after their last sequence: a
notification that lands between the read and the wait is kept in the subscription, not lost.

- ``InProcessNotifier``: worker threads and gRPC handlers in one process (stub broker). A worker
  thread wakes the asyncio loop that owns a subscription with ``loop.call_soon_threadsafe``.
- ``RedisNotifier``: a worker in another process publishes on ``<namespace>:run:{run_id}``; each
  sync server keeps one pattern subscription and wakes its local subscribers.
- ``PollingNotifier`` (RabbitMQ broker): no channel reaches across processes, so watchers re-read
  the store every ``POLL_SECONDS`` (events still arrive within a second).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator
from typing import Protocol

import redis
import redis.asyncio as aioredis

from services.sync.runs.broker import RABBITMQ_SCHEMES

logger = logging.getLogger(__name__)

CHANNEL_PREFIX = "ew-rostersync:run:"
POLL_SECONDS = 0.5


def channel_for(run_id: str, prefix: str = CHANNEL_PREFIX) -> str:
    """The pub/sub channel of one run."""
    return f"{prefix}{run_id}"


class Subscription:
    """One watcher's wake-up flag, owned by the asyncio loop that created it."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._event = asyncio.Event()

    def wake(self) -> None:
        """Set the flag; callable from any thread."""
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting any more
            self._loop.call_soon_threadsafe(self._event.set)

    async def wait(self, timeout: float) -> bool:
        """Wait for a wake-up (True) or the timeout (False); the flag is cleared either way."""
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
        except TimeoutError:
            return False
        finally:
            self._event.clear()
        return True


class Notifier(Protocol):
    """What the progress reporter calls and run watchers wait on."""

    def notify(self, run_id: str) -> None:
        """Wake every watcher of the run (any process); never raises."""

    def subscribe(self, run_id: str) -> contextlib.AbstractAsyncContextManager[Subscription]:
        """Register a watcher of the run for the duration of the block."""

    async def start(self) -> None:
        """Start receiving wake-ups (called once on the serving loop)."""

    async def close(self) -> None:
        """Stop receiving wake-ups and release connections."""


class _PollingSubscription(Subscription):
    """A subscription whose waits end after ``POLL_SECONDS`` at most: the watcher re-reads."""

    async def wait(self, timeout: float) -> bool:
        """Wait for a local wake-up, or the poll interval."""
        return await super().wait(min(timeout, POLL_SECONDS))


class _LocalSubscribers:
    """Subscriptions of this process, by run id; thread-safe."""

    def __init__(self, subscription: type[Subscription] = Subscription) -> None:
        self._lock = threading.Lock()
        self._by_run: dict[str, set[Subscription]] = {}
        self._subscription = subscription

    def wake(self, run_id: str) -> None:
        with self._lock:
            subscriptions = list(self._by_run.get(run_id, ()))
        for subscription in subscriptions:
            subscription.wake()

    @contextlib.asynccontextmanager
    async def subscribe(self, run_id: str) -> AsyncIterator[Subscription]:
        subscription = self._subscription(asyncio.get_running_loop())
        with self._lock:
            self._by_run.setdefault(run_id, set()).add(subscription)
        try:
            yield subscription
        finally:
            with self._lock:
                remaining = self._by_run.get(run_id)
                if remaining is not None:
                    remaining.discard(subscription)
                    if not remaining:
                        del self._by_run[run_id]


class InProcessNotifier:
    """Wake-ups within one process: the in-process worker and the gRPC server share it."""

    def __init__(self, subscription: type[Subscription] = Subscription) -> None:
        self._subscribers = _LocalSubscribers(subscription)

    def notify(self, run_id: str) -> None:
        """Wake the run's local watchers."""
        self._subscribers.wake(run_id)

    def subscribe(self, run_id: str) -> contextlib.AbstractAsyncContextManager[Subscription]:
        """Register a local watcher."""
        return self._subscribers.subscribe(run_id)

    async def start(self) -> None:
        """Nothing to connect."""

    async def close(self) -> None:
        """Nothing to release."""


class PollingNotifier(InProcessNotifier):
    """Local wake-ups, and watchers that re-read every ``POLL_SECONDS`` for other processes' events."""

    def __init__(self) -> None:
        super().__init__(_PollingSubscription)


class RedisNotifier:
    """Wake-ups across processes through Redis pub/sub.

    Publishing uses a synchronous client (workers run in threads without a loop); receiving uses
    one ``redis.asyncio`` pattern subscription per process, started on the serving loop, that
    fans out to the local subscriptions.
    """

    RECONNECT_DELAY_SECONDS = 1.0

    def __init__(self, url: str, *, channel_prefix: str = CHANNEL_PREFIX) -> None:
        self._url = url
        self._prefix = channel_prefix
        self._publisher = redis.Redis.from_url(url)
        self._subscribers = _LocalSubscribers()
        self._listener: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()

    def notify(self, run_id: str) -> None:
        """Publish the wake-up; local watchers are woken through the subscription too."""
        try:
            self._publisher.publish(channel_for(run_id, self._prefix), b"1")
        except redis.RedisError:
            # Watchers re-read on their safety timeout; a lost nudge only delays them.
            logger.warning("could not publish a run wake-up to Redis", exc_info=True)
            self._subscribers.wake(run_id)

    def subscribe(self, run_id: str) -> contextlib.AbstractAsyncContextManager[Subscription]:
        """Register a local watcher."""
        return self._subscribers.subscribe(run_id)

    async def start(self) -> None:
        """Open the pattern subscription and wait until Redis confirmed it."""
        if self._listener is None:
            self._listener = asyncio.create_task(self._listen(), name="run-wakeups")
        await self._subscribed.wait()

    async def close(self) -> None:
        """Stop listening and close both clients."""
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None
        self._publisher.close()

    async def _listen(self) -> None:
        pattern = f"{self._prefix}*"
        while True:
            client = aioredis.Redis.from_url(self._url)
            try:
                async with client.pubsub() as pubsub:
                    await pubsub.psubscribe(pattern)
                    async for message in pubsub.listen():
                        if message["type"] == "psubscribe":
                            self._subscribed.set()
                        elif message["type"] == "pmessage":
                            channel = message["channel"]
                            if isinstance(channel, bytes):
                                channel = channel.decode()
                            self._subscribers.wake(str(channel).removeprefix(self._prefix))
            except redis.RedisError:
                logger.warning("run wake-up subscription lost; reconnecting", exc_info=True)
                # Unblock start() even when Redis is down: watchers fall back to their timeout.
                self._subscribed.set()
                await asyncio.sleep(self.RECONNECT_DELAY_SECONDS)
            finally:
                await client.aclose()


class _BrokerSettings(Protocol):
    broker_url: str
    broker_namespace: str


def create_notifier(settings: _BrokerSettings) -> Notifier:
    """The notifier matching the broker: in-process (stub), Redis pub/sub (Redis), polling (RabbitMQ).

    Channels are ``{EW_BROKER_NAMESPACE}:run:{run_id}`` (``ew-rostersync:run:…`` by default).
    """
    url = settings.broker_url.strip()
    if not url:
        return InProcessNotifier()
    if url.partition("://")[0].lower() in RABBITMQ_SCHEMES:
        return PollingNotifier()
    return RedisNotifier(url, channel_prefix=f"{settings.broker_namespace}:run:")
