"""The roster's domain types: what use cases take and return, free of protobuf and SQL."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


class TeacherState(enum.StrEnum):
    """Whether a teacher is active."""

    ACTIVE = "ACTIVE"
    ARCHIVED = "ARCHIVED"


class SchoolState(enum.StrEnum):
    """Whether a school is in use; an archived school keeps its memberships and is hidden from matching."""

    ACTIVE = "ACTIVE"
    ARCHIVED = "ARCHIVED"


class SchoolChangeKind(enum.StrEnum):
    """Kinds of staged changes to existing schools."""

    RENAME = "RENAME"
    ARCHIVE = "ARCHIVE"
    MERGE = "MERGE"
    REMOVE = "REMOVE"


class AuditAction(enum.StrEnum):
    """A roster change people ask for, as the audit trail records it (values match the proto enum)."""

    UNARCHIVE_TEACHER = "UNARCHIVE_TEACHER"
    ARCHIVE_TEACHERS = "ARCHIVE_TEACHERS"
    COMMIT_CHANGE_SET = "COMMIT_CHANGE_SET"
    RENAME_SCHOOL = "RENAME_SCHOOL"
    ARCHIVE_SCHOOL = "ARCHIVE_SCHOOL"
    MERGE_SCHOOLS = "MERGE_SCHOOLS"


class ChangeSetState(enum.StrEnum):
    """The lifecycle of a change set."""

    OPEN = "OPEN"
    COMMITTED = "COMMITTED"
    ABANDONED = "ABANDONED"
    EXPIRED = "EXPIRED"


class ChangeKind(enum.IntEnum):
    """Kinds of changes that carry a ref (values match the proto enum, which orders results)."""

    CREATE_SCHOOL = 1
    UPSERT_TEACHER = 2


class TeacherChangeKind(enum.StrEnum):
    """Kinds of staged teacher changes."""

    UPSERT = "UPSERT"
    ARCHIVE = "ARCHIVE"
    REACTIVATE = "REACTIVATE"
    RESTORE = "RESTORE"
    REMOVE = "REMOVE"


class Outcome(enum.StrEnum):
    """What a write did (or will do) to one resource."""

    CREATED = "CREATED"
    UPDATED = "UPDATED"
    UNCHANGED = "UNCHANGED"
    ARCHIVED = "ARCHIVED"
    REACTIVATED = "REACTIVATED"
    RESTORED = "RESTORED"
    REMOVED = "REMOVED"


@dataclass(frozen=True)
class District:
    """A district."""

    district_id: str
    display_name: str
    create_time: dt.datetime


@dataclass(frozen=True)
class School:
    """A school of one district."""

    school_id: str
    district_id: str
    display_name: str
    create_time: dt.datetime
    update_time: dt.datetime
    state: SchoolState = SchoolState.ACTIVE
    merged_into: str | None = None
    revision: int = 1


@dataclass(frozen=True)
class Teacher:
    """A teacher with all of their schools (ids sorted)."""

    teacher_id: str
    district_id: str
    given_name: str
    family_name: str
    email: str
    school_ids: tuple[str, ...]
    state: TeacherState
    archive_time: dt.datetime | None
    archive_reason: str | None
    create_time: dt.datetime
    update_time: dt.datetime
    revision: int


@dataclass(frozen=True)
class TeacherInput:
    """The writable fields of a teacher, keyed by email."""

    given_name: str
    family_name: str
    email: str
    school_ids: tuple[str, ...]


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a listing."""

    items: list[T]
    next_page_token: str
    total_size: int = 0


@dataclass(frozen=True)
class TeacherFilter:
    """Filters of ListTeachers; None means no filter."""

    school_id: str | None = None
    state: TeacherState | None = None
    email: str | None = None


@dataclass
class ChangeCounts:
    """Counts of changes by kind."""

    schools_created: int = 0
    teachers_created: int = 0
    teachers_updated: int = 0
    teachers_unchanged: int = 0
    teachers_archived: int = 0
    teachers_reactivated: int = 0
    schools_renamed: int = 0
    schools_archived: int = 0
    schools_merged: int = 0
    teachers_restored: int = 0
    teachers_removed: int = 0
    schools_removed: int = 0


@dataclass(frozen=True)
class ChangeSet:
    """A change set and its counters."""

    change_set_id: str
    district_id: str
    state: ChangeSetState
    staged: ChangeCounts
    applied: ChangeCounts
    create_time: dt.datetime
    expire_time: dt.datetime
    end_time: dt.datetime | None
    abandon_reason: str | None


@dataclass(frozen=True)
class SchoolRef:
    """An existing school (``school_id``) or one the same change set creates (``school_ref``)."""

    school_id: str | None = None
    school_ref: str | None = None


@dataclass(frozen=True)
class CreateSchoolChange:
    """Create a school named ``display_name``; ``ref`` is the caller's key for it."""

    ref: str
    display_name: str


@dataclass(frozen=True)
class UpsertTeacherChange:
    """Create or update a teacher (by ``teacher_id`` when set, else by email)."""

    ref: str
    teacher_id: str | None
    given_name: str
    family_name: str
    email: str
    schools: tuple[SchoolRef, ...] = field(default_factory=tuple)
    reactivate: bool = False


@dataclass(frozen=True)
class ArchiveTeacherChange:
    """Archive an active teacher."""

    teacher_id: str
    reason: str


@dataclass(frozen=True)
class ReactivateTeacherChange:
    """Reactivate an archived teacher."""

    teacher_id: str


@dataclass(frozen=True)
class RenameSchoolChange:
    """Rename an active school."""

    school_id: str
    display_name: str


@dataclass(frozen=True)
class ArchiveSchoolChange:
    """Archive an active school; its teachers and their memberships stay as they are."""

    school_id: str


@dataclass(frozen=True)
class MergeSchoolChange:
    """Move every membership of ``school_id`` to ``into_school_id``, then archive ``school_id``."""

    school_id: str
    into_school_id: str


@dataclass(frozen=True)
class RemoveSchoolChange:
    """Delete a school no teacher belongs to when the commit lands; archive it when one still does."""

    school_id: str


@dataclass(frozen=True)
class RestoreTeacherChange:
    """Put a teacher back exactly as given: names, email, complete school list and state (an undo)."""

    teacher_id: str
    given_name: str
    family_name: str
    email: str
    school_ids: tuple[str, ...]
    archived: bool
    archive_reason: str


@dataclass(frozen=True)
class RemoveTeacherChange:
    """Delete a teacher and their memberships (an undo of the change that created them)."""

    teacher_id: str


SchoolChange = RenameSchoolChange | ArchiveSchoolChange | MergeSchoolChange | RemoveSchoolChange
TeacherChange = (
    UpsertTeacherChange
    | ArchiveTeacherChange
    | ReactivateTeacherChange
    | RestoreTeacherChange
    | RemoveTeacherChange
)
Change = CreateSchoolChange | TeacherChange | SchoolChange


@dataclass(frozen=True)
class ChangeSetResult:
    """What a committed change set did for one ref."""

    kind: ChangeKind
    ref: str
    resource_id: str
    outcome: Outcome


@dataclass(frozen=True)
class AuditRecord:
    """One audited roster call: who asked what in which district, and the outcome (``OK`` or a status)."""

    event_id: str
    district_id: str
    time: dt.datetime
    actor: str
    action: AuditAction
    target: str
    outcome: str
    message: str = ""
