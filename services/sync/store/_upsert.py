"""A portable INSERT … ON CONFLICT DO UPDATE for the two supported databases."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from services.sync.store.models import Base


def upsert(
    session: Session,
    model: type[Base],
    rows: Sequence[Mapping[str, Any]],
    *,
    key: Sequence[str],
    update: Sequence[str],
) -> None:
    """Insert ``rows``; a row whose ``key`` columns exist already gets its ``update`` columns replaced."""
    if not rows:
        return
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    statement = insert(model)
    statement = statement.on_conflict_do_update(
        index_elements=list(key),
        set_={column: statement.excluded[column] for column in update},
    )
    session.execute(statement, list(rows))
