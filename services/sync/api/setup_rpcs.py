"""The setup RPCs of SyncService: connect, connection, school mapping and preview.

Only request parsing, the access check and proto <-> domain mapping live here; the use cases are in
``connections``, ``mapping`` and ``preview``. Every RPC parses its district, then calls
``authorize_sync_admin`` before anything else reads or writes.
"""

from __future__ import annotations

from typing import Any

import grpc
from ew.client.roster import AsyncRosterClient
from ew.sync.v1 import sync_pb2, sync_service_pb2
from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import SecretStr

from services.common.errors import bad_field
from services.sync.api.access import authorize_sync_admin
from services.sync.api.names import (
    connection_name,
    page_size,
    parse_connection_name,
    parse_parent,
    parse_school_mapping_name,
    school_mapping_name,
)
from services.sync.api.plan_messages import item_message
from services.sync.api.proto_enums import from_proto, to_proto
from services.sync.api.run_rpcs import parse_run_name
from services.sync.planning.planner import EwSchool
from services.sync.setup.connections import Connections, ManualInput
from services.sync.setup.mapping import Entry, SchoolMappings
from services.sync.setup.preview import Previews
from services.sync.setup.school_merge import SchoolMerges
from services.sync.store.models import Connection
from services.sync.store.plan_records import guard_from_json, summary_from_json
from services.sync.vocabulary import AuthMethod, MappingOrigin, OneRosterVersion, PlanItemKind

Context = grpc.aio.ServicerContext[Any, Any]

# What the administrator reads after a connect succeeds (UI copy; the use case returns the connection).
CONNECTED_MESSAGE = "Connected Successfully! Your ClassLink account is connected."


def _timestamp(value: Any) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def _ew_school(school: EwSchool) -> sync_pb2.EwSchool:
    return sync_pb2.EwSchool(ew_school_id=school.school_id, ew_school_name=school.name)


def connection_message(connection: Connection) -> sync_pb2.Connection:
    """A stored connection as the API shows it: the secret only as its masked hint."""
    message = sync_pb2.Connection(
        name=connection_name(connection.district_id),
        district_id=connection.district_id,
        server_url=connection.server_url,
        auth_method=to_proto(connection.auth_method),
        oneroster_version=to_proto(connection.oneroster_version),
        client_id=connection.client_id,
        secret_hint=connection.secret_hint,
        tenant_id=connection.tenant_id or "",
        connect_method=to_proto(connection.connect_method),
        create_time=_timestamp(connection.create_time),
        token_url=connection.token_url or "",
    )
    if connection.last_success_time is not None:
        message.last_success_time.CopyFrom(_timestamp(connection.last_success_time))
    return message


def entry_message(district_id: str, entry: Entry) -> sync_pb2.SchoolMapping:
    """A mapping entry as the API shows it; a school never mapped reads as MAPPING_ORIGIN_NONE."""
    origin = sync_pb2.MAPPING_ORIGIN_NONE
    if entry.origin is not None and (entry.ew_school_id or entry.origin is MappingOrigin.UNMAPPED):
        origin = to_proto(entry.origin)
    return sync_pb2.SchoolMapping(
        name=school_mapping_name(district_id, entry.classlink_school_id),
        classlink_school_id=entry.classlink_school_id,
        classlink_school_name=entry.classlink_name,
        origin=origin,
        ew_school_id=entry.ew_school_id,
        ew_school_name=entry.ew_school_name,
        suggestions=[
            sync_pb2.SchoolSuggestion(ew_school_id=s.ew_school_id, ew_school_name=s.name, score=s.score)
            for s in entry.suggestions
        ],
    )


def _manual_input(manual: sync_pb2.ManualCredentials) -> ManualInput:
    auth_method = None
    if manual.auth_method != sync_pb2.AUTH_METHOD_UNSPECIFIED:
        try:
            auth_method = from_proto(AuthMethod, manual.auth_method)
        except ValueError:
            raise bad_field("manual.auth_method", "must be OAUTH1, BEARER or OAUTH2") from None
    version = OneRosterVersion.V1P1
    if manual.oneroster_version != sync_pb2.ONE_ROSTER_VERSION_UNSPECIFIED:
        try:
            version = from_proto(OneRosterVersion, manual.oneroster_version)
        except ValueError:
            raise bad_field("manual.oneroster_version", "must be V1P1 or V1P2") from None
    return ManualInput(
        server_url=manual.server_url,
        auth_method=auth_method,
        client_id=manual.client_id,
        client_secret=SecretStr(manual.client_secret),
        oneroster_version=version,
        token_url=manual.token_url,
    )


def _kind(value: sync_pb2.PlanItemKind.ValueType) -> PlanItemKind | None:
    if value == sync_pb2.PLAN_ITEM_KIND_UNSPECIFIED:
        return None
    try:
        return from_proto(PlanItemKind, value)
    except ValueError:
        raise bad_field("kind", "not a plan item kind") from None


class SetupRpcs:
    """Mixin of SyncServicer holding the setup RPCs."""

    roster: AsyncRosterClient
    connections: Connections
    school_mappings: SchoolMappings
    school_merges: SchoolMerges
    previews: Previews

    async def StartClassLinkSignIn(  # noqa: N802 - the generated servicer's method name
        self, request: sync_service_pb2.StartClassLinkSignInRequest, context: Context
    ) -> sync_service_pb2.StartClassLinkSignInResponse:
        """ClassLink's sign-in URL with a fresh state bound to the district."""
        district_id = parse_parent(request.parent)
        principal = authorize_sync_admin(district_id)
        start = await self.connections.start_sign_in(district_id, request.redirect_uri, principal.subject)
        return sync_service_pb2.StartClassLinkSignInResponse(
            authorization_url=start.authorization_url,
            state=start.state,
            expire_time=_timestamp(start.expire_time),
        )

    async def ConnectClassLink(  # noqa: N802
        self, request: sync_service_pb2.ConnectClassLinkRequest, context: Context
    ) -> sync_service_pb2.ConnectClassLinkResponse:
        """Connect by sign-in code or by typed credentials; stored only once proven."""
        district_id = parse_parent(request.parent)
        authorize_sync_admin(district_id)
        method = request.WhichOneof("method")
        if method == "sign_in":
            connection = await self.connections.connect_with_sign_in(
                district_id, request.sign_in.code, request.sign_in.state
            )
        elif method == "manual":
            connection = await self.connections.connect_manually(district_id, _manual_input(request.manual))
        else:
            raise bad_field("method", "give either sign_in (code and state) or manual credentials")
        return sync_service_pb2.ConnectClassLinkResponse(
            connection=connection_message(connection), message=CONNECTED_MESSAGE
        )

    async def GetConnection(  # noqa: N802
        self, request: sync_service_pb2.GetConnectionRequest, context: Context
    ) -> sync_service_pb2.GetConnectionResponse:
        """The district's connection, secret masked."""
        district_id = parse_connection_name(request.name)
        authorize_sync_admin(district_id)
        connection = await self.connections.get(district_id)
        return sync_service_pb2.GetConnectionResponse(connection=connection_message(connection))

    async def DeleteConnection(  # noqa: N802
        self, request: sync_service_pb2.DeleteConnectionRequest, context: Context
    ) -> sync_service_pb2.DeleteConnectionResponse:
        """Delete the connection ("Disconnect ClassLink"); mappings and history stay."""
        district_id = parse_connection_name(request.name)
        principal = authorize_sync_admin(district_id)
        await self.connections.disconnect(district_id, principal.subject)
        return sync_service_pb2.DeleteConnectionResponse()

    async def ListSchoolMappings(  # noqa: N802
        self, request: sync_service_pb2.ListSchoolMappingsRequest, context: Context
    ) -> sync_service_pb2.ListSchoolMappingsResponse:
        """One page of ClassLink schools with their EW schools or suggestions."""
        district_id = parse_parent(request.parent)
        size = page_size(request.page_size)
        authorize_sync_admin(district_id)
        page = await self.school_mappings.get(district_id, self.roster, size, request.page_token)
        return sync_service_pb2.ListSchoolMappingsResponse(
            school_mappings=[entry_message(district_id, entry) for entry in page.entries],
            ew_only_schools=[_ew_school(school) for school in page.ew_only],
            next_page_token=page.next_page_token,
            total_size=page.total_size,
            mapped_count=page.mapped_count,
        )

    async def MapSchools(  # noqa: N802
        self, request: sync_service_pb2.MapSchoolsRequest, context: Context
    ) -> sync_service_pb2.MapSchoolsResponse:
        """Map pairs by hand, all or none."""
        district_id = parse_parent(request.parent)
        authorize_sync_admin(district_id)
        pairs = [(pair.classlink_school_id.strip(), pair.ew_school_id.strip()) for pair in request.pairs]
        outcome = await self.school_mappings.map(
            district_id, self.roster, pairs, merge_created=request.merge_created_schools
        )
        return sync_service_pb2.MapSchoolsResponse(
            school_mappings=[entry_message(district_id, entry) for entry in outcome.entries],
            created_schools_left=[_ew_school(school) for school in outcome.left],
            merged_schools=[_ew_school(school) for school in outcome.merged],
        )

    async def UnmapSchool(  # noqa: N802
        self, request: sync_service_pb2.UnmapSchoolRequest, context: Context
    ) -> sync_service_pb2.UnmapSchoolResponse:
        """Return a ClassLink school to the unmapped list."""
        district_id, classlink_school_id = parse_school_mapping_name(request.name)
        authorize_sync_admin(district_id)
        entry = await self.school_mappings.unmap(district_id, self.roster, classlink_school_id)
        return sync_service_pb2.UnmapSchoolResponse(school_mapping=entry_message(district_id, entry))

    async def MergeSchool(  # noqa: N802
        self, request: sync_service_pb2.MergeSchoolRequest, context: Context
    ) -> sync_service_pb2.MergeSchoolResponse:
        """Merge one EW school into another; the merged school's mapping follows."""
        district_id = parse_parent(request.parent)
        authorize_sync_admin(district_id)
        outcome = await self.school_merges.merge(
            district_id, self.roster, request.ew_school_id.strip(), request.into_ew_school_id.strip()
        )
        return sync_service_pb2.MergeSchoolResponse(
            into_school=_ew_school(outcome.into), moved_classlink_school_ids=outcome.moved_classlink_ids
        )

    async def PreviewSync(  # noqa: N802
        self, request: sync_service_pb2.PreviewSyncRequest, context: Context
    ) -> sync_service_pb2.PreviewSyncResponse:
        """The plan a sync would apply now: complete counts, the guard's verdict, one page of items."""
        district_id = parse_parent(request.parent)
        size = page_size(request.page_size)
        kind = _kind(request.kind)
        run_id: str | None = None
        if request.sync_run:
            run_district, run_id = parse_run_name("sync_run", request.sync_run)
            if run_district != district_id:
                raise bad_field("sync_run", "must name a preview job of the district in parent")
        authorize_sync_admin(district_id)
        page = await self.previews.preview(
            district_id,
            self.roster,
            size,
            request.page_token,
            kind,
            time_left=context.time_remaining(),
            run_id=run_id,
        )
        return sync_service_pb2.PreviewSyncResponse(
            summary=summary_from_json(page.plan.summary_json),
            guard=guard_from_json(page.plan.guard_json),
            items=[item_message(item) for item in page.items],
            next_page_token=page.next_page_token,
            read_time=_timestamp(page.plan.read_time),
        )
