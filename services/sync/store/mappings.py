"""SQL for school mappings (ClassLink school → EW school, with origin). The caller owns the transaction."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from services.sync.store._upsert import upsert
from services.sync.store.models import SchoolMapping
from services.sync.vocabulary import MappingOrigin


@dataclass(frozen=True)
class MappingValues:
    """One ClassLink school's mapping as it should be stored; ``ew_school_id`` is None for UNMAPPED."""

    classlink_school_id: str
    ew_school_id: str | None
    origin: MappingOrigin
    classlink_name: str


def list_mappings(session: Session, district_id: str) -> list[SchoolMapping]:
    """Every stored mapping of the district (UNMAPPED rows included)."""
    return list(
        session.scalars(
            select(SchoolMapping)
            .where(SchoolMapping.district_id == district_id)
            .order_by(SchoolMapping.classlink_school_id)
        )
    )


def get_mapping(session: Session, district_id: str, classlink_school_id: str) -> SchoolMapping | None:
    """The stored mapping of one ClassLink school."""
    return session.scalar(
        select(SchoolMapping).where(
            SchoolMapping.district_id == district_id,
            SchoolMapping.classlink_school_id == classlink_school_id,
        )
    )


def mappings_to_ew_schools(
    session: Session, district_id: str, ew_school_ids: Sequence[str]
) -> list[SchoolMapping]:
    """Stored mappings pointing at any of ``ew_school_ids``."""
    if not ew_school_ids:
        return []
    return list(
        session.scalars(
            select(SchoolMapping).where(
                SchoolMapping.district_id == district_id,
                SchoolMapping.ew_school_id.in_(ew_school_ids),
            )
        )
    )


def save_mappings(
    session: Session, district_id: str, mappings: Sequence[MappingValues], now: dt.datetime
) -> None:
    """Store mappings, replacing any existing mapping of the same ClassLink school.

    The unique index on (district, EW school) rejects an EW school mapped twice; callers check
    first so an administrator gets a message, and the index stops a race.
    """
    rows = [
        {
            "id": str(uuid.uuid4()),
            "district_id": district_id,
            "classlink_school_id": mapping.classlink_school_id,
            "ew_school_id": mapping.ew_school_id,
            "origin": mapping.origin,
            "classlink_name": mapping.classlink_name,
            "create_time": now,
            "update_time": now,
        }
        for mapping in mappings
    ]
    upsert(
        session,
        SchoolMapping,
        rows,
        key=["district_id", "classlink_school_id"],
        update=["ew_school_id", "origin", "classlink_name", "update_time"],
    )


def delete_mappings(session: Session, district_id: str, classlink_school_ids: Sequence[str]) -> None:
    """Forget the stored mappings of these ClassLink schools."""
    if classlink_school_ids:
        session.execute(
            delete(SchoolMapping).where(
                SchoolMapping.district_id == district_id,
                SchoolMapping.classlink_school_id.in_(classlink_school_ids),
            )
        )
