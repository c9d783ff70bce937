"""The run RPCs of SyncService: start, stream, watch, get, list and cancel runs.

Only request validation, authorization and proto <-> domain mapping live here; the use cases are in
``services.sync.runs``. A SyncRosters or WatchSyncRun stream is only a reader of persisted events:
when the client goes away the stream ends and the run goes on.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import grpc
from ew.client.roster import AsyncRosterClient
from ew.sync.v1 import sync_pb2, sync_service_pb2

from services.common.errors import bad_field
from services.sync.api import plan_messages
from services.sync.api.access import authorize_sync_admin
from services.sync.api.names import page_size, parse_parent
from services.sync.api.proto_enums import from_proto, to_proto
from services.sync.runs.revert import RevertOutcome, Reverts
from services.sync.runs.usecases import Runs, StartedRun
from services.sync.store import plan_records
from services.sync.store.models import SyncRun, SyncRunEvent
from services.sync.vocabulary import PlanItemKind, SyncTrigger

if TYPE_CHECKING:
    from services.sync.app import App

_RUN_RE = re.compile(r"^districts/([A-Za-z0-9_-]{1,64})/syncRuns/([^/]+)$")


def parse_run_name(field: str, value: str) -> tuple[str, str]:
    """(district, run id) of ``districts/{district}/syncRuns/{run}``."""
    match = _RUN_RE.match(value)
    if match is None:
        raise bad_field(field, f"expected 'districts/{{district}}/syncRuns/{{run}}', got {value[:120]!r}")
    try:
        run_id = str(uuid.UUID(match.group(2)))
    except ValueError:
        raise bad_field(field, f"the run id must be a UUID, got {match.group(2)[:60]!r}") from None
    return match.group(1), run_id


def run_name(district_id: str, run_id: str) -> str:
    """The resource name of a run."""
    return f"districts/{district_id}/syncRuns/{run_id}"


def _summary(summary_json: str | None) -> sync_pb2.SyncSummary | None:
    return plan_records.summary_from_json(summary_json) if summary_json else None


def run_to_proto(run: SyncRun) -> sync_pb2.SyncRun:
    """The SyncRun resource of a stored run."""
    message = sync_pb2.SyncRun(
        name=run_name(run.district_id, run.id),
        run_id=run.id,
        district_id=run.district_id,
        trigger=to_proto(run.trigger),
        state=to_proto(run.state),
        phase=to_proto(run.phase),
        percent=run.percent,
        error_message=run.error_message or "",
        requested_by=run.requested_by,
        last_sequence=run.last_sequence,
        cancel_requested=run.cancel_requested,
    )
    summary = _summary(run.summary_json)
    if summary is not None:
        message.summary.CopyFrom(summary)
    if run.guard_json:
        message.guard.CopyFrom(plan_records.guard_from_json(run.guard_json))
    if run.approved_run_id:
        message.approved_run = run_name(run.district_id, run.approved_run_id)
    message.create_time.FromDatetime(run.create_time)
    if run.start_time is not None:
        message.start_time.FromDatetime(run.start_time)
    if run.end_time is not None:
        message.end_time.FromDatetime(run.end_time)
    return message


def event_to_proto(district_id: str, event: SyncRunEvent) -> sync_pb2.SyncEvent:
    """The SyncEvent of a persisted event."""
    message = sync_pb2.SyncEvent(
        run=run_name(district_id, event.run_id),
        sequence=event.sequence,
        state=to_proto(event.state),
        phase=to_proto(event.phase),
        percent=event.percent,
        done=event.done,
        total=event.total,
        message=event.message,
    )
    message.time.FromDatetime(event.time)
    summary = _summary(event.summary_json)
    if summary is not None:
        message.summary.CopyFrom(summary)
    return message


def _item_kind(value: sync_pb2.PlanItemKind.ValueType) -> PlanItemKind | None:
    if value == sync_pb2.PLAN_ITEM_KIND_UNSPECIFIED:
        return None
    try:
        return from_proto(PlanItemKind, value)
    except ValueError:
        raise bad_field("kind", f"unknown plan item kind {value}") from None


def revert_message(district_id: str, outcome: RevertOutcome) -> sync_service_pb2.RevertSyncRunResponse:
    """What a revert did (or would do) as the API shows it."""
    response = sync_service_pb2.RevertSyncRunResponse(
        items=[
            sync_pb2.RevertItem(
                subject=to_proto(undo.entry.subject),
                subject_id=undo.entry.subject_id,
                undone=to_proto(undo.undone),
                display_name=undo.display_name,
            )
            for undo in outcome.plan.undos
        ],
        conflicts=[
            sync_pb2.RevertConflict(
                subject=to_proto(conflict.subject),
                subject_id=conflict.subject_id,
                display_name=conflict.display_name,
                later_run=run_name(district_id, conflict.later_run_id) if conflict.later_run_id else "",
            )
            for conflict in outcome.plan.conflicts
        ],
    )
    if outcome.run is not None:
        response.run.CopyFrom(run_to_proto(outcome.run))
    return response


class RunRpcs:
    """Mixin of SyncServicer holding the run RPCs; ``self.app`` is the service's container."""

    app: App
    runs: Runs
    reverts: Reverts
    roster: AsyncRosterClient

    async def RevertSyncRun(  # noqa: N802
        self,
        request: sync_service_pb2.RevertSyncRunRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> sync_service_pb2.RevertSyncRunResponse:
        """Revert a run from its journal (or preview the revert)."""
        district_id, run_id = parse_run_name("name", request.name)
        subject = self._authorize(district_id)
        outcome = await self.reverts.revert(
            district_id=district_id,
            run_id=run_id,
            requested_by=subject,
            roster=self.roster,
            validate_only=request.validate_only,
            partial=request.partial,
        )
        return revert_message(district_id, outcome)

    def _authorize(self, district_id: str) -> str:
        return authorize_sync_admin(district_id).subject

    async def _start(self, parent: str, approve_run: str) -> StartedRun:
        """Start (or attach to) the district's run: StartSyncRun and SyncRosters alike."""
        district_id = parse_parent(parent)
        approve_run_id: str | None = None
        if approve_run:
            approve_district, approve_run_id = parse_run_name("approve_run", approve_run)
            if approve_district != district_id:
                raise bad_field("approve_run", "must name a run of the district in parent")
        subject = self._authorize(district_id)
        return await self.runs.start(
            district_id=district_id,
            requested_by=subject,
            approve_run_id=approve_run_id,
        )

    async def StartSyncPreview(  # noqa: N802 - the generated servicer's method name
        self,
        request: sync_service_pb2.StartSyncPreviewRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> sync_service_pb2.StartSyncPreviewResponse:
        """Start (or attach to) the district's preview job and return it at once."""
        district_id = parse_parent(request.parent)
        subject = self._authorize(district_id)
        started = await self.runs.start(
            district_id=district_id,
            requested_by=subject,
            approve_run_id=None,
            trigger=SyncTrigger.PREVIEW,
        )
        return sync_service_pb2.StartSyncPreviewResponse(
            run=run_to_proto(started.run), already_active=started.attached
        )

    async def StartSyncRun(  # noqa: N802 - the generated servicer's method name
        self,
        request: sync_service_pb2.StartSyncRunRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> sync_service_pb2.StartSyncRunResponse:
        """Start (or attach to) the district's run and return it at once."""
        started = await self._start(request.parent, request.approve_run)
        return sync_service_pb2.StartSyncRunResponse(run=run_to_proto(started.run))

    async def SyncRosters(  # noqa: N802 - the generated servicer's method name
        self,
        request: sync_service_pb2.SyncRostersRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> AsyncIterator[sync_service_pb2.SyncRostersResponse]:
        """Start (or attach to) the district's run and stream its events until it ends."""
        started = await self._start(request.parent, request.approve_run)
        district_id = started.run.district_id
        first = True
        async for event in self.runs.watch(started.run.id, 0):
            response = sync_service_pb2.SyncRostersResponse(event=event_to_proto(district_id, event))
            if first:
                response.run.CopyFrom(run_to_proto(started.run))
                first = False
            yield response

    async def WatchSyncRun(  # noqa: N802 - the generated servicer's method name
        self,
        request: sync_service_pb2.WatchSyncRunRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> AsyncIterator[sync_service_pb2.WatchSyncRunResponse]:
        """Replay the run's events after ``after_sequence``, then live ones until it ends."""
        district_id, run_id = parse_run_name("name", request.name)
        if request.after_sequence < 0:
            raise bad_field("after_sequence", "must be 0 (everything) or a sequence number seen before")
        self._authorize(district_id)
        await self.runs.get(district_id, run_id)
        async for event in self.runs.watch(run_id, request.after_sequence):
            yield sync_service_pb2.WatchSyncRunResponse(event=event_to_proto(district_id, event))

    async def GetSyncRun(  # noqa: N802 - the generated servicer's method name
        self,
        request: sync_service_pb2.GetSyncRunRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> sync_service_pb2.GetSyncRunResponse:
        """The run resource."""
        district_id, run_id = parse_run_name("name", request.name)
        self._authorize(district_id)
        run = await self.runs.get(district_id, run_id)
        return sync_service_pb2.GetSyncRunResponse(run=run_to_proto(run))

    async def ListSyncRuns(  # noqa: N802 - the generated servicer's method name
        self,
        request: sync_service_pb2.ListSyncRunsRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> sync_service_pb2.ListSyncRunsResponse:
        """The district's runs, newest first."""
        district_id = parse_parent(request.parent)
        size = page_size(request.page_size)
        self._authorize(district_id)
        runs, next_token = await self.runs.list(
            district_id,
            page_size=size,
            page_token=request.page_token,
        )
        return sync_service_pb2.ListSyncRunsResponse(
            runs=[run_to_proto(run) for run in runs], next_page_token=next_token
        )

    async def ListSyncRunItems(  # noqa: N802 - the generated servicer's method name
        self,
        request: sync_service_pb2.ListSyncRunItemsRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> sync_service_pb2.ListSyncRunItemsResponse:
        """What the run changed (or would change, in review), one page at a time."""
        district_id, run_id = parse_run_name("parent", request.parent)
        size = page_size(request.page_size)
        kind = _item_kind(request.kind)
        self._authorize(district_id)
        page, next_token = await self.runs.list_items(
            district_id,
            run_id,
            kind=kind,
            page_size=size,
            page_token=request.page_token,
        )
        return sync_service_pb2.ListSyncRunItemsResponse(
            items=[plan_messages.item_message(item) for item in page], next_page_token=next_token
        )

    async def CancelSyncRun(  # noqa: N802 - the generated servicer's method name
        self,
        request: sync_service_pb2.CancelSyncRunRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> sync_service_pb2.CancelSyncRunResponse:
        """Cancel the run: at once when queued or in review, at its next checkpoint when running."""
        district_id, run_id = parse_run_name("name", request.name)
        self._authorize(district_id)
        run = await self.runs.cancel(district_id, run_id)
        return sync_service_pb2.CancelSyncRunResponse(run=run_to_proto(run))
