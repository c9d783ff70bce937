"""The RPCs of a service that runs itself: ForceSyncNow, GetAutoSync and SetAutoSync.

Only request parsing, the access check and proto <-> domain mapping live here; the use cases are
``Runs.start`` (Force Sync Now is a start with trigger FORCE) and ``services.sync.autosync``.
"""

from __future__ import annotations

from typing import Any

import grpc
from ew.sync.v1 import sync_pb2, sync_service_pb2

from services.common.errors import bad_field
from services.sync.api.access import authorize_sync_admin
from services.sync.api.names import autosync_name, parse_autosync_name, parse_parent
from services.sync.api.proto_enums import from_proto, to_proto
from services.sync.api.run_rpcs import run_to_proto
from services.sync.autosync.usecases import AutoSyncRequest, AutoSyncs, AutoSyncView
from services.sync.runs.usecases import Runs
from services.sync.vocabulary import AutoSyncCadence, SyncTrigger

Context = grpc.aio.ServicerContext[Any, Any]


def autosync_to_proto(view: AutoSyncView) -> sync_pb2.AutoSync:
    """The AutoSync resource of a district's settings."""
    message = sync_pb2.AutoSync(
        name=autosync_name(view.district_id),
        enabled=view.enabled,
        cadence=to_proto(view.cadence),
        day=view.day,
        hour=view.hour,
        time_zone=view.time_zone,
        pause_windows=[
            sync_pb2.PauseWindow(start_date=window.start.isoformat(), end_date=window.end.isoformat())
            for window in view.pauses
        ],
    )
    if view.next_run_time is not None:
        message.next_run_time.FromDatetime(view.next_run_time)
    if view.last_auto_run is not None:
        message.last_auto_run.CopyFrom(run_to_proto(view.last_auto_run))
    if view.update_time is not None:
        message.update_time.FromDatetime(view.update_time)
    return message


def _cadence(value: sync_pb2.AutoSyncCadence.ValueType) -> AutoSyncCadence | None:
    if value == sync_pb2.AUTO_SYNC_CADENCE_UNSPECIFIED:
        return None
    try:
        return from_proto(AutoSyncCadence, value)
    except ValueError:
        raise bad_field("auto_sync.cadence", f"unknown cadence {value}") from None


def _request(message: sync_pb2.AutoSync) -> AutoSyncRequest:
    return AutoSyncRequest(
        district_id=parse_autosync_name(message.name, "auto_sync.name"),
        enabled=message.enabled,
        cadence=_cadence(message.cadence),
        day=message.day,
        hour=message.hour if message.HasField("hour") else None,
        time_zone=message.time_zone.strip(),
        pauses=[(window.start_date.strip(), window.end_date.strip()) for window in message.pause_windows],
    )


class AutoSyncRpcs:
    """Mixin of SyncServicer holding Force Sync Now and the AutoSync RPCs."""

    runs: Runs
    autosyncs: AutoSyncs

    async def ForceSyncNow(  # noqa: N802 - the generated servicer's method name
        self, request: sync_service_pb2.ForceSyncNowRequest, context: Context
    ) -> sync_service_pb2.ForceSyncNowResponse:
        """Queue a sync now (trigger FORCE), or return the district's queued or running run."""
        district_id = parse_parent(request.parent)
        principal = authorize_sync_admin(district_id)
        started = await self.runs.start(
            district_id=district_id,
            requested_by=principal.subject,
            approve_run_id=None,
            trigger=SyncTrigger.FORCE,
        )
        return sync_service_pb2.ForceSyncNowResponse(
            run=run_to_proto(started.run), already_active=started.attached
        )

    async def GetAutoSync(  # noqa: N802 - the generated servicer's method name
        self, request: sync_service_pb2.GetAutoSyncRequest, context: Context
    ) -> sync_service_pb2.GetAutoSyncResponse:
        """The district's AutoSync settings (defaults, off, when never set)."""
        district_id = parse_autosync_name(request.name)
        authorize_sync_admin(district_id)
        view = await self.autosyncs.get(district_id)
        return sync_service_pb2.GetAutoSyncResponse(auto_sync=autosync_to_proto(view))

    async def SetAutoSync(  # noqa: N802 - the generated servicer's method name
        self, request: sync_service_pb2.SetAutoSyncRequest, context: Context
    ) -> sync_service_pb2.SetAutoSyncResponse:
        """Replace the district's AutoSync settings."""
        if not request.HasField("auto_sync"):
            raise bad_field("auto_sync", "required: the settings, with name 'districts/{district}/autoSync'")
        autosync_request = _request(request.auto_sync)
        principal = authorize_sync_admin(autosync_request.district_id)
        view = await self.autosyncs.set(autosync_request, requested_by=principal.subject)
        return sync_service_pb2.SetAutoSyncResponse(auto_sync=autosync_to_proto(view))
