"""The sync service's tables, as SQLAlchemy 2.x typed models (the schema itself comes from migrations).

Ids are UUID strings; times are stored in UTC and read back timezone-aware. Enumerations are stored
as their names in plain strings (no native database enums), so adding a value needs no type change;
the enumerations themselves live in ``services.sync.vocabulary``.
"""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import (
    Boolean,
    Date,
    Enum,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.common.db import UTCDateTime, new_metadata
from services.sync.vocabulary import (
    AuditAction,
    AuthMethod,
    AutoSyncCadence,
    ChangeAction,
    ChangeSubject,
    ConnectMethod,
    MappingOrigin,
    OneRosterVersion,
    PlanItemKind,
    PlanPurpose,
    SkipReason,
    SyncPhase,
    SyncRunState,
    SyncTrigger,
    WebhookEventType,
)

ID = String(36)
DISTRICT_ID = String(64)
SOURCED_ID = String(255)
NAME = String(300)
EMAIL = String(320)


def _enum(cls: type[enum.StrEnum]) -> Enum:
    """A string column holding one of ``cls``'s values (no native enum type, no CHECK constraint)."""
    return Enum(cls, native_enum=False, create_constraint=False, length=32, validate_strings=True)


class Base(DeclarativeBase):
    """Base of the sync service's models: naming convention and timezone-aware timestamps."""

    metadata = new_metadata()
    type_annotation_map = {dt.datetime: UTCDateTime()}


class Connection(Base):
    """A district's OneRoster connection; the secret is stored only as a Fernet token."""

    __tablename__ = "connections"

    district_id: Mapped[str] = mapped_column(DISTRICT_ID, primary_key=True)
    server_url: Mapped[str] = mapped_column(String(2048))
    auth_method: Mapped[AuthMethod] = mapped_column(_enum(AuthMethod))
    oneroster_version: Mapped[OneRosterVersion] = mapped_column(_enum(OneRosterVersion))
    client_id: Mapped[str] = mapped_column(String(512))
    secret_ciphertext: Mapped[str] = mapped_column(Text)
    secret_hint: Mapped[str] = mapped_column(String(64))
    tenant_id: Mapped[str | None] = mapped_column(String(255))
    # OAuth 2 only; NULL means the token endpoint is derived from server_url.
    token_url: Mapped[str | None] = mapped_column(String(2048))
    connect_method: Mapped[ConnectMethod] = mapped_column(_enum(ConnectMethod))
    create_time: Mapped[dt.datetime]
    update_time: Mapped[dt.datetime]
    last_success_time: Mapped[dt.datetime | None]


class SignInState(Base):
    """A pending ClassLink sign-in; only the sha256 of the state is kept, and it is single use."""

    __tablename__ = "sign_in_states"

    state_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    district_id: Mapped[str] = mapped_column(DISTRICT_ID)
    redirect_uri: Mapped[str] = mapped_column(String(2048))
    requested_by: Mapped[str] = mapped_column(String(255))
    create_time: Mapped[dt.datetime]
    expire_time: Mapped[dt.datetime]
    used_time: Mapped[dt.datetime | None]


class SchoolMapping(Base):
    """Where one ClassLink school lands in EW; ``ew_school_id`` is NULL only for UNMAPPED rows."""

    __tablename__ = "school_mappings"
    __table_args__ = (
        UniqueConstraint("district_id", "classlink_school_id"),
        UniqueConstraint("district_id", "ew_school_id"),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    district_id: Mapped[str] = mapped_column(DISTRICT_ID)
    classlink_school_id: Mapped[str] = mapped_column(SOURCED_ID)
    ew_school_id: Mapped[str | None] = mapped_column(ID)
    origin: Mapped[MappingOrigin] = mapped_column(_enum(MappingOrigin))
    classlink_name: Mapped[str] = mapped_column(NAME)
    create_time: Mapped[dt.datetime]
    update_time: Mapped[dt.datetime]


class TeacherLink(Base):
    """A ClassLink user linked to the EW teacher a sync created or matched for them.

    Several users may link one teacher: the rows of one person (one per school on some servers).
    """

    __tablename__ = "teacher_links"
    __table_args__ = (
        PrimaryKeyConstraint("district_id", "classlink_user_id"),
        Index("ix_teacher_links_district_id_ew_teacher_id", "district_id", "ew_teacher_id"),
    )

    district_id: Mapped[str] = mapped_column(DISTRICT_ID)
    classlink_user_id: Mapped[str] = mapped_column(SOURCED_ID)
    ew_teacher_id: Mapped[str] = mapped_column(ID)
    create_time: Mapped[dt.datetime]
    update_time: Mapped[dt.datetime]


class Plan(Base):
    """A stored plan: a preview (expires) or the plan a run applies; items hold changes and skips."""

    __tablename__ = "plans"
    __table_args__ = (Index("ix_plans_district_id_create_time", "district_id", "create_time"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    district_id: Mapped[str] = mapped_column(DISTRICT_ID)
    purpose: Mapped[PlanPurpose] = mapped_column(_enum(PlanPurpose))
    create_time: Mapped[dt.datetime]
    read_time: Mapped[dt.datetime]
    expire_time: Mapped[dt.datetime | None]
    summary_json: Mapped[str] = mapped_column(Text)
    guard_json: Mapped[str] = mapped_column(Text)
    item_count: Mapped[int] = mapped_column(Integer)


class PlanItem(Base):
    """One change or skip of a plan, at its display position; unchanged teachers are only counted."""

    __tablename__ = "plan_items"
    __table_args__ = (
        PrimaryKeyConstraint("plan_id", "position"),
        Index("ix_plan_items_plan_id_kind_position", "plan_id", "kind", "position"),
    )

    plan_id: Mapped[str] = mapped_column(ID, ForeignKey("plans.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    kind: Mapped[PlanItemKind] = mapped_column(_enum(PlanItemKind))
    classlink_id: Mapped[str | None] = mapped_column(SOURCED_ID)
    ew_id: Mapped[str | None] = mapped_column(ID)
    display_name: Mapped[str] = mapped_column(NAME)
    email: Mapped[str | None] = mapped_column(EMAIL)
    details_json: Mapped[str] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    skip_reason: Mapped[SkipReason | None] = mapped_column(_enum(SkipReason))


ACTIVE_RUN_STATES_SQL = "state IN ('QUEUED', 'RUNNING')"
ACTIVE_SYNC_SQL = f"{ACTIVE_RUN_STATES_SQL} AND \"trigger\" != 'PREVIEW'"
ACTIVE_PREVIEW_SQL = f"{ACTIVE_RUN_STATES_SQL} AND \"trigger\" = 'PREVIEW'"


class SyncRun(Base):
    """One sync (or preview job) of one district.

    Partial unique indexes allow one active (QUEUED/RUNNING) sync and, beside it, one active preview
    job (trigger PREVIEW) per district.
    """

    __tablename__ = "sync_runs"
    __table_args__ = (
        Index(
            "uq_sync_runs_active_district",
            "district_id",
            unique=True,
            sqlite_where=text(ACTIVE_SYNC_SQL),
            postgresql_where=text(ACTIVE_SYNC_SQL),
        ),
        Index(
            "uq_sync_runs_active_preview_district",
            "district_id",
            unique=True,
            sqlite_where=text(ACTIVE_PREVIEW_SQL),
            postgresql_where=text(ACTIVE_PREVIEW_SQL),
        ),
        Index("ix_sync_runs_district_id_create_time", "district_id", "create_time"),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    district_id: Mapped[str] = mapped_column(DISTRICT_ID)
    trigger: Mapped[SyncTrigger] = mapped_column(_enum(SyncTrigger))
    state: Mapped[SyncRunState] = mapped_column(_enum(SyncRunState))
    phase: Mapped[SyncPhase] = mapped_column(_enum(SyncPhase))
    percent: Mapped[int] = mapped_column(Integer)
    plan_id: Mapped[str | None] = mapped_column(ID, ForeignKey("plans.id"))
    change_set_name: Mapped[str | None] = mapped_column(String(255))
    # The run's change set may still be open: abandoning it failed, and recovery retries.
    abandon_pending: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # The roster service stopped answering during the commit; recovery's verdict says so.
    commit_interrupted: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # An administrator cancelled the RUNNING run: its worker stops at the next checkpoint.
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    approved_run_id: Mapped[str | None] = mapped_column(ID)
    requested_by: Mapped[str] = mapped_column(String(255))
    summary_json: Mapped[str | None] = mapped_column(Text)
    guard_json: Mapped[str | None] = mapped_column(Text)
    error_message: Mapped[str | None] = mapped_column(Text)
    attempt: Mapped[int] = mapped_column(Integer)
    worker_id: Mapped[str | None] = mapped_column(String(255))
    create_time: Mapped[dt.datetime]
    start_time: Mapped[dt.datetime | None]
    end_time: Mapped[dt.datetime | None]
    heartbeat_time: Mapped[dt.datetime | None]
    last_sequence: Mapped[int] = mapped_column(Integer)
    # A REVERT run: the run it reverted.
    reverted_run_id: Mapped[str | None] = mapped_column(ID)


class SyncRunEvent(Base):
    """A persisted progress event; sequences are 1, 2, 3, … per run without gaps."""

    __tablename__ = "sync_run_events"
    __table_args__ = (PrimaryKeyConstraint("run_id", "sequence"),)

    run_id: Mapped[str] = mapped_column(ID, ForeignKey("sync_runs.id", ondelete="CASCADE"))
    sequence: Mapped[int] = mapped_column(Integer)
    time: Mapped[dt.datetime]
    state: Mapped[SyncRunState] = mapped_column(_enum(SyncRunState))
    phase: Mapped[SyncPhase] = mapped_column(_enum(SyncPhase))
    percent: Mapped[int] = mapped_column(Integer)
    done: Mapped[int] = mapped_column(Integer)
    total: Mapped[int] = mapped_column(Integer)
    message: Mapped[str] = mapped_column(Text)
    summary_json: Mapped[str | None] = mapped_column(Text)


class AutoSyncSettings(Base):
    """A district's AutoSync schedule; ``next_run_time`` is NULL while AutoSync is off.

    The scheduler claims rows whose ``next_run_time`` has passed and moves it to the next due time.
    """

    __tablename__ = "autosync_settings"
    __table_args__ = (Index("ix_autosync_settings_next_run_time", "next_run_time"),)

    district_id: Mapped[str] = mapped_column(DISTRICT_ID, primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean)
    cadence: Mapped[AutoSyncCadence] = mapped_column(_enum(AutoSyncCadence))
    # Day of the month (1-31) for MONTHLY, ISO weekday (1 = Monday) for WEEKLY, unused for DAILY.
    day: Mapped[int] = mapped_column(Integer)
    hour: Mapped[int] = mapped_column(Integer)
    time_zone: Mapped[str] = mapped_column(String(64))
    next_run_time: Mapped[dt.datetime | None]
    last_auto_run_id: Mapped[str | None] = mapped_column(ID)
    update_by: Mapped[str] = mapped_column(String(255))
    create_time: Mapped[dt.datetime]
    update_time: Mapped[dt.datetime]


class AutoSyncPause(Base):
    """One pause window of a district's AutoSync: local dates, both inclusive."""

    __tablename__ = "autosync_pauses"
    __table_args__ = (PrimaryKeyConstraint("district_id", "position"),)

    district_id: Mapped[str] = mapped_column(
        DISTRICT_ID, ForeignKey("autosync_settings.district_id", ondelete="CASCADE")
    )
    position: Mapped[int] = mapped_column(Integer)
    start_date: Mapped[dt.date] = mapped_column(Date)
    end_date: Mapped[dt.date] = mapped_column(Date)


class OutboxEvent(Base):
    """A webhook event waiting for (or past) delivery; ``position`` orders a district's events.

    Written in the transaction of the change it reports, so no event is lost; the webhook sender
    delivers each district's events in ``position`` order, one at a time.
    """

    __tablename__ = "webhook_outbox"
    __table_args__ = (
        Index("ix_webhook_outbox_district_id_position", "district_id", "position"),
        Index("ix_webhook_outbox_delivered_time_next_attempt_time", "delivered_time", "next_attempt_time"),
    )

    position: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(ID, unique=True)
    district_id: Mapped[str] = mapped_column(DISTRICT_ID)
    event_type: Mapped[WebhookEventType] = mapped_column(_enum(WebhookEventType))
    # The exact JSON body: every attempt sends the same bytes (only the signature's time changes).
    body: Mapped[str] = mapped_column(Text)
    create_time: Mapped[dt.datetime]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_time: Mapped[dt.datetime]
    # A sender is delivering it until then; after, another sender may take it over.
    lease_until: Mapped[dt.datetime | None]
    delivered_time: Mapped[dt.datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)


class RunChange(Base):
    """One row of a run's change journal: what the run did to one subject, with the state before and after.

    Written in the run's bookkeeping transaction, so a SUCCEEDED run has its whole journal. States
    are JSON: a teacher's names, email, school ids, active flag and archive reason; a school's name;
    a mapping's EW school and origin; a link's EW teacher (``null`` when the subject did not exist).
    """

    __tablename__ = "run_changes"
    __table_args__ = (
        PrimaryKeyConstraint("run_id", "position"),
        Index("ix_run_changes_district_id_subject_id", "district_id", "subject_id"),
    )

    run_id: Mapped[str] = mapped_column(ID, ForeignKey("sync_runs.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    district_id: Mapped[str] = mapped_column(DISTRICT_ID)
    subject: Mapped[ChangeSubject] = mapped_column(_enum(ChangeSubject))
    subject_id: Mapped[str] = mapped_column(SOURCED_ID)
    action: Mapped[ChangeAction] = mapped_column(_enum(ChangeAction))
    before_json: Mapped[str | None] = mapped_column(Text)
    after_json: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    time: Mapped[dt.datetime]


class AuditEvent(Base):
    """One administrative action, allowed or refused: append-only (no RPC updates or deletes rows).

    ``outcome`` is ``OK`` or the refusal's gRPC status name; only pruning past the retention removes rows.
    """

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_district_id_time", "district_id", "time", "id"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    district_id: Mapped[str] = mapped_column(DISTRICT_ID)
    time: Mapped[dt.datetime]
    actor: Mapped[str] = mapped_column(String(255))
    action: Mapped[AuditAction] = mapped_column(_enum(AuditAction))
    target: Mapped[str] = mapped_column(Text)
    outcome: Mapped[str] = mapped_column(String(32))
    message: Mapped[str | None] = mapped_column(Text)
