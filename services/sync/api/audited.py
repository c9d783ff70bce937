"""The audit hook: one interceptor records every audited SyncService call after the handler decided.

``AUDITED_RPCS`` maps an RPC's method name to its audit action and target; every RPC listed is
recorded the same way, allowed (outcome ``OK``) or refused (the status name the error interceptor
answers with, and its message). A stream is recorded when its first response goes out (the run
started) or when it fails before. The interceptor sits inside authentication: a call whose token
cannot be verified has no trustworthy actor and is not recorded. The district is the one the
request names, so a caller of another district trying this one shows up in this district's trail.
To audit another RPC, add its name here.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc

from services.common.audit import outcome, request_name, requested_district
from services.common.auth_interceptor import current_principal
from services.common.errors import Unauthenticated
from services.common.grpc_handlers import AsyncWrappingInterceptor, Handler, rebuild_handler
from services.sync.app import App
from services.sync.store import audit
from services.sync.vocabulary import AuditAction

logger = logging.getLogger(__name__)

SERVICE_PREFIX = "/ew.sync.v1.SyncService/"
Context = grpc.aio.ServicerContext[Any, Any]


@dataclass(frozen=True)
class Audited:
    """How one RPC is audited: its action (from the request) and its target (request, response or None)."""

    action: Callable[[Any], AuditAction]
    target: Callable[[Any, Any], str]


def _always(action: AuditAction) -> Callable[[Any], AuditAction]:
    return lambda request: action


def _named(request: Any, response: Any) -> str:
    return request_name(request)


def _run_target(request: Any, response: Any) -> str:
    """The run a start call started or attached to, else what it asked."""
    if response is not None and response.HasField("run"):
        return str(response.run.name)
    return str(getattr(request, "approve_run", "") or request.parent)


def _start_action(request: Any) -> AuditAction:
    return AuditAction.APPROVE_RUN if request.approve_run else AuditAction.START_RUN


def _pairs(request: Any, response: Any) -> str:
    pairs = ", ".join(f"{p.classlink_school_id} -> {p.ew_school_id}" for p in request.pairs)
    return pairs + (" (merging created schools)" if request.merge_created_schools else "")


AUDITED_RPCS: dict[str, Audited] = {
    "ConnectClassLink": Audited(_always(AuditAction.CONNECT), _named),
    "DeleteConnection": Audited(_always(AuditAction.DISCONNECT), _named),
    "MapSchools": Audited(_always(AuditAction.MAP_SCHOOLS), _pairs),
    "UnmapSchool": Audited(_always(AuditAction.UNMAP_SCHOOL), _named),
    "PreviewSync": Audited(_always(AuditAction.PREVIEW), _named),
    "StartSyncPreview": Audited(_always(AuditAction.PREVIEW), _run_target),
    "StartSyncRun": Audited(_start_action, _run_target),
    "SyncRosters": Audited(_start_action, _run_target),
    "RevertSyncRun": Audited(
        lambda request: AuditAction.PREVIEW_REVERT if request.validate_only else AuditAction.REVERT_RUN,
        _named,
    ),
    "MergeSchool": Audited(
        _always(AuditAction.MERGE_SCHOOL),
        lambda request, _: f"{request.ew_school_id} -> {request.into_ew_school_id}",
    ),
    "ForceSyncNow": Audited(_always(AuditAction.FORCE_SYNC), _run_target),
    "SetAutoSync": Audited(
        _always(AuditAction.SET_AUTOSYNC),
        lambda request, _: f"{request.auto_sync.name} ({'on' if request.auto_sync.enabled else 'off'})",
    ),
    "CancelSyncRun": Audited(_always(AuditAction.CANCEL_RUN), _named),
}


class AuditInterceptor(AsyncWrappingInterceptor):
    """Records the audited RPCs of a ``grpc.aio`` SyncService server; install it inside the error one."""

    def __init__(self, app: App) -> None:
        self._app = app

    async def _record(
        self, audited: Audited, request: Any, response: Any, error: BaseException | None
    ) -> None:
        district_id = requested_district(request)
        try:
            actor = current_principal().subject
        except Unauthenticated:
            return
        if district_id is None:
            return
        code, message = outcome(error)
        record = audit.AuditRecord(
            district_id, actor, audited.action(request), audited.target(request, response), code, message
        )
        try:
            await self._app.transaction(lambda session: audit.append(session, record, self._app.clock()))
        except Exception:
            logger.exception("could not write the audit event of %s", record.action.value)

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

        def unary_response(inner: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
            async def behaviour(request: Any, context: Context) -> Any:
                try:
                    response = await inner(request, context)
                except Exception as error:
                    await record(audited, request, None, error)
                    raise
                await record(audited, request, response, None)
                return response

            return behaviour

        def stream_response(inner: Callable[..., AsyncIterator[Any]]) -> Callable[..., Any]:
            async def behaviour(request: Any, context: Context) -> AsyncIterator[Any]:
                recorded = False
                try:
                    async for response in inner(request, context):
                        if not recorded:
                            recorded = True
                            await record(audited, request, response, None)
                        yield response
                except Exception as error:
                    if not recorded:
                        await record(audited, request, None, error)
                    raise
                if not recorded:
                    await record(audited, request, None, None)

            return behaviour

        return rebuild_handler(handler, unary_response, stream_response)
