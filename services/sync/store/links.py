"""SQL for teacher links (ClassLink user → EW teacher). The caller owns the transaction."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import cast

from sqlalchemy import Table, bindparam, delete, select, update
from sqlalchemy.orm import Session

from services.common.bulk import bulk_insert
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

    The users given for a teacher are all of its links: a link from any other user to one of these
    teachers is removed. The stored links are read once and diffed here, so only rows that really
    change are written (a no-change sync writes nothing) and no statement scans the table per batch.
    """
    current = list_links(session, district_id)
    teachers = set(links.values())
    removed = sorted(c for c, ew_id in current.items() if ew_id in teachers and c not in links)
    changed = [
        {"d": district_id, "c": classlink_id, "e": ew_id, "t": now}
        for classlink_id, ew_id in sorted(links.items())
        if classlink_id in current and current[classlink_id] != ew_id
    ]
    added = [
        {
            "district_id": district_id,
            "classlink_user_id": classlink_id,
            "ew_teacher_id": ew_id,
            "create_time": now,
            "update_time": now,
        }
        for classlink_id, ew_id in sorted(links.items())
        if classlink_id not in current
    ]
    table = cast(Table, TeacherLink.__table__)
    for start in range(0, len(removed), BATCH):
        session.execute(
            delete(TeacherLink).where(
                TeacherLink.district_id == district_id,
                TeacherLink.classlink_user_id.in_(removed[start : start + BATCH]),
            )
        )
    if changed:
        session.execute(
            update(table)
            .where(table.c.district_id == bindparam("d"), table.c.classlink_user_id == bindparam("c"))
            .values(ew_teacher_id=bindparam("e"), update_time=bindparam("t")),
            changed,
        )
    bulk_insert(session.connection(), table, added)


def delete_links(session: Session, district_id: str, classlink_user_ids: Sequence[str]) -> None:
    """Forget these ClassLink users' links."""
    for start in range(0, len(classlink_user_ids), BATCH):
        session.execute(
            delete(TeacherLink).where(
                TeacherLink.district_id == district_id,
                TeacherLink.classlink_user_id.in_(classlink_user_ids[start : start + BATCH]),
            )
        )
