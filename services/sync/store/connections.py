"""SQL for a district's OneRoster connection. Every function takes the caller's session; none commits."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass

from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from services.sync.store._upsert import upsert
from services.sync.store.models import Connection
from services.sync.vocabulary import AuthMethod, ConnectMethod, OneRosterVersion


@dataclass(frozen=True)
class ConnectionValues:
    """Everything a connect stores; the secret only as ciphertext."""

    district_id: str
    server_url: str
    auth_method: AuthMethod
    oneroster_version: OneRosterVersion
    client_id: str
    secret_ciphertext: str
    secret_hint: str
    tenant_id: str | None
    connect_method: ConnectMethod
    token_url: str | None = None


def get_connection(session: Session, district_id: str) -> Connection | None:
    """The district's connection, if it has one."""
    return session.get(Connection, district_id)


def save_connection(session: Session, values: ConnectionValues, now: dt.datetime) -> Connection:
    """Store the connection, replacing the district's previous one (its last success time is kept)."""
    row = {**asdict(values), "create_time": now, "update_time": now, "last_success_time": None}
    replaced = [column for column in row if column not in ("district_id", "last_success_time")]
    upsert(session, Connection, [row], key=["district_id"], update=replaced)
    session.expire_all()
    connection = session.get(Connection, values.district_id)
    if connection is None:
        raise RuntimeError("the connection just stored is missing")
    return connection


def delete_connection(session: Session, district_id: str) -> bool:
    """Remove the district's connection and its secret; False when there was none."""
    result = session.execute(delete(Connection).where(Connection.district_id == district_id))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def record_success(session: Session, district_id: str, now: dt.datetime) -> None:
    """Note a successful sync on the district's connection (no-op when it was disconnected meanwhile)."""
    session.execute(
        update(Connection).where(Connection.district_id == district_id).values(last_success_time=now)
    )
