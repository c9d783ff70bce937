"""Delivers the outbox's events to the EW product: signed, at least once, in order per district.

Each pass leases the due head event of each district (``outbox.claim_due``) and POSTs its stored
body with an ``EW-Signature`` header (``ew.client.webhooks``). A 2xx answer marks it delivered, and
the district's next event is due at once; anything else (an error status, a timeout, a refused
connection) schedules the next attempt after an exponential back-off — ``backoff_base_seconds``
doubled per failed attempt, capped at ``backoff_max_seconds`` — stored in the row, so a restarted
sender keeps the schedule and loses nothing. Events are retried until delivered.

Delivered events are kept ``retention_days`` (``EW_WEBHOOK_RETENTION_DAYS``) for inspection, then
the sender prunes them (when it starts, then every ``PRUNE_EVERY``), so the outbox does not grow
forever. Undelivered events are never pruned.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Callable
from typing import TypeVar

import httpx
from ew.client.webhooks import SIGNATURE_HEADER, sign
from sqlalchemy.orm import Session, sessionmaker

from services.common.clock import Clock, utc_now
from services.sync.metrics import WEBHOOK_DELIVERIES
from services.sync.store import outbox
from services.sync.store.outbox import Delivery
from services.sync.webhooks.settings import WebhookSettings

logger = logging.getLogger(__name__)

T = TypeVar("T")

PRUNE_EVERY = dt.timedelta(hours=1)
"""How often a running sender prunes delivered events past their retention."""


def backoff(settings: WebhookSettings, attempts: int) -> dt.timedelta:
    """The wait after ``attempts`` failed attempts (1, 2, …): base × 2^(attempts-1), capped."""
    seconds = settings.backoff_base_seconds * 2 ** min(attempts - 1, 62)
    return dt.timedelta(seconds=min(seconds, settings.backoff_max_seconds))


class WebhookSender:
    """Delivers due outbox events; ``run`` loops until stopped, ``deliver_due`` is one pass."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        settings: WebhookSettings,
        *,
        clock: Clock = utc_now,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._sessions = sessions
        self._settings = settings
        self._clock = clock
        self._client = client or httpx.AsyncClient(timeout=settings.timeout_seconds)
        self._next_prune: dt.datetime | None = None

    async def _transaction(self, work: Callable[[Session], T]) -> T:
        def run() -> T:
            with self._sessions.begin() as session:
                return work(session)

        return await asyncio.to_thread(run)

    async def deliver_due(self) -> int:
        """Attempt every due head event once; returns how many were attempted."""
        now = self._clock()
        lease = dt.timedelta(seconds=self._settings.lease_seconds)
        due = await self._transaction(
            lambda session: outbox.claim_due(session, now, lease=lease, limit=self._settings.batch_size)
        )
        await asyncio.gather(*(self._deliver(delivery) for delivery in due))
        return len(due)

    async def prune(self) -> int:
        """Delete events delivered more than ``retention_days`` ago; returns how many."""
        before = self._clock() - dt.timedelta(days=self._settings.retention_days)
        pruned = await self._transaction(lambda session: outbox.prune_delivered(session, before))
        if pruned:
            logger.info("pruned %d webhook events delivered before %s", pruned, before.isoformat())
        return pruned

    async def _prune_when_due(self) -> None:
        now = self._clock()
        if self._next_prune is None or now >= self._next_prune:
            self._next_prune = now + PRUNE_EVERY
            await self.prune()

    async def _deliver(self, delivery: Delivery) -> None:
        body = delivery.body.encode()
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(
                self._settings.secret.get_secret_value(), body, int(self._clock().timestamp())
            ),
            "EW-Event-Id": delivery.event_id,
            "EW-Event-Type": delivery.event_type.value,
        }
        error = ""
        try:
            response = await self._client.post(self._settings.url, content=body, headers=headers)
            if not response.is_success:
                error = f"the receiver answered HTTP {response.status_code}"
        except httpx.HTTPError as failure:
            error = f"the request failed: {type(failure).__name__}"
        now = self._clock()
        WEBHOOK_DELIVERIES.labels("failed" if error else "delivered").inc()
        if not error:
            await self._transaction(lambda session: outbox.record_delivered(session, delivery.position, now))
            logger.info("webhook event %s (%s) delivered", delivery.event_id, delivery.event_type.value)
            return
        retry_at = now + backoff(self._settings, delivery.attempts + 1)
        await self._transaction(
            lambda session: outbox.record_failed(session, delivery.position, retry_at, error)
        )
        logger.warning(
            "webhook event %s: %s (attempt %d); next attempt at %s",
            delivery.event_id,
            error,
            delivery.attempts + 1,
            retry_at.isoformat(),
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop`` is set; polls the outbox every ``poll_interval_seconds`` when idle."""
        while not stop.is_set():
            try:
                await self._prune_when_due()
                attempted = await self.deliver_due()
            except Exception:
                logger.exception("webhook delivery pass failed")
                attempted = 0
            if not attempted:
                # An idle poll; ``stop`` ends the wait at once.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self._settings.poll_interval_seconds)

    async def close(self) -> None:
        """Close the HTTP client."""
        await self._client.aclose()
