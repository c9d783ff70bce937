"""The roster's audit trail: who unarchived, archived or committed a change set, allowed or refused.

Decision: the roster keeps its own trail for the writes people ask of it directly (the EW product's
"Unarchive", archiving, change sets that rename, archive or merge schools), because those calls never
pass through the sync service. The sync service's own writes (runs, reverts, merges it makes) carry
its service identity and are audited by the sync service, so they are not recorded twice here.
One interceptor records the calls of ``AUDITED_RPCS`` after the handler decided, the same way the
sync service's does; ``AuditLog`` lists them newest first and prunes them past their retention.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import grpc

from services.common.audit import outcome, request_name, requested_district
from services.common.auth_interceptor import current_principal
from services.common.errors import Unauthenticated, check_page_size
from services.common.grpc_handlers import Handler, WrappingInterceptor, rebuild_handler
from services.roster import repository as repo
from services.roster.domain import AuditAction, AuditRecord, Page
from services.roster.usecases import Store, require_district

log = logging.getLogger(__name__)

SERVICE_PREFIX = "/ew.roster.v1.RosterService/"
DEFAULT_PAGE = 100
MAX_PAGE = 1000


def _named(request: Any, response: Any) -> str:
    return request_name(request)


def _archived(request: Any, response: Any) -> str:
    return f"{', '.join(request.teacher_ids)} ({request.reason})"


def _committed(request: Any, response: Any) -> str:
    """The change set and, once committed, what it changed (school fixes first)."""
    if response is None:
        return str(request.name)
    applied = response.change_set.applied
    counts = [
        (applied.schools_renamed, "schools renamed"),
        (applied.schools_archived, "schools archived"),
        (applied.schools_merged, "schools merged"),
        (applied.schools_removed, "schools removed"),
        (applied.schools_created, "schools created"),
        (applied.teachers_created, "teachers created"),
        (applied.teachers_updated + applied.teachers_restored, "teachers updated"),
        (applied.teachers_archived, "teachers archived"),
        (applied.teachers_reactivated, "teachers reactivated"),
        (applied.teachers_removed, "teachers removed"),
    ]
    said = ", ".join(f"{count} {what}" for count, what in counts if count)
    return f"{request.name}: {said or 'nothing changed'}"


@dataclass(frozen=True)
class Audited:
    """An audited RPC: its action and how to name its target from the request and the response (or None)."""

    action: AuditAction
    target: Callable[[Any, Any], str]


AUDITED_RPCS: dict[str, Audited] = {
    "UnarchiveTeacher": Audited(AuditAction.UNARCHIVE_TEACHER, _named),
    "BatchArchiveTeachers": Audited(AuditAction.ARCHIVE_TEACHERS, _archived),
    "CommitChangeSet": Audited(AuditAction.COMMIT_CHANGE_SET, _committed),
    "RenameSchool": Audited(
        AuditAction.RENAME_SCHOOL, lambda request, _: f"{request.name} -> {request.display_name}"
    ),
    "ArchiveSchool": Audited(AuditAction.ARCHIVE_SCHOOL, _named),
    "MergeSchools": Audited(
        AuditAction.MERGE_SCHOOLS, lambda request, _: f"{request.name} -> {request.into_school}"
    ),
}


class AuditInterceptor(WrappingInterceptor):
    """Records the audited RPCs of people (not the sync service identity); install inside the error one."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def _record(self, audited: Audited, request: Any, response: Any, error: Exception | None) -> None:
        district_id = requested_district(request)
        try:
            principal = current_principal()
        except Unauthenticated:
            return
        if district_id is None or principal.is_service:
            return
        code, message = outcome(error)
        record = AuditRecord(
            str(uuid.uuid4()),
            district_id,
            self._store.clock(),
            principal.subject,
            audited.action,
            audited.target(request, response),
            code,
            message,
        )
        try:
            with self._store.transaction() as conn:
                repo.insert_audit_event(conn, record)
        except Exception:
            log.exception("could not write the audit event of %s", record.action.value)

    def wrap(self, handler: Handler, method: str) -> Handler:
        """The handler, recording the call when ``method`` is audited; others pass unwrapped."""
        audited = (
            AUDITED_RPCS.get(method.removeprefix(SERVICE_PREFIX))
            if method.startswith(SERVICE_PREFIX)
            else None
        )
        if audited is None:
            return handler
        record = self._record

        def unary_response(inner: Callable[..., Any]) -> Callable[..., Any]:
            def behaviour(request: Any, context: grpc.ServicerContext) -> Any:
                try:
                    response = inner(request, context)
                except Exception as error:
                    record(audited, request, None, error)
                    raise
                record(audited, request, response, None)
                return response

            return behaviour

        def stream_response(inner: Callable[..., Iterator[Any]]) -> Callable[..., Any]:
            return inner  # no audited roster RPC streams

        return rebuild_handler(handler, unary_response, stream_response)


class AuditLog:
    """Reading and pruning the roster's audit trail."""

    def __init__(self, store: Store, retention: dt.timedelta) -> None:
        self._store = store
        self._retention = retention

    def list(self, district_id: str, page_size: int, page_token: str) -> Page[AuditRecord]:
        """A page of the district's events, newest first."""
        limit = check_page_size(page_size, default=DEFAULT_PAGE, maximum=MAX_PAGE)
        query: list[str | int | None] = ["audit", district_id]
        cursor = self._store.tokens.decode(page_token, query, [str, str])
        with self._store.transaction() as conn:
            require_district(conn, district_id)
            before = (dt.datetime.fromisoformat(str(cursor[0])), str(cursor[1])) if cursor else None
            items = repo.list_audit_events(conn, district_id, before, limit + 1)
        token = ""
        if len(items) > limit:
            items = items[:limit]
            token = self._store.tokens.encode(query, [items[-1].time.isoformat(), items[-1].event_id])
        return Page(items, token)

    def prune(self) -> int:
        """Delete the events older than the retention; how many went."""
        with self._store.transaction() as conn:
            return repo.prune_audit_events(conn, self._store.clock() - self._retention)
