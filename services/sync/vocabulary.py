"""The sync service's domain enumerations, each defined once.

The planner, the store (as plain strings) and the API (through ``services.sync.api.proto_enums``) all
use these classes; a value's name is its stored form and, behind the enum's prefix, its proto name.
"""

from __future__ import annotations

import enum


class AuthMethod(enum.StrEnum):
    """How OneRoster requests are authenticated."""

    OAUTH1 = "OAUTH1"
    BEARER = "BEARER"
    OAUTH2 = "OAUTH2"


class OneRosterVersion(enum.StrEnum):
    """The OneRoster version a server speaks."""

    V1P1 = "V1P1"
    V1P2 = "V1P2"


class ConnectMethod(enum.StrEnum):
    """How a connection was made."""

    SIGN_IN = "SIGN_IN"
    MANUAL = "MANUAL"


class MappingOrigin(enum.StrEnum):
    """How a ClassLink school got its EW school; ``UNMAPPED`` records an administrator's unmap."""

    AUTO = "AUTO"
    MANUAL = "MANUAL"
    CREATED = "CREATED"
    UNMAPPED = "UNMAPPED"


class PlanPurpose(enum.StrEnum):
    """Whether a stored plan is a preview or the plan of a run (storage only)."""

    PREVIEW = "PREVIEW"
    RUN = "RUN"


class PlanItemKind(enum.StrEnum):
    """The kind of one planned change or skip."""

    CREATE_SCHOOL = "CREATE_SCHOOL"
    ADD_TEACHER = "ADD_TEACHER"
    UPDATE_TEACHER = "UPDATE_TEACHER"
    ARCHIVE_TEACHER = "ARCHIVE_TEACHER"
    REACTIVATE_TEACHER = "REACTIVATE_TEACHER"
    SKIP = "SKIP"


class SkipReason(enum.StrEnum):
    """Why a ClassLink row was left out of a sync."""

    MISSING_EMAIL = "MISSING_EMAIL"
    INVALID_EMAIL = "INVALID_EMAIL"
    DUPLICATE_EMAIL = "DUPLICATE_EMAIL"
    UNREADABLE_ROW = "UNREADABLE_ROW"
    EMAIL_TAKEN = "EMAIL_TAKEN"
    MISSING_NAME = "MISSING_NAME"


class SyncTrigger(enum.StrEnum):
    """What started a run."""

    MANUAL = "MANUAL"
    APPROVAL = "APPROVAL"
    FORCE = "FORCE"
    AUTO = "AUTO"
    REVERT = "REVERT"
    PREVIEW = "PREVIEW"


class SyncRunState(enum.StrEnum):
    """The lifecycle of a run; QUEUED and RUNNING are the active states.

    PREVIEWED ends a preview job (trigger PREVIEW) whose plan is stored; it is no sync success.
    """

    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    NEEDS_REVIEW = "NEEDS_REVIEW"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    PREVIEWED = "PREVIEWED"


class SyncPhase(enum.StrEnum):
    """The phase of a run."""

    QUEUED = "QUEUED"
    CONNECTING = "CONNECTING"
    READING_SCHOOLS = "READING_SCHOOLS"
    READING_TEACHERS = "READING_TEACHERS"
    PLANNING = "PLANNING"
    CREATING_SCHOOLS = "CREATING_SCHOOLS"
    SYNCING_TEACHERS = "SYNCING_TEACHERS"
    ARCHIVING = "ARCHIVING"
    COMMITTING = "COMMITTING"
    DONE = "DONE"


class AutoSyncCadence(enum.StrEnum):
    """How often AutoSync runs."""

    MONTHLY = "MONTHLY"
    WEEKLY = "WEEKLY"
    DAILY = "DAILY"


class WebhookEventType(enum.StrEnum):
    """What a webhook event tells the EW product; the value is the event's ``type`` on the wire."""

    SYNC_RUN_NEEDS_REVIEW = "sync_run.needs_review"
    SYNC_RUN_FAILED = "sync_run.failed"
    SYNC_RUN_SUCCEEDED = "sync_run.succeeded"
    SYNC_RUN_CANCELLED = "sync_run.cancelled"
    AUTOSYNC_ENABLED = "autosync.enabled"
    AUTOSYNC_DISABLED = "autosync.disabled"


class ChangeSubject(enum.StrEnum):
    """What one entry of a run's change journal is about."""

    TEACHER = "TEACHER"
    SCHOOL = "SCHOOL"
    MAPPING = "MAPPING"
    LINK = "LINK"


class ChangeAction(enum.StrEnum):
    """What a run did to the subject of a journal entry."""

    ADDED = "ADDED"
    UPDATED = "UPDATED"
    ARCHIVED = "ARCHIVED"
    REACTIVATED = "REACTIVATED"
    CREATED = "CREATED"
    WRITTEN = "WRITTEN"
    RESTORED = "RESTORED"
    REMOVED = "REMOVED"


class AuditAction(enum.StrEnum):
    """An administrative action the audit trail records."""

    CONNECT = "CONNECT"
    DISCONNECT = "DISCONNECT"
    MAP_SCHOOLS = "MAP_SCHOOLS"
    UNMAP_SCHOOL = "UNMAP_SCHOOL"
    PREVIEW = "PREVIEW"
    START_RUN = "START_RUN"
    APPROVE_RUN = "APPROVE_RUN"
    REVERT_RUN = "REVERT_RUN"
    PREVIEW_REVERT = "PREVIEW_REVERT"
    MERGE_SCHOOL = "MERGE_SCHOOL"
    FORCE_SYNC = "FORCE_SYNC"
    SET_AUTOSYNC = "SET_AUTOSYNC"
    CANCEL_RUN = "CANCEL_RUN"
