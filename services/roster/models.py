"""The roster's tables, as SQLAlchemy 2.x typed models (the schema itself comes from migrations)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.common.db import UTCDateTime, new_metadata

ID = String(36)
NAME = String(200)


class Base(DeclarativeBase):
    """Base of the roster's models: naming convention and timezone-aware timestamps."""

    metadata = new_metadata()
    type_annotation_map = {dt.datetime: UTCDateTime()}


class District(Base):
    """A school district; every other row belongs to exactly one."""

    __tablename__ = "districts"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    display_name: Mapped[str] = mapped_column(NAME)
    create_time: Mapped[dt.datetime]


class School(Base):
    """A school of one district."""

    __tablename__ = "schools"
    __table_args__ = (Index("ix_schools_district_id_display_name", "district_id", "display_name", "id"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    district_id: Mapped[str] = mapped_column(ForeignKey("districts.id"))
    display_name: Mapped[str] = mapped_column(NAME)
    create_time: Mapped[dt.datetime]
    update_time: Mapped[dt.datetime]
    # ACTIVE or ARCHIVED; an archived school keeps its memberships and is hidden from matching.
    state: Mapped[str] = mapped_column(String(16))
    # The school this one was merged into (set only on archived schools).
    merged_into: Mapped[str | None] = mapped_column(ID)
    # Bumped on every change; change sets compare it to what they read.
    revision: Mapped[int] = mapped_column(BigInteger)


class Teacher(Base):
    """A teacher of one district; ``email_key`` (trimmed, case-folded email) is unique per district."""

    __tablename__ = "teachers"
    __table_args__ = (UniqueConstraint("district_id", "email_key"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    district_id: Mapped[str] = mapped_column(ForeignKey("districts.id"))
    given_name: Mapped[str] = mapped_column(NAME)
    family_name: Mapped[str] = mapped_column(NAME)
    email: Mapped[str] = mapped_column(String(254))
    email_key: Mapped[str] = mapped_column(String(254))
    state: Mapped[str] = mapped_column(String(16))
    archive_time: Mapped[dt.datetime | None]
    archive_reason: Mapped[str | None] = mapped_column(String(500))
    create_time: Mapped[dt.datetime]
    update_time: Mapped[dt.datetime]
    # Bumped on every change (schools included); change sets compare it to what they read.
    revision: Mapped[int] = mapped_column(BigInteger)


class TeacherSchool(Base):
    """Membership of a teacher in a school (many-to-many)."""

    __tablename__ = "teacher_schools"

    teacher_id: Mapped[str] = mapped_column(ForeignKey("teachers.id"), primary_key=True)
    school_id: Mapped[str] = mapped_column(ForeignKey("schools.id"), primary_key=True, index=True)


class IdempotencyRecord(Base):
    """The outcome of a batch call that carried a request id, so a retry returns it again."""

    __tablename__ = "idempotency_records"

    district_id: Mapped[str] = mapped_column(ForeignKey("districts.id"), primary_key=True)
    method: Mapped[str] = mapped_column(String(64), primary_key=True)
    request_id: Mapped[str] = mapped_column(ID, primary_key=True)
    # JSON list of the ids the first call returned, in request order.
    resource_ids: Mapped[str] = mapped_column(Text)
    create_time: Mapped[dt.datetime]


class ChangeSet(Base):
    """A batch of changes for one district that lands in one transaction, or not at all."""

    __tablename__ = "change_sets"
    __table_args__ = (
        UniqueConstraint("district_id", "request_id"),
        Index("ix_change_sets_state_expire_time", "state", "expire_time"),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    district_id: Mapped[str] = mapped_column(ForeignKey("districts.id"))
    request_id: Mapped[str | None] = mapped_column(ID)
    state: Mapped[str] = mapped_column(String(16))
    staged_schools_created: Mapped[int] = mapped_column(Integer, default=0)
    staged_teachers_created: Mapped[int] = mapped_column(Integer, default=0)
    staged_teachers_updated: Mapped[int] = mapped_column(Integer, default=0)
    staged_teachers_unchanged: Mapped[int] = mapped_column(Integer, default=0)
    staged_teachers_archived: Mapped[int] = mapped_column(Integer, default=0)
    staged_teachers_reactivated: Mapped[int] = mapped_column(Integer, default=0)
    staged_schools_renamed: Mapped[int] = mapped_column(Integer, default=0)
    staged_schools_archived: Mapped[int] = mapped_column(Integer, default=0)
    staged_schools_merged: Mapped[int] = mapped_column(Integer, default=0)
    staged_teachers_restored: Mapped[int] = mapped_column(Integer, default=0)
    staged_teachers_removed: Mapped[int] = mapped_column(Integer, default=0)
    staged_schools_removed: Mapped[int] = mapped_column(Integer, default=0)
    applied_schools_created: Mapped[int] = mapped_column(Integer, default=0)
    applied_teachers_created: Mapped[int] = mapped_column(Integer, default=0)
    applied_teachers_updated: Mapped[int] = mapped_column(Integer, default=0)
    applied_teachers_unchanged: Mapped[int] = mapped_column(Integer, default=0)
    applied_teachers_archived: Mapped[int] = mapped_column(Integer, default=0)
    applied_teachers_reactivated: Mapped[int] = mapped_column(Integer, default=0)
    applied_schools_renamed: Mapped[int] = mapped_column(Integer, default=0)
    applied_schools_archived: Mapped[int] = mapped_column(Integer, default=0)
    applied_schools_merged: Mapped[int] = mapped_column(Integer, default=0)
    applied_teachers_restored: Mapped[int] = mapped_column(Integer, default=0)
    applied_teachers_removed: Mapped[int] = mapped_column(Integer, default=0)
    applied_schools_removed: Mapped[int] = mapped_column(Integer, default=0)
    create_time: Mapped[dt.datetime]
    expire_time: Mapped[dt.datetime]
    end_time: Mapped[dt.datetime | None]
    abandon_reason: Mapped[str | None] = mapped_column(String(500))


class StagedBatch(Base):
    """A batch number already staged in a change set (makes StageChanges retries no-ops)."""

    __tablename__ = "staged_batches"

    change_set_id: Mapped[str] = mapped_column(ForeignKey("change_sets.id"), primary_key=True)
    batch_number: Mapped[int] = mapped_column(BigInteger, primary_key=True)


class StagedSchool(Base):
    """A school a change set will create; its id is allocated when staged."""

    __tablename__ = "staged_schools"

    change_set_id: Mapped[str] = mapped_column(ForeignKey("change_sets.id"), primary_key=True)
    ref: Mapped[str] = mapped_column(String(200), primary_key=True)
    school_id: Mapped[str] = mapped_column(ID)
    display_name: Mapped[str] = mapped_column(NAME)


class StagedSchoolChange(Base):
    """A rename, archive or merge of an existing school, and the revisions the change set read.

    ``into_school_id`` and ``into_read_revision`` are set for merges only; a school is touched by at
    most one change per change set (the key).
    """

    __tablename__ = "staged_school_changes"

    change_set_id: Mapped[str] = mapped_column(ForeignKey("change_sets.id"), primary_key=True)
    school_id: Mapped[str] = mapped_column(ID, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    read_revision: Mapped[int] = mapped_column(BigInteger)
    display_name: Mapped[str | None] = mapped_column(NAME)
    into_school_id: Mapped[str | None] = mapped_column(ID)
    into_read_revision: Mapped[int | None] = mapped_column(BigInteger)


class StagedTeacher(Base):
    """A teacher change (upsert, archive or reactivate) and what the change set read when staging it.

    ``teacher_id`` is the matched teacher, or a freshly allocated id when the upsert creates one;
    ``read_revision`` is the matched teacher's revision, NULL when the email had no teacher. The
    unique constraints make a teacher, an email and a ref appear at most once per change set.
    """

    __tablename__ = "staged_teachers"
    __table_args__ = (
        UniqueConstraint("change_set_id", "teacher_id"),
        UniqueConstraint("change_set_id", "ref"),
        UniqueConstraint("change_set_id", "upsert_email_key"),
    )

    change_set_id: Mapped[str] = mapped_column(ForeignKey("change_sets.id"), primary_key=True)
    position: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    outcome: Mapped[str] = mapped_column(String(16))
    teacher_id: Mapped[str] = mapped_column(ID)
    read_revision: Mapped[int | None] = mapped_column(BigInteger)
    ref: Mapped[str | None] = mapped_column(String(200))
    given_name: Mapped[str | None] = mapped_column(NAME)
    family_name: Mapped[str | None] = mapped_column(NAME)
    email: Mapped[str | None] = mapped_column(String(254))
    upsert_email_key: Mapped[str | None] = mapped_column(String(254))
    schools_changed: Mapped[bool] = mapped_column(default=False)
    reactivate: Mapped[bool] = mapped_column(default=False)
    reason: Mapped[str | None] = mapped_column(String(500))
    # RESTORE rows: the state the teacher is put back in (ACTIVE or ARCHIVED, with ``reason``).
    restore_state: Mapped[str | None] = mapped_column(String(16))


class StagedMembership(Base):
    """A membership the commit writes: one school of a created teacher or of a changed school list.

    School refs are resolved to the ids allocated when staging; teachers whose school list stays
    the same have no rows here. The key order lets the commit insert in ``teacher_schools`` order.
    """

    __tablename__ = "staged_memberships"

    change_set_id: Mapped[str] = mapped_column(ForeignKey("change_sets.id"), primary_key=True)
    teacher_id: Mapped[str] = mapped_column(ID, primary_key=True)
    school_id: Mapped[str] = mapped_column(ID, primary_key=True)


class ChangeSetResult(Base):
    """What a committed change set did for one ref: the resource id and the outcome."""

    __tablename__ = "change_set_results"

    change_set_id: Mapped[str] = mapped_column(ForeignKey("change_sets.id"), primary_key=True)
    kind: Mapped[int] = mapped_column(Integer, primary_key=True)
    ref: Mapped[str] = mapped_column(String(200), primary_key=True)
    resource_id: Mapped[str] = mapped_column(ID)
    outcome: Mapped[str] = mapped_column(String(16))


class AuditEvent(Base):
    """A roster change a person asked for (unarchive, archive, a change set commit), allowed or refused.

    Append-only: no RPC updates or deletes a row; only pruning past the retention removes them.
    ``outcome`` is ``OK`` or the refusal's gRPC status name.
    """

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_district_id_time", "district_id", "time", "id"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    district_id: Mapped[str] = mapped_column(String(64))
    time: Mapped[dt.datetime]
    actor: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(32))
    target: Mapped[str] = mapped_column(Text)
    outcome: Mapped[str] = mapped_column(String(32))
    message: Mapped[str | None] = mapped_column(Text)
