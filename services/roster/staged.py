"""Typed rows a change set stages: what ``changesets`` builds and ``repository`` stores.

One frozen dataclass per staged table, so a row cannot be missing a column or carry a typo'd key;
the repository maps them to columns in one place (``repository.stage``).
"""

from __future__ import annotations

from dataclasses import dataclass

from services.roster.domain import ChangeCounts, Outcome, SchoolChangeKind, TeacherChangeKind


@dataclass(frozen=True)
class StagedSchoolRow:
    """A school the change set creates, with the id allocated when staging."""

    ref: str
    school_id: str
    display_name: str


@dataclass(frozen=True)
class StagedSchoolChangeRow:
    """A rename, archive or merge of an existing school, with the revisions staging read.

    Renames carry ``display_name``; merges carry the target and the target's revision.
    """

    school_id: str
    kind: SchoolChangeKind
    read_revision: int
    display_name: str | None = None
    into_school_id: str | None = None
    into_read_revision: int | None = None


@dataclass(frozen=True)
class StagedTeacherRow:
    """One teacher change and what staging read: ``read_revision`` is None when it creates the teacher.

    Upserts carry ``ref``, the names, the trimmed email and its key; archives carry ``reason``.
    """

    position: int
    kind: TeacherChangeKind
    outcome: Outcome
    teacher_id: str
    read_revision: int | None
    ref: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    email: str | None = None
    upsert_email_key: str | None = None
    schools_changed: bool = False
    reactivate: bool = False
    reason: str | None = None
    restore_state: str | None = None


@dataclass(frozen=True)
class StagedMembershipRow:
    """One school of a created teacher or of a teacher whose school list changes."""

    teacher_id: str
    school_id: str


@dataclass(frozen=True)
class StagedTeacherKey:
    """The unique keys of an already staged teacher change (what a new batch may clash with)."""

    position: int
    teacher_id: str
    ref: str | None
    upsert_email_key: str | None


@dataclass(frozen=True)
class StagedBatchRows:
    """Every row one batch stages, and the counts it adds to the change set."""

    schools: tuple[StagedSchoolRow, ...]
    teachers: tuple[StagedTeacherRow, ...]
    memberships: tuple[StagedMembershipRow, ...]
    school_changes: tuple[StagedSchoolChangeRow, ...] = ()

    @property
    def counts(self) -> ChangeCounts:
        """The batch's counts by kind, derived from its rows."""
        upserts = [t for t in self.teachers if t.kind is TeacherChangeKind.UPSERT]
        return ChangeCounts(
            schools_created=len(self.schools),
            teachers_created=sum(t.outcome is Outcome.CREATED for t in upserts),
            teachers_updated=sum(t.outcome is Outcome.UPDATED for t in upserts),
            teachers_unchanged=sum(t.outcome is Outcome.UNCHANGED for t in upserts),
            teachers_archived=sum(t.kind is TeacherChangeKind.ARCHIVE for t in self.teachers),
            teachers_reactivated=sum(
                t.kind is TeacherChangeKind.REACTIVATE or t.reactivate for t in self.teachers
            ),
            schools_renamed=sum(c.kind is SchoolChangeKind.RENAME for c in self.school_changes),
            schools_archived=sum(c.kind is SchoolChangeKind.ARCHIVE for c in self.school_changes),
            schools_merged=sum(c.kind is SchoolChangeKind.MERGE for c in self.school_changes),
            teachers_restored=sum(t.kind is TeacherChangeKind.RESTORE for t in self.teachers),
            teachers_removed=sum(t.kind is TeacherChangeKind.REMOVE for t in self.teachers),
            schools_removed=sum(c.kind is SchoolChangeKind.REMOVE for c in self.school_changes),
        )
