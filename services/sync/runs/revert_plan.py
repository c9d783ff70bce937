"""What reverting a run does, computed from its journal and EW as it is now (no I/O here).

Every journal entry is undone only when its subject is still exactly as the run left it: a teacher
field for field (names, email, schools, state, archive reason), a created school by name and state,
a mapping or link by value. Anything else changed since, by a later run or a person, and is listed
as a conflict naming the later run when one journaled it. Undoing puts the "before" state back:
teachers the run added are removed, the others restored; schools it created are removed (the roster
archives one that a teacher still belongs to); mappings and links get their old value back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ew.roster.v1 import roster_pb2

from services.sync.planning.planner import EwRoster
from services.sync.runs.change_journal import OwnRecords, snapshot
from services.sync.store.models import RunChange
from services.sync.store.run_changes import JournalEntry, TeacherSnapshot, load
from services.sync.vocabulary import ChangeAction, ChangeSubject


@dataclass(frozen=True)
class Conflict:
    """A journal entry left as it is: its subject changed since the run (``later_run_id`` when a run did)."""

    subject: ChangeSubject
    subject_id: str
    display_name: str
    later_run_id: str | None

    def describe(self) -> str:
        """One sentence for an error message or the CLI."""
        who = f"run {self.later_run_id}" if self.later_run_id else "someone outside the sync"
        return f"{self.subject.value.lower()} {self.display_name} ({self.subject_id}) was changed by {who}"


@dataclass(frozen=True)
class Undo:
    """One journal entry undone: what the run did, and the journal entry of the revert itself."""

    undone: ChangeAction
    display_name: str
    entry: JournalEntry


@dataclass
class RevertPlan:
    """The roster changes, the sync records to put back, what is undone and what is left."""

    changes: list[roster_pb2.Change] = field(default_factory=list)
    mappings: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    links: dict[str, str | None] = field(default_factory=dict)
    undos: list[Undo] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)


def _teacher_name(state: dict[str, Any] | None) -> str:
    if state is None:
        return ""
    return f"{state['given_name']} {state['family_name']} <{state['email']}>"


def _restore(teacher_id: str, before: TeacherSnapshot) -> roster_pb2.Change:
    return roster_pb2.Change(
        restore_teacher=roster_pb2.RestoreTeacherChange(
            teacher_id=teacher_id,
            given_name=before.given_name,
            family_name=before.family_name,
            email=before.email,
            school_ids=before.school_ids,
            archived=not before.active,
            archive_reason=before.archive_reason,
        )
    )


def _current_records(subject: ChangeSubject, subject_id: str, now: OwnRecords) -> dict[str, Any] | None:
    if subject is ChangeSubject.MAPPING:
        return now.mappings.get(subject_id)
    link = now.links.get(subject_id)
    return None if link is None else {"ew_teacher_id": link}


class _Planner:
    def __init__(self, ew: EwRoster, records: OwnRecords, later: Mapping[str, str], reason: str) -> None:
        self.teachers = {teacher.teacher_id: snapshot(teacher) for teacher in ew.teachers}
        self.schools = {school.school_id: school for school in ew.schools}
        self.records = records
        self.later = later
        self.reason = reason
        self.plan = RevertPlan()

    def conflict(self, change: RunChange, name: str) -> None:
        self.plan.conflicts.append(
            Conflict(change.subject, change.subject_id, name, self.later.get(change.subject_id))
        )

    def undo(self, change: RunChange, name: str, entry: JournalEntry) -> None:
        self.plan.undos.append(Undo(change.action, name, entry))

    def teacher(self, change: RunChange) -> None:
        before, after = load(change.before_json), load(change.after_json)
        assert after is not None
        name = _teacher_name(after)
        current = self.teachers.get(change.subject_id)
        if current is None or current != TeacherSnapshot.from_json(after):
            self.conflict(change, name)
            return
        if before is None:
            self.plan.changes.append(
                roster_pb2.Change(remove_teacher=roster_pb2.RemoveTeacherChange(teacher_id=change.subject_id))
            )
            entry = JournalEntry(
                ChangeSubject.TEACHER, change.subject_id, ChangeAction.REMOVED, after, None, self.reason
            )
        else:
            self.plan.changes.append(_restore(change.subject_id, TeacherSnapshot.from_json(before)))
            entry = JournalEntry(
                ChangeSubject.TEACHER, change.subject_id, ChangeAction.RESTORED, after, before, self.reason
            )
        self.undo(change, name, entry)

    def school(self, change: RunChange) -> None:
        after = load(change.after_json) or {}
        name = str(after.get("name", ""))
        current = self.schools.get(change.subject_id)
        if current is None or not current.active or current.name != name:
            self.conflict(change, name)
            return
        self.plan.changes.append(
            roster_pb2.Change(remove_school=roster_pb2.RemoveSchoolChange(school_id=change.subject_id))
        )
        entry = JournalEntry(
            ChangeSubject.SCHOOL, change.subject_id, ChangeAction.REMOVED, after, None, self.reason
        )
        self.undo(change, name, entry)

    def record(self, change: RunChange) -> None:
        before, after = load(change.before_json), load(change.after_json)
        current = _current_records(change.subject, change.subject_id, self.records)
        if current != after:
            self.conflict(change, change.subject_id)
            return
        if change.subject is ChangeSubject.MAPPING:
            self.plan.mappings[change.subject_id] = before
        else:
            self.plan.links[change.subject_id] = None if before is None else str(before["ew_teacher_id"])
        entry = JournalEntry(
            change.subject, change.subject_id, ChangeAction.WRITTEN, after, before, self.reason
        )
        self.undo(change, change.subject_id, entry)


def plan_revert(
    journal: Sequence[RunChange], ew: EwRoster, records: OwnRecords, later: Mapping[str, str], reason: str
) -> RevertPlan:
    """Undo every entry of ``journal`` whose subject is as the run left it; list the others as conflicts.

    ``later`` names, per subject id, the latest run that journaled it after the reverted run.
    """
    planner = _Planner(ew, records, later, reason)
    handlers = {
        ChangeSubject.TEACHER: planner.teacher,
        ChangeSubject.SCHOOL: planner.school,
        ChangeSubject.MAPPING: planner.record,
        ChangeSubject.LINK: planner.record,
    }
    for change in journal:
        handlers[change.subject](change)
    return planner.plan
