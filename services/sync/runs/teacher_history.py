"""ListTeacherHistory: every change any run made to one EW teacher, from the runs' change journals."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from services.common.errors import bad_field
from services.common.pagetokens import SyncPageTokens
from services.sync.app import App
from services.sync.store import run_changes
from services.sync.store.models import RunChange, SyncRun
from services.sync.store.run_changes import TeacherSnapshot
from services.sync.vocabulary import ChangeSubject

RESTART_HINT = "omit page_token to list from the teacher's first change"
FIELDS = ("given_name", "family_name", "email")


@dataclass(frozen=True)
class HistoryEntry:
    """One change of a teacher: the run, what it did, the fields and schools that changed, and why."""

    run: SyncRun
    change: RunChange
    field_changes: tuple[tuple[str, str, str], ...]
    schools_added: tuple[str, ...]
    schools_removed: tuple[str, ...]


def _state(active: bool) -> str:
    return "ACTIVE" if active else "ARCHIVED"


def describe(run: SyncRun, change: RunChange) -> HistoryEntry:
    """What a journal entry about a teacher changed, field by field."""
    before_json, after_json = run_changes.load(change.before_json), run_changes.load(change.after_json)
    before = TeacherSnapshot.from_json(before_json) if before_json else None
    after = TeacherSnapshot.from_json(after_json) if after_json else None
    fields: list[tuple[str, str, str]] = []
    for name in FIELDS:
        old = str(getattr(before, name)) if before else ""
        new = str(getattr(after, name)) if after else ""
        if old != new:
            fields.append((name, old, new))
    old_state = _state(before.active) if before else ""
    new_state = _state(after.active) if after else ""
    if old_state != new_state:
        fields.append(("state", old_state, new_state))
    old_schools = set(before.school_ids) if before else set()
    new_schools = set(after.school_ids) if after else set()
    return HistoryEntry(
        run,
        change,
        tuple(fields),
        tuple(sorted(new_schools - old_schools)),
        tuple(sorted(old_schools - new_schools)),
    )


def _entries(
    session: Session,
    district_id: str,
    teacher_id: str,
    after: tuple[dt.datetime, str, int] | None,
    limit: int,
) -> list[HistoryEntry]:
    rows = run_changes.subject_history(session, district_id, teacher_id, after, limit)
    entries = [
        describe(run, change)
        for run, change in ((r, c) for c, r in rows)
        if change.subject is ChangeSubject.TEACHER
    ]
    session.expunge_all()
    return entries


class TeacherHistories:
    """The teacher-history use case of one sync service."""

    def __init__(self, app: App, tokens: SyncPageTokens) -> None:
        self._app = app
        self._tokens = tokens

    async def list(
        self, district_id: str, teacher_id: str, *, page_size: int, page_token: str
    ) -> tuple[Sequence[HistoryEntry], str]:
        """One page of the teacher's changes, oldest first, and the next page's token ("" at the end)."""
        if not teacher_id or len(teacher_id) > 255:
            raise bad_field("teacher_id", "required: the EW teacher id")
        kind = f"teacherHistory:{teacher_id}"
        after: tuple[dt.datetime, str, int] | None = None
        if page_token:
            time, run_id, position = self._tokens.decode(
                kind, district_id, page_token, restart_hint=RESTART_HINT, types=[str, str, int]
            )
            try:
                after = (dt.datetime.fromisoformat(time), run_id, position)
            except ValueError:
                raise bad_field("page_token", f"not a page token of this list; {RESTART_HINT}") from None
        entries = await self._app.read(
            lambda session: _entries(session, district_id, teacher_id, after, page_size + 1)
        )
        if len(entries) <= page_size:
            return entries, ""
        page = entries[:page_size]
        last = page[-1].change
        return page, self._tokens.encode(
            kind, district_id, [last.time.isoformat(), last.run_id, last.position]
        )
