"""SQL for AutoSync settings and scheduler claims. Every function takes the caller's session; none commits.

Claiming: ``claim_due`` locks due rows with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several
schedulers take disjoint districts; SQLite has one writer at a time (``BEGIN IMMEDIATE``), which
serializes schedulers the same way. ``lock_servers`` takes a transaction-scoped advisory lock per
ClassLink server on PostgreSQL, in sorted order (no deadlock), so two schedulers cannot both see
room under a server's cap and both start a run.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from services.sync.store import _advisory
from services.sync.store._upsert import upsert
from services.sync.store.models import AutoSyncPause, AutoSyncSettings, Connection
from services.sync.vocabulary import AutoSyncCadence


@dataclass(frozen=True)
class AutoSyncValues:
    """Everything SetAutoSync stores; ``next_run_time`` is None while AutoSync is off."""

    district_id: str
    enabled: bool
    cadence: AutoSyncCadence
    day: int
    hour: int
    time_zone: str
    pauses: Sequence[tuple[dt.date, dt.date]]
    next_run_time: dt.datetime | None


@dataclass(frozen=True)
class DueDistrict:
    """A claimed district: its settings, pause windows and ClassLink server (None when disconnected)."""

    settings: AutoSyncSettings
    pauses: Sequence[AutoSyncPause]
    server_url: str | None


def get(session: Session, district_id: str) -> AutoSyncSettings | None:
    """The district's settings, if it ever set them."""
    return session.get(AutoSyncSettings, district_id)


def pauses(session: Session, district_id: str) -> Sequence[AutoSyncPause]:
    """The district's pause windows, in the order they were given."""
    return session.scalars(
        select(AutoSyncPause).where(AutoSyncPause.district_id == district_id).order_by(AutoSyncPause.position)
    ).all()


def save(session: Session, values: AutoSyncValues, *, by: str, now: dt.datetime) -> None:
    """Store the district's settings and replace its pause windows."""
    row = {
        "district_id": values.district_id,
        "enabled": values.enabled,
        "cadence": values.cadence,
        "day": values.day,
        "hour": values.hour,
        "time_zone": values.time_zone,
        "next_run_time": values.next_run_time,
        "update_by": by,
        "create_time": now,
        "update_time": now,
    }
    replaced = [column for column in row if column not in ("district_id", "create_time")]
    upsert(session, AutoSyncSettings, [row], key=["district_id"], update=replaced)
    session.execute(delete(AutoSyncPause).where(AutoSyncPause.district_id == values.district_id))
    session.add_all(
        AutoSyncPause(district_id=values.district_id, position=position, start_date=start, end_date=end)
        for position, (start, end) in enumerate(values.pauses)
    )
    session.flush()
    session.expire_all()


def turn_off(session: Session, district_id: str, *, by: str, now: dt.datetime) -> bool:
    """Switch the district's AutoSync off; False when it was not on."""
    result = session.execute(
        update(AutoSyncSettings)
        .where(AutoSyncSettings.district_id == district_id, AutoSyncSettings.enabled.is_(True))
        .values(enabled=False, next_run_time=None, update_by=by, update_time=now)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def claim_due(
    session: Session, now: dt.datetime, *, limit: int, skip_servers: Iterable[str]
) -> list[DueDistrict]:
    """Lock up to ``limit`` districts due at ``now`` that no other scheduler holds, earliest first.

    Districts on a server in ``skip_servers`` (at its cap in this tick) stay due for a later tick.
    """
    query = (
        select(AutoSyncSettings, Connection.server_url)
        .outerjoin(Connection, Connection.district_id == AutoSyncSettings.district_id)
        .where(AutoSyncSettings.next_run_time <= now)
        .order_by(AutoSyncSettings.next_run_time, AutoSyncSettings.district_id)
        .limit(limit)
        .with_for_update(of=AutoSyncSettings, skip_locked=True)
    )
    skipped = list(skip_servers)
    if skipped:
        query = query.where((Connection.server_url.is_(None)) | Connection.server_url.not_in(skipped))
    rows = session.execute(query).all()
    return [DueDistrict(row[0], pauses(session, row[0].district_id), row[1]) for row in rows]


def lock_servers(session: Session, server_urls: Iterable[str]) -> None:
    """Hold a transaction-scoped lock per ClassLink server (PostgreSQL; SQLite has one writer anyway)."""
    for url in sorted(set(server_urls)):
        _advisory.lock(session, "classlink-server", url)


def advance(
    session: Session, district_id: str, next_run_time: dt.datetime, *, last_auto_run_id: str | None
) -> None:
    """Move a claimed district to its next run time, noting the run it just got, if any."""
    values: dict[str, object] = {"next_run_time": next_run_time}
    if last_auto_run_id is not None:
        values["last_auto_run_id"] = last_auto_run_id
    session.execute(
        update(AutoSyncSettings)
        .where(AutoSyncSettings.district_id == district_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
