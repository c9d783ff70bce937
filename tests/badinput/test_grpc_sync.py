"""Malformed SyncService requests, every method: the right status and message, nothing stored.

Refusals are audited, so the sync store's audit trail is the one table left out of "nothing changed".
"""

from __future__ import annotations

import uuid

import grpc
import pytest
from ew.sync.v1 import sync_pb2 as pb
from ew.sync.v1 import sync_service_pb2 as rpc
from google.protobuf.timestamp_pb2 import Timestamp

from services.common.auth import Role
from tests.badinput.grpc_rows import KB10, MB, OVERSIZED, Row, judge, send, string_field
from tests.badinput.world import FOREIGN, World

SERVICE = "ew.sync.v1.SyncService"
TABLE = "gRPC SyncService"
Code = grpc.StatusCode
INVALID = Code.INVALID_ARGUMENT
DENIED = "use a token issued for that district"
INVALID_UTF8 = b"\xfe\xff\xc0\xaf"


def last(name: str) -> str:
    return name.rsplit("/", 1)[1]


def foreign(w: World) -> tuple[tuple[str, str], ...]:
    """An administrator of another district."""
    return (("authorization", f"Bearer {w.stack.token(district_id=FOREIGN)}"),)


def teacher_role(w: World) -> tuple[tuple[str, str], ...]:
    return w.caller(Role.TEACHER)


def basic_plan(w: World) -> tuple[tuple[str, str], ...]:
    return w.caller(Role.DISTRICT_ADMIN, plan="basic")


def manual(
    server_url: str = "https://oneroster.example.test",
    secret: str = "s3cret",
    auth_method: pb.AuthMethod.ValueType = pb.AUTH_METHOD_OAUTH1,
) -> pb.ManualCredentials:
    return pb.ManualCredentials(
        server_url=server_url, client_id="id", client_secret=secret, auth_method=auth_method
    )


def pair(classlink: str, ew: str) -> pb.SchoolPair:
    return pb.SchoolPair(classlink_school_id=classlink, ew_school_id=ew)


def auto_sync(w: World, settings: pb.AutoSync) -> rpc.SetAutoSyncRequest:
    settings.name = f"{w.parent}/autoSync"
    return rpc.SetAutoSyncRequest(auto_sync=settings)


ROWS = [
    # StartClassLinkSignIn
    Row(
        "sign-in-empty-redirect",
        "StartClassLinkSignIn",
        lambda w: rpc.StartClassLinkSignInRequest(parent=w.parent),
        INVALID,
        "redirect_uri",
    ),
    Row(
        "sign-in-foreign-district",
        "StartClassLinkSignIn",
        lambda w: rpc.StartClassLinkSignInRequest(
            parent=f"districts/{FOREIGN}", redirect_uri="https://ew.example.test/cb"
        ),
        Code.PERMISSION_DENIED,
        DENIED,
    ),
    # ConnectClassLink
    Row(
        "connect-no-method",
        "ConnectClassLink",
        lambda w: rpc.ConnectClassLinkRequest(parent=w.parent),
        INVALID,
        "method",
    ),
    Row(
        "connect-garbage-url",
        "ConnectClassLink",
        lambda w: rpc.ConnectClassLinkRequest(parent=w.parent, manual=manual("not a url")),
        INVALID,
        "server_url",
    ),
    Row(
        "connect-1mb-secret",
        "ConnectClassLink",
        lambda w: rpc.ConnectClassLinkRequest(parent=w.parent, manual=manual(secret="s" * MB)),
        INVALID,
        "client_secret",
    ),
    Row(
        "connect-unknown-auth-method",
        "ConnectClassLink",
        lambda w: rpc.ConnectClassLinkRequest(
            parent=w.parent, manual=manual(auth_method=pb.AuthMethod.ValueType(77))
        ),
        INVALID,
        "auth_method",
    ),
    Row(
        "connect-forged-sign-in-state",
        "ConnectClassLink",
        lambda w: rpc.ConnectClassLinkRequest(
            parent=w.parent, sign_in=pb.SignInCode(code="c", state="forged-state")
        ),
        Code.FAILED_PRECONDITION,
        "not one this server started",
    ),
    Row(
        "connect-as-basic-plan",
        "ConnectClassLink",
        lambda w: rpc.ConnectClassLinkRequest(parent=w.parent, manual=manual()),
        Code.PERMISSION_DENIED,
        "District Premium",
        metadata=basic_plan,
    ),
    # GetConnection / DeleteConnection
    Row(
        "get-connection-wrong-name",
        "GetConnection",
        lambda w: rpc.GetConnectionRequest(name=w.parent),
        INVALID,
        "name",
    ),
    Row(
        "get-connection-foreign",
        "GetConnection",
        lambda w: rpc.GetConnectionRequest(name=f"districts/{FOREIGN}/connection"),
        Code.PERMISSION_DENIED,
        DENIED,
    ),
    Row(
        "delete-connection-foreign-token",
        "DeleteConnection",
        lambda w: rpc.DeleteConnectionRequest(name=f"{w.parent}/connection"),
        Code.PERMISSION_DENIED,
        DENIED,
        metadata=foreign,
    ),
    Row(
        "delete-connection-as-teacher",
        "DeleteConnection",
        lambda w: rpc.DeleteConnectionRequest(name=f"{w.parent}/connection"),
        Code.PERMISSION_DENIED,
        "administrator",
        metadata=teacher_role,
    ),
    Row(
        "delete-connection-invalid-utf8",
        "DeleteConnection",
        lambda w: string_field(1, b"districts/d-runs/connection" + INVALID_UTF8),
        INVALID,
        "utf-8",
    ),
    # ListSchoolMappings
    Row(
        "mappings-negative-page-size",
        "ListSchoolMappings",
        lambda w: rpc.ListSchoolMappingsRequest(parent=w.parent, page_size=-1),
        INVALID,
        "page_size",
    ),
    Row(
        "mappings-forged-token",
        "ListSchoolMappings",
        lambda w: rpc.ListSchoolMappingsRequest(parent=w.parent, page_token="Zm9yZ2Vk"),
        INVALID,
        "page_token",
    ),
    Row(
        "mappings-roster-token",
        "ListSchoolMappings",
        lambda w: rpc.ListSchoolMappingsRequest(parent=w.parent, page_token=w.teachers_token),
        INVALID,
        "page_token",
    ),
    # MapSchools
    Row("map-no-pairs", "MapSchools", lambda w: rpc.MapSchoolsRequest(parent=w.parent), INVALID, "pairs"),
    Row(
        "map-over-cap",
        "MapSchools",
        lambda w: rpc.MapSchoolsRequest(
            parent=w.parent, pairs=[pair(f"cl-{i}", last(w.school)) for i in range(501)]
        ),
        INVALID,
        "500",
    ),
    Row(
        "map-duplicate-classlink-school",
        "MapSchools",
        lambda w: rpc.MapSchoolsRequest(
            parent=w.parent, pairs=[pair("cl-1", last(w.school)), pair("cl-1", last(w.other_school))]
        ),
        INVALID,
        "cl-1",
    ),
    Row(
        "map-unknown-classlink-school",
        "MapSchools",
        lambda w: rpc.MapSchoolsRequest(parent=w.parent, pairs=[pair("cl-1", "garbage")]),
        Code.NOT_FOUND,
        "not in the district's ClassLink roster",
    ),
    Row(
        "map-10kb-classlink-id",
        "MapSchools",
        lambda w: rpc.MapSchoolsRequest(parent=w.parent, pairs=[pair("c" * KB10, last(w.school))]),
        INVALID,
        "classlink_school_id",
    ),
    Row(
        "map-oversized",
        "MapSchools",
        lambda w: rpc.MapSchoolsRequest(parent=w.parent, pairs=[pair("c" * OVERSIZED, last(w.school))]),
        Code.RESOURCE_EXHAUSTED,
        "larger than max",
    ),
    # UnmapSchool
    Row(
        "unmap-no-school",
        "UnmapSchool",
        lambda w: rpc.UnmapSchoolRequest(name=f"{w.parent}/schoolMappings/"),
        INVALID,
        "name",
    ),
    Row(
        "unmap-unknown-school",
        "UnmapSchool",
        lambda w: rpc.UnmapSchoolRequest(name=f"{w.parent}/schoolMappings/cl-nowhere"),
        Code.NOT_FOUND,
        "cl-nowhere",
    ),
    Row(
        "unmap-nul-in-school",
        "UnmapSchool",
        lambda w: rpc.UnmapSchoolRequest(name=f"{w.parent}/schoolMappings/cl\x00x"),
        Code.NOT_FOUND,
        "is not in the district's ClassLink roster",
    ),
    Row(
        "map-control-chars-classlink-id",
        "MapSchools",
        lambda w: rpc.MapSchoolsRequest(parent=w.parent, pairs=[pair("cl\x00\x1b", last(w.school))]),
        Code.NOT_FOUND,
        "is not in the district's ClassLink roster",
    ),
    # PreviewSync
    Row(
        "preview-unknown-kind",
        "PreviewSync",
        lambda w: rpc.PreviewSyncRequest(parent=w.parent, kind=pb.PlanItemKind.ValueType(99)),
        INVALID,
        "kind",
    ),
    Row(
        "preview-forged-token",
        "PreviewSync",
        lambda w: rpc.PreviewSyncRequest(parent=w.parent, page_token="Zm9yZ2Vk"),
        INVALID,
        "page_token",
    ),
    Row(
        "preview-garbage-sync-run",
        "PreviewSync",
        lambda w: rpc.PreviewSyncRequest(parent=w.parent, sync_run="syncRuns/garbage"),
        INVALID,
        "sync_run",
    ),
    Row(
        "preview-unknown-sync-run",
        "PreviewSync",
        lambda w: rpc.PreviewSyncRequest(parent=w.parent, sync_run=f"{w.parent}/syncRuns/{uuid.uuid4()}"),
        Code.NOT_FOUND,
        "run",
    ),
    Row(
        "preview-of-a-sync-run",
        "PreviewSync",
        lambda w: rpc.PreviewSyncRequest(parent=w.parent, sync_run=w.run),
        INVALID,
        "names a sync run, not a preview job",
    ),
    # StartSyncPreview
    Row(
        "start-preview-empty-parent",
        "StartSyncPreview",
        lambda w: rpc.StartSyncPreviewRequest(),
        INVALID,
        "parent",
    ),
    Row(
        "start-preview-foreign-district",
        "StartSyncPreview",
        lambda w: rpc.StartSyncPreviewRequest(parent=f"districts/{FOREIGN}"),
        Code.PERMISSION_DENIED,
        DENIED,
    ),
    Row(
        "start-preview-as-teacher",
        "StartSyncPreview",
        lambda w: rpc.StartSyncPreviewRequest(parent=w.parent),
        Code.PERMISSION_DENIED,
        "administrator",
        metadata=teacher_role,
    ),
    # StartSyncRun / SyncRosters
    Row(
        "start-approve-run-not-in-review",
        "StartSyncRun",
        lambda w: rpc.StartSyncRunRequest(parent=w.parent, approve_run=w.run),
        Code.FAILED_PRECONDITION,
        "review",
    ),
    Row(
        "start-approve-foreign-run",
        "StartSyncRun",
        lambda w: rpc.StartSyncRunRequest(
            parent=w.parent, approve_run=f"districts/{FOREIGN}/syncRuns/{uuid.uuid4()}"
        ),
        INVALID,
        "approve_run",
    ),
    Row(
        "start-as-teacher",
        "StartSyncRun",
        lambda w: rpc.StartSyncRunRequest(parent=w.parent),
        Code.PERMISSION_DENIED,
        "administrator",
        metadata=teacher_role,
    ),
    Row(
        "stream-approve-garbage",
        "SyncRosters",
        lambda w: rpc.SyncRostersRequest(parent=w.parent, approve_run="garbage"),
        INVALID,
        "approve_run",
        stream=True,
    ),
    Row(
        "stream-approve-run-not-in-review",
        "SyncRosters",
        lambda w: rpc.SyncRostersRequest(parent=w.parent, approve_run=w.run),
        Code.FAILED_PRECONDITION,
        "review",
        stream=True,
    ),
    # WatchSyncRun / GetSyncRun
    Row(
        "watch-negative-sequence",
        "WatchSyncRun",
        lambda w: rpc.WatchSyncRunRequest(name=w.run, after_sequence=-1),
        INVALID,
        "after_sequence",
        stream=True,
    ),
    Row(
        "watch-unknown-run",
        "WatchSyncRun",
        lambda w: rpc.WatchSyncRunRequest(name=f"{w.parent}/syncRuns/{uuid.uuid4()}"),
        Code.NOT_FOUND,
        "run",
        stream=True,
    ),
    Row(
        "get-run-garbage-id",
        "GetSyncRun",
        lambda w: rpc.GetSyncRunRequest(name=f"{w.parent}/syncRuns/xyz"),
        INVALID,
        "name",
    ),
    Row(
        "get-run-foreign-token",
        "GetSyncRun",
        lambda w: rpc.GetSyncRunRequest(name=w.run),
        Code.PERMISSION_DENIED,
        DENIED,
        metadata=foreign,
    ),
    Row(
        "get-run-invalid-utf8",
        "GetSyncRun",
        lambda w: string_field(1, w.run.encode()[:-3] + INVALID_UTF8),
        INVALID,
        "utf-8",
    ),
    # ListSyncRuns / ListSyncRunItems
    Row(
        "runs-negative-page-size",
        "ListSyncRuns",
        lambda w: rpc.ListSyncRunsRequest(parent=w.parent, page_size=-7),
        INVALID,
        "page_size",
    ),
    Row(
        "runs-roster-token",
        "ListSyncRuns",
        lambda w: rpc.ListSyncRunsRequest(parent=w.parent, page_token=w.teachers_token),
        INVALID,
        "page_token",
    ),
    Row(
        "items-unknown-kind",
        "ListSyncRunItems",
        lambda w: rpc.ListSyncRunItemsRequest(parent=w.run, kind=pb.PlanItemKind.ValueType(42)),
        INVALID,
        "kind",
    ),
    Row(
        "items-forged-token",
        "ListSyncRunItems",
        lambda w: rpc.ListSyncRunItemsRequest(parent=w.run, page_token="Zm9yZ2Vk"),
        INVALID,
        "page_token",
    ),
    # ForceSyncNow
    Row("force-empty-parent", "ForceSyncNow", lambda w: rpc.ForceSyncNowRequest(), INVALID, "parent"),
    Row(
        "force-foreign-district",
        "ForceSyncNow",
        lambda w: rpc.ForceSyncNowRequest(parent=f"districts/{FOREIGN}"),
        Code.PERMISSION_DENIED,
        DENIED,
    ),
    Row(
        "force-as-basic-plan",
        "ForceSyncNow",
        lambda w: rpc.ForceSyncNowRequest(parent=w.parent),
        Code.PERMISSION_DENIED,
        "District Premium",
        metadata=basic_plan,
    ),
    # GetAutoSync / SetAutoSync
    Row(
        "get-autosync-wrong-name",
        "GetAutoSync",
        lambda w: rpc.GetAutoSyncRequest(name=f"{w.parent}/autosync"),
        INVALID,
        "name",
    ),
    Row(
        "set-autosync-unknown-cadence",
        "SetAutoSync",
        lambda w: auto_sync(w, pb.AutoSync(cadence=pb.AutoSyncCadence.ValueType(9))),
        INVALID,
        "cadence",
    ),
    Row(
        "set-autosync-bad-time-zone",
        "SetAutoSync",
        lambda w: auto_sync(w, pb.AutoSync(time_zone="Mars/Olympus_Mons")),
        INVALID,
        "time_zone",
    ),
    Row("set-autosync-hour-25", "SetAutoSync", lambda w: auto_sync(w, pb.AutoSync(hour=25)), INVALID, "hour"),
    Row(
        "set-autosync-no-name",
        "SetAutoSync",
        lambda w: rpc.SetAutoSyncRequest(auto_sync=pb.AutoSync()),
        INVALID,
        "name",
    ),
    # CancelSyncRun
    Row(
        "cancel-ended-run",
        "CancelSyncRun",
        lambda w: rpc.CancelSyncRunRequest(name=w.run),
        Code.FAILED_PRECONDITION,
        "ended",
    ),
    Row(
        "cancel-unknown-run",
        "CancelSyncRun",
        lambda w: rpc.CancelSyncRunRequest(name=f"{w.parent}/syncRuns/{uuid.uuid4()}"),
        Code.NOT_FOUND,
        "run",
    ),
    # MergeSchool
    Row(
        "merge-school-into-itself",
        "MergeSchool",
        lambda w: rpc.MergeSchoolRequest(
            parent=w.parent, ew_school_id=last(w.school), into_ew_school_id=last(w.school)
        ),
        INVALID,
        "into_ew_school_id",
    ),
    Row(
        "merge-school-garbage-ids",
        "MergeSchool",
        lambda w: rpc.MergeSchoolRequest(parent=w.parent, ew_school_id="x", into_ew_school_id="y"),
        Code.NOT_FOUND,
        "is not a school of district",
    ),
    Row(
        "merge-school-foreign-school",
        "MergeSchool",
        lambda w: rpc.MergeSchoolRequest(
            parent=w.parent, ew_school_id=last(w.school), into_ew_school_id=last(w.foreign_school)
        ),
        Code.NOT_FOUND,
        "school",
    ),
    # RevertSyncRun
    Row(
        "revert-garbage-name",
        "RevertSyncRun",
        lambda w: rpc.RevertSyncRunRequest(name="syncRuns/1"),
        INVALID,
        "name",
    ),
    Row(
        "revert-unknown-run",
        "RevertSyncRun",
        lambda w: rpc.RevertSyncRunRequest(name=f"{w.parent}/syncRuns/{uuid.uuid4()}"),
        Code.NOT_FOUND,
        "run",
    ),
    Row(
        "revert-foreign-token",
        "RevertSyncRun",
        lambda w: rpc.RevertSyncRunRequest(name=w.run),
        Code.PERMISSION_DENIED,
        DENIED,
        metadata=foreign,
    ),
    # ListAuditEvents / ListTeacherHistory
    Row(
        "audit-unknown-action",
        "ListAuditEvents",
        lambda w: rpc.ListAuditEventsRequest(parent=w.parent, action=pb.AuditAction.ValueType(1234)),
        INVALID,
        "action",
    ),
    Row(
        "audit-end-before-start",
        "ListAuditEvents",
        lambda w: rpc.ListAuditEventsRequest(
            parent=w.parent,
            start_time=Timestamp(seconds=2_000_000_000),
            end_time=Timestamp(seconds=1_000_000_000),
        ),
        INVALID,
        "end_time",
    ),
    Row(
        "audit-control-chars-actor",
        "ListAuditEvents",
        lambda w: rpc.ListAuditEventsRequest(parent=w.parent, actor="admin\x00\x1b"),
        INVALID,
        "actor",
    ),
    Row(
        "history-garbage-teacher",
        "ListTeacherHistory",
        lambda w: rpc.ListTeacherHistoryRequest(parent=w.parent, teacher_id="nope"),
        INVALID,
        "teacher_id",
    ),
    Row(
        "history-negative-page-size",
        "ListTeacherHistory",
        lambda w: rpc.ListTeacherHistoryRequest(parent=w.parent, teacher_id=last(w.teacher), page_size=-1),
        INVALID,
        "page_size",
    ),
    Row(
        "no-token",
        "ListSyncRuns",
        lambda w: rpc.ListSyncRunsRequest(parent=w.parent),
        Code.UNAUTHENTICATED,
        "token",
        metadata=lambda w: (),
    ),
]


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
def test_sync_refuses(world: World, row: Row) -> None:
    judge(TABLE, world, world.sync_channel, SERVICE, row, world.admin())


def test_a_refusal_echoing_a_nul_is_audited_with_the_nul_escaped(world: World) -> None:
    # PostgreSQL cannot store a NUL in text: written as is, the refusal would be missing from the trail.
    request = rpc.MergeSchoolRequest(parent=world.parent, ew_school_id="gone\x00", into_ew_school_id="x")
    code, _ = send(
        world.sync_channel,
        f"/{SERVICE}/MergeSchool",
        request.SerializeToString(),
        world.admin(),
        stream=False,
    )
    assert code == Code.NOT_FOUND
    latest = world.stack.client.list_audit_events(world.district, page_size=1).events[0]
    assert latest.target.startswith("gone\\x00") and latest.outcome == "NOT_FOUND"
