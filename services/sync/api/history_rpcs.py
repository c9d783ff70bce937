"""The record RPCs of SyncService: ListAuditEvents and ListTeacherHistory (reads only; nothing edits them)."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any

import grpc
from ew.sync.v1 import sync_pb2, sync_service_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from services.common.errors import bad_field
from services.sync.api.access import authorize_sync_admin
from services.sync.api.names import page_size, parse_parent
from services.sync.api.proto_enums import from_proto, to_proto
from services.sync.api.run_rpcs import run_name
from services.sync.runs.teacher_history import HistoryEntry, TeacherHistories
from services.sync.setup.audit_trail import AuditTrail
from services.sync.store.audit import AuditFilter
from services.sync.store.models import AuditEvent
from services.sync.vocabulary import AuditAction

Context = grpc.aio.ServicerContext[Any, Any]

MAX_ACTOR = 256
# A token subject never holds control characters; PostgreSQL refuses a NUL in a query parameter.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _stamp(value: Any) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def _filters(request: sync_service_pb2.ListAuditEventsRequest) -> AuditFilter:
    action: AuditAction | None = None
    if request.action:
        try:
            action = from_proto(AuditAction, request.action)
        except ValueError:
            raise bad_field("action", f"unknown audit action {request.action}") from None
    start = request.start_time.ToDatetime(tzinfo=dt.UTC) if request.HasField("start_time") else None
    end = request.end_time.ToDatetime(tzinfo=dt.UTC) if request.HasField("end_time") else None
    if start is not None and end is not None and end <= start:
        raise bad_field("end_time", "must be after start_time")
    return AuditFilter(action=action, actor=_actor(request.actor), start_time=start, end_time=end)


def _actor(value: str) -> str | None:
    actor = value.strip()
    if len(actor) > MAX_ACTOR or _CONTROL.search(actor):
        raise bad_field(
            "actor", f"must be a token subject: at most {MAX_ACTOR} characters and no control characters"
        )
    return actor or None


def _teacher_id(value: str) -> str:
    teacher_id = value.strip()
    try:
        uuid.UUID(teacher_id)
    except ValueError:
        raise bad_field("teacher_id", f"{teacher_id[:80]!r} is not an EW teacher id (a UUID)") from None
    return teacher_id


def event_message(event: AuditEvent) -> sync_pb2.AuditEvent:
    """A stored audit event as the API shows it."""
    return sync_pb2.AuditEvent(
        time=_stamp(event.time),
        actor=event.actor,
        district_id=event.district_id,
        action=to_proto(event.action),
        target=event.target,
        outcome=event.outcome,
        message=event.message or "",
    )


def history_message(entry: HistoryEntry) -> sync_pb2.TeacherHistoryEntry:
    """One change of a teacher as the API shows it."""
    return sync_pb2.TeacherHistoryEntry(
        run=run_name(entry.run.district_id, entry.run.id),
        trigger=to_proto(entry.run.trigger),
        requested_by=entry.run.requested_by,
        time=_stamp(entry.change.time),
        action=to_proto(entry.change.action),
        field_changes=[
            sync_pb2.FieldChange(field=f, old_value=o, new_value=n) for f, o, n in entry.field_changes
        ],
        schools_added=entry.schools_added,
        schools_removed=entry.schools_removed,
        reason=entry.change.reason or "",
    )


class HistoryRpcs:
    """Mixin of SyncServicer holding the audit trail and teacher history RPCs."""

    audit_trail: AuditTrail
    teacher_histories: TeacherHistories

    async def ListAuditEvents(  # noqa: N802
        self, request: sync_service_pb2.ListAuditEventsRequest, context: Context
    ) -> sync_service_pb2.ListAuditEventsResponse:
        """One page of the district's audit trail, newest first."""
        district_id = parse_parent(request.parent)
        size = page_size(request.page_size)
        filters = _filters(request)
        authorize_sync_admin(district_id)
        events, token = await self.audit_trail.list(
            district_id, filters, page_size=size, page_token=request.page_token
        )
        return sync_service_pb2.ListAuditEventsResponse(
            events=[event_message(e) for e in events], next_page_token=token
        )

    async def ListTeacherHistory(  # noqa: N802
        self, request: sync_service_pb2.ListTeacherHistoryRequest, context: Context
    ) -> sync_service_pb2.ListTeacherHistoryResponse:
        """One page of every change runs made to one teacher, oldest first."""
        district_id = parse_parent(request.parent)
        size = page_size(request.page_size)
        teacher_id = _teacher_id(request.teacher_id)
        authorize_sync_admin(district_id)
        entries, token = await self.teacher_histories.list(
            district_id, teacher_id, page_size=size, page_token=request.page_token
        )
        return sync_service_pb2.ListTeacherHistoryResponse(
            entries=[history_message(e) for e in entries], next_page_token=token
        )
