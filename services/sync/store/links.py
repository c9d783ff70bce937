"""SQL for teacher links (ClassLink user → EW teacher). The caller owns the transaction."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

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


@dataclass(frozen=True)
class LinkWrites:
    """The rows to delete, update and insert to bring a district's links to a target; see ``link_writes``."""

    removed: list[str] = field(default_factory=list)
    changed: list[dict[str, Any]] = field(default_factory=list)
    added: list[dict[str, Any]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.removed) + len(self.changed) + len(self.added)

    def chunks(self, size: int) -> Iterator[LinkWrites]:
        """The writes in pieces of at most ``size`` rows: removals, then updates, then inserts."""
        for start in range(0, len(self.removed), size):
            yield LinkWrites(removed=self.removed[start : start + size])
        for start in range(0, len(self.changed), size):
            yield LinkWrites(changed=self.changed[start : start + size])
        for start in range(0, len(self.added), size):
            yield LinkWrites(added=self.added[start : start + size])


def link_writes(
    current: Mapping[str, str], district_id: str, links: Mapping[str, str], now: dt.datetime
) -> LinkWrites:
    """What links each ClassLink user to its EW teacher, replacing the user's previous link.

    The users given for a teacher are all of its links: a link from any other user to one of these
    teachers is removed. Only rows that really change are written (a no-change sync writes nothing).
    Applied in any number of pieces, in order, and computed again from the stored links after an
    interruption, the writes reach the same links.
    """
    teachers = set(links.values())
    return LinkWrites(
        removed=sorted(c for c, ew_id in current.items() if ew_id in teachers and c not in links),
        changed=[
            {"d": district_id, "c": classlink_id, "e": ew_id, "t": now}
            for classlink_id, ew_id in sorted(links.items())
            if classlink_id in current and current[classlink_id] != ew_id
        ],
        added=[
            {
                "district_id": district_id,
                "classlink_user_id": classlink_id,
                "ew_teacher_id": ew_id,
                "create_time": now,
                "update_time": now,
            }
            for classlink_id, ew_id in sorted(links.items())
            if classlink_id not in current
        ],
    )


def apply_link_writes(session: Session, district_id: str, writes: LinkWrites) -> None:
    """Apply ``writes`` (or one of its chunks) in the caller's transaction."""
    table = cast(Table, TeacherLink.__table__)
    delete_links(session, district_id, writes.removed)
    if writes.changed:
        session.execute(
            update(table)
            .where(table.c.district_id == bindparam("d"), table.c.classlink_user_id == bindparam("c"))
            .values(ew_teacher_id=bindparam("e"), update_time=bindparam("t")),
            writes.changed,
        )
    bulk_insert(session.connection(), table, writes.added)


def save_links(session: Session, district_id: str, links: Mapping[str, str], now: dt.datetime) -> None:
    """Store ``links`` (see ``link_writes``) in one go, in the caller's transaction."""
    apply_link_writes(
        session, district_id, link_writes(list_links(session, district_id), district_id, links, now)
    )


def delete_links(session: Session, district_id: str, classlink_user_ids: Sequence[str]) -> None:
    """Forget these ClassLink users' links."""
    for start in range(0, len(classlink_user_ids), BATCH):
        session.execute(
            delete(TeacherLink).where(
                TeacherLink.district_id == district_id,
                TeacherLink.classlink_user_id.in_(classlink_user_ids[start : start + BATCH]),
            )
        )
