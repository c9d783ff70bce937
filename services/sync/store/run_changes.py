"""SQL and stored shapes of the runs' change journal (``run_changes``). The caller owns the transaction.

A teacher's state is stored as ``TeacherSnapshot`` JSON; schools, mappings and links as small JSON
objects (``{"name": …}``, ``{"ew_school_id": …, "origin": …, "classlink_name": …}``,
``{"ew_teacher_id": …}``). ``null`` means the subject did not exist on that side of the change.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, delete, select, tuple_
from sqlalchemy.orm import Session

from services.common.bulk import bulk_insert
from services.sync.store.models import RunChange, SyncRun
from services.sync.vocabulary import ChangeAction, ChangeSubject, SyncRunState

BATCH = 1000
TABLE = cast(Table, RunChange.__table__)


@dataclass(frozen=True)
class TeacherSnapshot:
    """A teacher as EW had it: what a revert puts back and what a later change is compared with."""

    given_name: str
    family_name: str
    email: str
    school_ids: tuple[str, ...]
    active: bool
    archive_reason: str = ""

    def to_json(self) -> dict[str, Any]:
        """The stored form (built by hand: ``asdict`` deep-copies, and a journal holds 100,000 of these)."""
        return {
            "given_name": self.given_name,
            "family_name": self.family_name,
            "email": self.email,
            "school_ids": sorted(self.school_ids),
            "active": self.active,
            "archive_reason": self.archive_reason,
        }

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> TeacherSnapshot:
        """Read a stored teacher state."""
        return cls(
            given_name=str(value["given_name"]),
            family_name=str(value["family_name"]),
            email=str(value["email"]),
            school_ids=tuple(sorted(value["school_ids"])),
            active=bool(value["active"]),
            archive_reason=str(value.get("archive_reason") or ""),
        )


@dataclass(frozen=True)
class JournalEntry:
    """One change a run made: the subject, what happened, and the states before and after."""

    subject: ChangeSubject
    subject_id: str
    action: ChangeAction
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    reason: str = ""


def _dump(value: dict[str, Any] | None) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"), sort_keys=True)


def load(text: str | None) -> dict[str, Any] | None:
    """A stored state (None when the subject did not exist)."""
    return None if text is None else dict(json.loads(text))


def insert_changes(
    session: Session,
    run_id: str,
    district_id: str,
    entries: Iterable[JournalEntry],
    now: dt.datetime,
    on_batch: Callable[[int], None] | None = None,
    *,
    first_position: int = 0,
) -> None:
    """Store a run's journal entries in order, in bulk batches (``COPY`` on PostgreSQL; no ORM objects).

    ``on_batch`` hears how many entries are stored after each batch; ``first_position`` is the
    position of the first entry (a journal written in several transactions).
    """
    batch: list[dict[str, Any]] = []
    for position, entry in enumerate(entries, start=first_position):
        batch.append(
            {
                "run_id": run_id,
                "position": position,
                "district_id": district_id,
                "subject": entry.subject,
                "subject_id": entry.subject_id,
                "action": entry.action,
                "before_json": _dump(entry.before),
                "after_json": _dump(entry.after),
                "reason": entry.reason or None,
                "time": now,
            }
        )
        if len(batch) == BATCH:
            bulk_insert(session.connection(), TABLE, batch)
            batch = []
            if on_batch is not None:
                on_batch(position + 1 - first_position)
    bulk_insert(session.connection(), TABLE, batch)


def delete_changes(session: Session, run_id: str) -> None:
    """Forget a run's journal (a partial one, left by a worker that stopped while writing it)."""
    session.execute(delete(RunChange).where(RunChange.run_id == run_id))


def changes_of_run(session: Session, run_id: str) -> list[RunChange]:
    """A run's journal, in the order it was written."""
    return list(
        session.scalars(select(RunChange).where(RunChange.run_id == run_id).order_by(RunChange.position))
    )


def later_runs(
    session: Session, district_id: str, subject_ids: Sequence[str], after: dt.datetime
) -> dict[str, str]:
    """For each subject a run journaled after ``after``: the latest such run's id."""
    latest: dict[str, tuple[dt.datetime, str]] = {}
    for start in range(0, len(subject_ids), 500):
        rows = session.execute(
            select(RunChange.subject_id, RunChange.time, RunChange.run_id).where(
                RunChange.district_id == district_id,
                RunChange.subject_id.in_(subject_ids[start : start + 500]),
                RunChange.time > after,
            )
        )
        for subject_id, time, run_id in rows:
            if subject_id not in latest or latest[subject_id] < (time, run_id):
                latest[subject_id] = (time, run_id)
    return {subject_id: run_id for subject_id, (_, run_id) in latest.items()}


def subject_history(
    session: Session,
    district_id: str,
    subject_id: str,
    after: tuple[dt.datetime, str, int] | None,
    limit: int,
) -> list[tuple[RunChange, SyncRun]]:
    """The journal entries about one subject, oldest first, with their runs, after the cursor."""
    query = (
        select(RunChange, SyncRun)
        .join(SyncRun, SyncRun.id == RunChange.run_id)
        .where(RunChange.district_id == district_id, RunChange.subject_id == subject_id)
        # A running run is still writing its journal; it shows once the run has ended.
        .where(SyncRun.state != SyncRunState.RUNNING)
    )
    if after is not None:
        query = query.where(tuple_(RunChange.time, RunChange.run_id, RunChange.position) > tuple_(*after))
    query = query.order_by(RunChange.time, RunChange.run_id, RunChange.position).limit(limit)
    return [(change, run) for change, run in session.execute(query)]
