"""The webhook outbox: events written in the transaction they report, delivered later, in order.

``enqueue`` is the one way in: call it with the session of the change the event reports, so the
event commits (or rolls back) with that change and none is lost. The webhook sender
(``services.sync.webhooks``) claims due events with ``claim_due`` — only the oldest undelivered
event of each district, so a district's later event waits until its earlier one is delivered — and
records each attempt. Claims are leases taken by a conditional update (``FOR UPDATE SKIP LOCKED``
first on PostgreSQL), so several senders never deliver one event at the same time; a sender that
dies mid-delivery leaves a lease that expires, and another sender delivers the event again (at
least once). Every function takes the caller's session; none commits.

Order: ``position`` comes from a sequence when the row is inserted, but transactions may commit in
another order, and ``claim_due`` cannot see an uncommitted earlier event, so it could deliver a
later one first. ``enqueue`` therefore holds a per-district lock until its transaction ends
(PostgreSQL advisory lock; SQLite has one writer anyway): a district's events commit in position
order.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import and_, delete, exists, or_, select, update
from sqlalchemy.orm import Session, aliased

from services.sync.store import _advisory
from services.sync.store.models import OutboxEvent
from services.sync.vocabulary import WebhookEventType


@dataclass(frozen=True)
class Delivery:
    """One claimed event: what to send, and its attempts so far."""

    position: int
    event_id: str
    event_type: WebhookEventType
    body: str
    attempts: int


def event_body(
    event_id: str,
    event_type: WebhookEventType,
    district_id: str,
    data: Mapping[str, object],
    now: dt.datetime,
) -> str:
    """The JSON body a receiver gets: id, type, time, district and the event's data."""
    return json.dumps(
        {
            "id": event_id,
            "type": event_type.value,
            "time": now.isoformat(),
            "district_id": district_id,
            "data": data,
        },
        separators=(",", ":"),
        sort_keys=True,
    )


def enqueue(
    session: Session,
    district_id: str,
    event_type: WebhookEventType,
    data: Mapping[str, object],
    *,
    now: dt.datetime,
) -> str:
    """Add an event to the outbox in the caller's transaction; returns its event id.

    Waits while another transaction holds the district's outbox lock (see the module docstring).
    """
    _advisory.lock(session, "webhook-outbox", district_id)
    event_id = str(uuid.uuid4())
    session.add(
        OutboxEvent(
            event_id=event_id,
            district_id=district_id,
            event_type=event_type,
            body=event_body(event_id, event_type, district_id, data, now),
            create_time=now,
            attempts=0,
            next_attempt_time=now,
        )
    )
    session.flush()
    return event_id


def claim_due(session: Session, now: dt.datetime, *, lease: dt.timedelta, limit: int) -> list[Delivery]:
    """Lease up to ``limit`` due events, each the oldest undelivered event of its district."""
    earlier = aliased(OutboxEvent)
    heads = (
        select(OutboxEvent)
        .where(
            OutboxEvent.delivered_time.is_(None),
            OutboxEvent.next_attempt_time <= now,
            or_(OutboxEvent.lease_until.is_(None), OutboxEvent.lease_until < now),
            ~exists().where(
                and_(
                    earlier.district_id == OutboxEvent.district_id,
                    earlier.delivered_time.is_(None),
                    earlier.position < OutboxEvent.position,
                )
            ),
        )
        .order_by(OutboxEvent.position)
        .limit(limit)
        .with_for_update(skip_locked=True, of=OutboxEvent)
    )
    claimed = []
    for event in session.scalars(heads).all():
        # The fence: another sender may have leased it since this one read it (SQLite has no row locks).
        taken = session.execute(
            update(OutboxEvent)
            .where(
                OutboxEvent.position == event.position,
                OutboxEvent.delivered_time.is_(None),
                or_(OutboxEvent.lease_until.is_(None), OutboxEvent.lease_until < now),
            )
            .values(lease_until=now + lease)
            .returning(OutboxEvent.position)
            .execution_options(synchronize_session=False)
        ).scalar_one_or_none()
        if taken is not None:
            claimed.append(
                Delivery(event.position, event.event_id, event.event_type, event.body, event.attempts)
            )
    return claimed


def record_delivered(session: Session, position: int, now: dt.datetime) -> None:
    """The receiver acknowledged the event: the district's next event may go."""
    session.execute(
        update(OutboxEvent)
        .where(OutboxEvent.position == position, OutboxEvent.delivered_time.is_(None))
        .values(delivered_time=now, attempts=OutboxEvent.attempts + 1, lease_until=None, last_error=None)
        .execution_options(synchronize_session=False)
    )


def record_failed(session: Session, position: int, next_attempt_time: dt.datetime, error: str) -> None:
    """The attempt failed: try again at ``next_attempt_time`` (stored, so a restart keeps the schedule)."""
    session.execute(
        update(OutboxEvent)
        .where(OutboxEvent.position == position, OutboxEvent.delivered_time.is_(None))
        .values(
            attempts=OutboxEvent.attempts + 1,
            next_attempt_time=next_attempt_time,
            lease_until=None,
            last_error=error[:1000],
        )
        .execution_options(synchronize_session=False)
    )


def prune_delivered(session: Session, delivered_before: dt.datetime) -> int:
    """Delete events delivered before ``delivered_before``; returns how many. Undelivered ones stay."""
    result = session.execute(
        delete(OutboxEvent)
        .where(OutboxEvent.delivered_time.is_not(None), OutboxEvent.delivered_time < delivered_before)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
