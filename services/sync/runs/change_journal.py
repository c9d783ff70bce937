"""A run's change journal: the state before and after of every row it changed, in EW and in its own records.

Built after the commit from what the run read (the EW roster before planning), what it applied (the
plan, with the ids the commit created) and the sync's own mappings and links read just before and
just after the bookkeeping wrote them; the executor stores it in chunks before the run succeeds.
``RevertSyncRun`` puts the "before" states back; ``ListTeacherHistory`` reads the entries of one teacher.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from services.sync.planning import planner
from services.sync.runs.bookkeeping import CommitOutcome
from services.sync.store import links, mappings
from services.sync.store.run_changes import JournalEntry, TeacherSnapshot
from services.sync.vocabulary import ChangeAction, ChangeSubject


@dataclass(frozen=True)
class OwnRecords:
    """The sync's mappings (ClassLink school → stored values) and links (ClassLink user → EW teacher)."""

    mappings: dict[str, dict[str, Any]]
    links: dict[str, str]


def own_records(session: Session, district_id: str) -> OwnRecords:
    """The district's mappings and links as they are in this transaction."""
    return OwnRecords(
        mappings={
            m.classlink_school_id: {
                "ew_school_id": m.ew_school_id,
                "origin": m.origin.value,
                "classlink_name": m.classlink_name,
            }
            for m in mappings.list_mappings(session, district_id)
        },
        links=links.list_links(session, district_id),
    )


def snapshot(teacher: planner.EwTeacher) -> TeacherSnapshot:
    """An EW teacher as the journal stores it."""
    return TeacherSnapshot(
        given_name=teacher.given_name,
        family_name=teacher.family_name,
        email=teacher.email,
        school_ids=tuple(sorted(teacher.school_ids)),
        active=teacher.active,
        archive_reason="" if teacher.active else teacher.archive_reason,
    )


def _upserted(upsert: planner.TeacherUpsert, outcome: CommitOutcome) -> TeacherSnapshot:
    school_ids = {ref.school_id or outcome.school_ids[ref.create_ref] for ref in upsert.schools}
    return TeacherSnapshot(
        upsert.given_name, upsert.family_name, upsert.email.strip(), tuple(sorted(school_ids)), True
    )


def _teacher_entries(
    plan: planner.Plan, ew: planner.EwRoster, outcome: CommitOutcome
) -> Iterator[JournalEntry]:
    before = {teacher.teacher_id: snapshot(teacher) for teacher in ew.teachers}
    for upsert in plan.adds:
        teacher_id = outcome.teacher_ids[upsert.classlink_id]
        yield JournalEntry(
            ChangeSubject.TEACHER, teacher_id, ChangeAction.ADDED, None, _upserted(upsert, outcome).to_json()
        )
    for action, upserts in (
        (ChangeAction.UPDATED, plan.updates),
        (ChangeAction.REACTIVATED, plan.reactivations),
    ):
        for upsert in upserts:
            teacher_id = upsert.ew_teacher_id or outcome.teacher_ids[upsert.classlink_id]
            yield JournalEntry(
                ChangeSubject.TEACHER,
                teacher_id,
                action,
                before[teacher_id].to_json(),
                _upserted(upsert, outcome).to_json(),
            )
    for archive in plan.archives:
        was = before[archive.ew_teacher_id]
        after = TeacherSnapshot(
            was.given_name, was.family_name, was.email, was.school_ids, False, archive.reason
        )
        yield JournalEntry(
            ChangeSubject.TEACHER,
            archive.ew_teacher_id,
            ChangeAction.ARCHIVED,
            was.to_json(),
            after.to_json(),
            archive.reason,
        )


def _record_entries(before: OwnRecords, after: OwnRecords) -> Iterator[JournalEntry]:
    for subject, was, now in (
        (ChangeSubject.MAPPING, before.mappings, after.mappings),
        (ChangeSubject.LINK, before.links, after.links),
    ):
        for key in sorted(set(was) | set(now)):
            old, new = was.get(key), now.get(key)
            if old != new:
                yield JournalEntry(
                    subject, key, ChangeAction.WRITTEN, _wrap(subject, old), _wrap(subject, new)
                )


def _wrap(subject: ChangeSubject, value: Any) -> dict[str, Any] | None:
    """A mapping's stored values, or a link's EW teacher, as a journal state (None: there was none)."""
    if value is None:
        return None
    return dict(value) if subject is ChangeSubject.MAPPING else {"ew_teacher_id": value}


def applied_entries(plan: planner.Plan, ew: planner.EwRoster, outcome: CommitOutcome) -> list[JournalEntry]:
    """The journal's entries for what the change set did in EW: created schools, then teachers."""
    schools = [
        JournalEntry(
            ChangeSubject.SCHOOL,
            outcome.school_ids[create.classlink_id],
            ChangeAction.CREATED,
            None,
            {"name": create.name},
        )
        for create in plan.school_creates
    ]
    return [*schools, *_teacher_entries(plan, ew, outcome)]


def record_entries(before: OwnRecords, after: OwnRecords) -> list[JournalEntry]:
    """The journal's entries for the sync's own mappings and links the bookkeeping changed."""
    return list(_record_entries(before, after))
