"""SQL for teacher links (ClassLink user → EW teacher). The caller owns the transaction."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from services.sync.store._upsert import upsert
from services.sync.store.models import TeacherLink

BATCH = 500


def list_links(session: Session, district_id: str) -> dict[str, str]:
    """ClassLink user sourcedId → EW teacher id, for the whole district."""
    rows = session.execute(
        select(TeacherLink.classlink_user_id, TeacherLink.ew_teacher_id).where(
            TeacherLink.district_id == district_id
        )
    )
    return dict(rows.all())


def save_links(session: Session, district_id: str, links: Mapping[str, str], now: dt.datetime) -> None:
    """Link each ClassLink user to its EW teacher, replacing the user's previous link.

    A link that pointed another ClassLink user at one of these EW teachers is removed first: one EW
    teacher belongs to one ClassLink user (the unique index enforces it).
    """
    pairs = sorted(links.items())
    for start in range(0, len(pairs), BATCH):
        chunk = pairs[start : start + BATCH]
        session.execute(
            delete(TeacherLink).where(
                TeacherLink.district_id == district_id,
                TeacherLink.ew_teacher_id.in_([ew_id for _, ew_id in chunk]),
                TeacherLink.classlink_user_id.not_in([classlink_id for classlink_id, _ in chunk]),
            )
        )
        upsert(
            session,
            TeacherLink,
            [
                {
                    "district_id": district_id,
                    "classlink_user_id": classlink_id,
                    "ew_teacher_id": ew_id,
                    "create_time": now,
                    "update_time": now,
                }
                for classlink_id, ew_id in chunk
            ],
            key=["district_id", "classlink_user_id"],
            update=["ew_teacher_id", "update_time"],
        )
