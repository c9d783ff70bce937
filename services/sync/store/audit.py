"""SQL for the audit trail: append, list (newest first, filtered), prune past retention. No update exists.

The caller owns the transaction.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import CursorResult, and_, delete, or_, select
from sqlalchemy.orm import Session

from services.sync.store.models import AuditEvent
from services.sync.vocabulary import AuditAction


@dataclass(frozen=True)
class AuditRecord:
    """What one audited call did."""

    district_id: str
    actor: str
    action: AuditAction
    target: str
    outcome: str
    message: str = ""


@dataclass(frozen=True)
class AuditFilter:
    """ListAuditEvents' filters; None means no filter."""

    action: AuditAction | None = None
    actor: str | None = None
    start_time: dt.datetime | None = None
    end_time: dt.datetime | None = None


def append(session: Session, record: AuditRecord, now: dt.datetime) -> None:
    r"""Add one event.

    A refused request may echo a NUL it was sent, which PostgreSQL cannot store in text: it is
    written as the four characters ``\x00``, so the refusal is still on the record.
    """
    session.add(
        AuditEvent(
            id=str(uuid.uuid4()),
            district_id=record.district_id,
            time=now,
            actor=_storable(record.actor),
            action=record.action,
            target=_storable(record.target),
            outcome=record.outcome,
            message=_storable(record.message) or None,
        )
    )


def _storable(value: str) -> str:
    return value.replace("\x00", "\\x00")


def list_events(
    session: Session,
    district_id: str,
    filters: AuditFilter,
    before: tuple[dt.datetime, str] | None,
    limit: int,
) -> Sequence[AuditEvent]:
    """The district's events matching ``filters``, newest first, strictly after the keyset ``before``."""
    query = select(AuditEvent).where(AuditEvent.district_id == district_id)
    if filters.action is not None:
        query = query.where(AuditEvent.action == filters.action)
    if filters.actor is not None:
        query = query.where(AuditEvent.actor == filters.actor)
    if filters.start_time is not None:
        query = query.where(AuditEvent.time >= filters.start_time)
    if filters.end_time is not None:
        query = query.where(AuditEvent.time < filters.end_time)
    if before is not None:
        time, event_id = before
        query = query.where(
            or_(AuditEvent.time < time, and_(AuditEvent.time == time, AuditEvent.id < event_id))
        )
    return session.scalars(query.order_by(AuditEvent.time.desc(), AuditEvent.id.desc()).limit(limit)).all()


def prune(session: Session, older_than: dt.datetime) -> int:
    """Delete events older than the retention cut-off (the only way an event goes); how many went."""
    result = cast(CursorResult[Any], session.execute(delete(AuditEvent).where(AuditEvent.time < older_than)))
    return int(result.rowcount)
