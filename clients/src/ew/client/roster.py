"""Typed clients of ``ew.roster.v1.RosterService``: ``RosterClient`` (threads) and ``AsyncRosterClient``.

Each client owns one channel, sets a deadline on every call, adds the metadata its ``metadata``
hook returns (for example an ``authorization`` header from a token provider) and raises
``ew.client.errors`` exceptions instead of ``grpc.RpcError``. List methods iterate every page.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from types import TracebackType
from typing import Any, TypeVar

import grpc
from ew.client.channels import ROSTER_READS, channel_options, open_aio_channel, open_channel
from ew.client.errors import from_rpc_error
from ew.roster.v1 import roster_pb2 as pb
from ew.roster.v1 import roster_service_pb2 as rpc
from ew.roster.v1 import roster_service_pb2_grpc

MetadataHook = Callable[[], Sequence[tuple[str, str]]]
"""Returns metadata for the next call; called on every call, so a token provider may refresh."""

DEFAULT_TIMEOUT = 30.0
PAGE_SIZE = 1000
RESULTS_PAGE_SIZE = 5000
Response = TypeVar("Response")
OPTIONS = channel_options(rpc.DESCRIPTOR.services_by_name["RosterService"].full_name, ROSTER_READS)


def district_name(district_id: str) -> str:
    """``districts/{district_id}``."""
    return f"districts/{district_id}"


def _teachers_request(
    district_id: str, school_id: str, state: pb.TeacherState.ValueType, email: str, token: str
) -> rpc.ListTeachersRequest:
    return rpc.ListTeachersRequest(
        parent=district_name(district_id),
        page_size=PAGE_SIZE,
        page_token=token,
        school_id=school_id,
        state=state,
        email=email,
    )


class _Calls:
    """Deadline and metadata shared by both clients."""

    def __init__(self, timeout: float, metadata: MetadataHook | None) -> None:
        self.timeout = timeout
        self._metadata = metadata

    def options(self, timeout: float | None) -> dict[str, Any]:
        return {
            "timeout": self.timeout if timeout is None else timeout,
            "metadata": tuple(self._metadata()) if self._metadata else None,
        }


class RosterClient:
    """Blocking client; use as a context manager or call ``close()``."""

    def __init__(
        self,
        target: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        metadata: MetadataHook | None = None,
        credentials: grpc.ChannelCredentials | None = None,
    ) -> None:
        self._channel = open_channel(target, credentials, OPTIONS)
        self._stub = roster_service_pb2_grpc.RosterServiceStub(self._channel)
        self._calls = _Calls(timeout, metadata)

    def __enter__(self) -> RosterClient:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the channel."""
        self._channel.close()

    def _call(self, method: Callable[..., Response], request: Any, timeout: float | None = None) -> Response:
        try:
            return method(request, **self._calls.options(timeout))
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None

    def create_district(self, district_id: str, display_name: str) -> pb.District:
        """Create a district."""
        request = rpc.CreateDistrictRequest(district_id=district_id, display_name=display_name)
        return self._call(self._stub.CreateDistrict, request).district

    def get_district(self, district_id: str) -> pb.District:
        """Get a district."""
        return self._call(
            self._stub.GetDistrict, rpc.GetDistrictRequest(name=district_name(district_id))
        ).district

    def get_school(self, name: str) -> pb.School:
        """Get a school by resource name."""
        return self._call(self._stub.GetSchool, rpc.GetSchoolRequest(name=name)).school

    def list_schools(self, district_id: str) -> Iterator[pb.School]:
        """Every school of the district, page by page."""
        token = ""
        while True:
            request = rpc.ListSchoolsRequest(
                parent=district_name(district_id), page_size=PAGE_SIZE, page_token=token
            )
            page = self._call(self._stub.ListSchools, request)
            yield from page.schools
            token = page.next_page_token
            if not token:
                return

    def batch_create_schools(
        self, district_id: str, display_names: Sequence[str], request_id: str = ""
    ) -> list[pb.School]:
        """Create schools, all or none (at most 1000)."""
        request = rpc.BatchCreateSchoolsRequest(
            parent=district_name(district_id),
            schools=[pb.School(display_name=n) for n in display_names],
            request_id=request_id,
        )
        return list(self._call(self._stub.BatchCreateSchools, request).schools)

    def get_teacher(self, name: str) -> pb.Teacher:
        """Get a teacher by resource name."""
        return self._call(self._stub.GetTeacher, rpc.GetTeacherRequest(name=name)).teacher

    def list_teachers(
        self,
        district_id: str,
        *,
        school_id: str = "",
        state: pb.TeacherState.ValueType = pb.TEACHER_STATE_UNSPECIFIED,
        email: str = "",
    ) -> Iterator[pb.Teacher]:
        """Every teacher of the district matching the filters, page by page."""
        token = ""
        while True:
            page = self._call(
                self._stub.ListTeachers, _teachers_request(district_id, school_id, state, email, token)
            )
            yield from page.teachers
            token = page.next_page_token
            if not token:
                return

    def export_district_roster(
        self, district_id: str, timeout: float | None = None
    ) -> Iterator[rpc.ExportDistrictRosterResponse]:
        """The district's whole roster in one snapshot: totals, then chunks of schools, then of teachers."""
        request = rpc.ExportDistrictRosterRequest(parent=district_name(district_id))
        try:
            yield from self._stub.ExportDistrictRoster(request, **self._calls.options(timeout))
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None

    def batch_upsert_teachers(
        self, district_id: str, teachers: Sequence[pb.TeacherInput], request_id: str = ""
    ) -> list[pb.Teacher]:
        """Create or update teachers by email, all or none (at most 1000)."""
        request = rpc.BatchUpsertTeachersRequest(
            parent=district_name(district_id), teachers=teachers, request_id=request_id
        )
        return list(self._call(self._stub.BatchUpsertTeachers, request).teachers)

    def batch_archive_teachers(
        self, district_id: str, teacher_ids: Sequence[str], reason: str
    ) -> list[pb.Teacher]:
        """Archive active teachers, all or none."""
        request = rpc.BatchArchiveTeachersRequest(
            parent=district_name(district_id), teacher_ids=teacher_ids, reason=reason
        )
        return list(self._call(self._stub.BatchArchiveTeachers, request).teachers)

    def unarchive_teacher(self, name: str) -> pb.Teacher:
        """Make an archived teacher active again."""
        return self._call(self._stub.UnarchiveTeacher, rpc.UnarchiveTeacherRequest(name=name)).teacher

    def rename_school(self, name: str, display_name: str) -> pb.School:
        """Rename an active school."""
        request = rpc.RenameSchoolRequest(name=name, display_name=display_name)
        return self._call(self._stub.RenameSchool, request).school

    def archive_school(self, name: str) -> pb.School:
        """Archive an active school; its teachers keep it and their other schools."""
        return self._call(self._stub.ArchiveSchool, rpc.ArchiveSchoolRequest(name=name)).school

    def merge_schools(self, name: str, into_school: str) -> rpc.MergeSchoolsResponse:
        """Merge a school into another of the same district (both by resource name)."""
        return self._call(
            self._stub.MergeSchools, rpc.MergeSchoolsRequest(name=name, into_school=into_school)
        )

    def create_change_set(self, district_id: str, request_id: str = "") -> pb.ChangeSet:
        """Open a change set (the same request id returns the same change set)."""
        request = rpc.CreateChangeSetRequest(parent=district_name(district_id), request_id=request_id)
        return self._call(self._stub.CreateChangeSet, request).change_set

    def get_change_set(self, name: str) -> pb.ChangeSet:
        """A change set by resource name."""
        return self._call(self._stub.GetChangeSet, rpc.GetChangeSetRequest(name=name)).change_set

    def stage_changes(self, name: str, batch_number: int, changes: Sequence[pb.Change]) -> pb.ChangeSet:
        """Stage one batch (at most 1000 changes); repeating a batch number is a no-op."""
        request = rpc.StageChangesRequest(name=name, batch_number=batch_number, changes=changes)
        return self._call(self._stub.StageChanges, request).change_set

    def commit_change_set(self, name: str, timeout: float | None = None) -> pb.ChangeSet:
        """Commit in one transaction; AbortedError when a touched teacher changed meanwhile."""
        return self._call(
            self._stub.CommitChangeSet, rpc.CommitChangeSetRequest(name=name), timeout
        ).change_set

    def abandon_change_set(self, name: str, reason: str = "") -> pb.ChangeSet:
        """Abandon an open change set."""
        request = rpc.AbandonChangeSetRequest(name=name, reason=reason)
        return self._call(self._stub.AbandonChangeSet, request).change_set

    def list_audit_events(self, district_id: str) -> Iterator[pb.AuditEvent]:
        """Every roster audit event of the district, newest first, page by page."""
        token = ""
        while True:
            request = rpc.ListAuditEventsRequest(
                parent=district_name(district_id), page_size=PAGE_SIZE, page_token=token
            )
            page: rpc.ListAuditEventsResponse = self._call(self._stub.ListAuditEvents, request)
            yield from page.events
            token = page.next_page_token
            if not token:
                return

    def list_change_set_results(self, name: str) -> Iterator[pb.ChangeSetResult]:
        """Every result of a committed change set, by kind then ref."""
        token = ""
        while True:
            request = rpc.ListChangeSetResultsRequest(
                parent=name, page_size=RESULTS_PAGE_SIZE, page_token=token
            )
            page = self._call(self._stub.ListChangeSetResults, request)
            yield from page.results
            token = page.next_page_token
            if not token:
                return


class AsyncRosterClient:
    """asyncio client on a ``grpc.aio`` channel; use as an async context manager or ``await close()``."""

    def __init__(
        self,
        target: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        metadata: MetadataHook | None = None,
        credentials: grpc.ChannelCredentials | None = None,
    ) -> None:
        self._channel = open_aio_channel(target, credentials, OPTIONS)
        self._stub = roster_service_pb2_grpc.RosterServiceStub(self._channel)
        self._calls = _Calls(timeout, metadata)

    async def __aenter__(self) -> AsyncRosterClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the channel."""
        await self._channel.close()

    async def _call(self, method: Callable[..., Any], request: Any, timeout: float | None = None) -> Any:
        try:
            return await method(request, **self._calls.options(timeout))
        except grpc.aio.AioRpcError as error:
            raise from_rpc_error(error) from None

    async def create_district(self, district_id: str, display_name: str) -> pb.District:
        """Create a district."""
        request = rpc.CreateDistrictRequest(district_id=district_id, display_name=display_name)
        response: rpc.CreateDistrictResponse = await self._call(self._stub.CreateDistrict, request)
        return response.district

    async def get_district(self, district_id: str) -> pb.District:
        """Get a district."""
        request = rpc.GetDistrictRequest(name=district_name(district_id))
        response: rpc.GetDistrictResponse = await self._call(self._stub.GetDistrict, request)
        return response.district

    async def list_schools(self, district_id: str) -> AsyncIterator[pb.School]:
        """Every school of the district, page by page."""
        token = ""
        while True:
            request = rpc.ListSchoolsRequest(
                parent=district_name(district_id), page_size=PAGE_SIZE, page_token=token
            )
            page: rpc.ListSchoolsResponse = await self._call(self._stub.ListSchools, request)
            for school in page.schools:
                yield school
            token = page.next_page_token
            if not token:
                return

    async def batch_create_schools(
        self, district_id: str, display_names: Sequence[str], request_id: str = ""
    ) -> list[pb.School]:
        """Create schools, all or none (at most 1000)."""
        request = rpc.BatchCreateSchoolsRequest(
            parent=district_name(district_id),
            schools=[pb.School(display_name=n) for n in display_names],
            request_id=request_id,
        )
        response: rpc.BatchCreateSchoolsResponse = await self._call(self._stub.BatchCreateSchools, request)
        return list(response.schools)

    async def list_teachers(
        self,
        district_id: str,
        *,
        school_id: str = "",
        state: pb.TeacherState.ValueType = pb.TEACHER_STATE_UNSPECIFIED,
        email: str = "",
    ) -> AsyncIterator[pb.Teacher]:
        """Every teacher of the district matching the filters, page by page."""
        token = ""
        while True:
            request = _teachers_request(district_id, school_id, state, email, token)
            page: rpc.ListTeachersResponse = await self._call(self._stub.ListTeachers, request)
            for teacher in page.teachers:
                yield teacher
            token = page.next_page_token
            if not token:
                return

    async def export_district_roster(
        self, district_id: str, timeout: float | None = None
    ) -> AsyncIterator[rpc.ExportDistrictRosterResponse]:
        """The district's whole roster in one snapshot: totals, then chunks of schools, then of teachers."""
        request = rpc.ExportDistrictRosterRequest(parent=district_name(district_id))
        try:
            async for chunk in self._stub.ExportDistrictRoster(request, **self._calls.options(timeout)):
                yield chunk
        except grpc.aio.AioRpcError as error:
            raise from_rpc_error(error) from None

    async def create_change_set(self, district_id: str, request_id: str = "") -> pb.ChangeSet:
        """Open a change set (the same request id returns the same change set)."""
        request = rpc.CreateChangeSetRequest(parent=district_name(district_id), request_id=request_id)
        response: rpc.CreateChangeSetResponse = await self._call(self._stub.CreateChangeSet, request)
        return response.change_set

    async def get_change_set(self, name: str) -> pb.ChangeSet:
        """A change set by resource name."""
        response: rpc.GetChangeSetResponse = await self._call(
            self._stub.GetChangeSet, rpc.GetChangeSetRequest(name=name)
        )
        return response.change_set

    async def stage_changes(self, name: str, batch_number: int, changes: Sequence[pb.Change]) -> pb.ChangeSet:
        """Stage one batch (at most 1000 changes); repeating a batch number is a no-op."""
        request = rpc.StageChangesRequest(name=name, batch_number=batch_number, changes=changes)
        response: rpc.StageChangesResponse = await self._call(self._stub.StageChanges, request)
        return response.change_set

    async def commit_change_set(self, name: str, timeout: float | None = None) -> pb.ChangeSet:
        """Commit in one transaction; AbortedError when a touched teacher changed meanwhile."""
        request = rpc.CommitChangeSetRequest(name=name)
        response: rpc.CommitChangeSetResponse = await self._call(self._stub.CommitChangeSet, request, timeout)
        return response.change_set

    async def abandon_change_set(self, name: str, reason: str = "") -> pb.ChangeSet:
        """Abandon an open change set."""
        request = rpc.AbandonChangeSetRequest(name=name, reason=reason)
        response: rpc.AbandonChangeSetResponse = await self._call(self._stub.AbandonChangeSet, request)
        return response.change_set

    async def list_change_set_results(self, name: str) -> AsyncIterator[pb.ChangeSetResult]:
        """Every result of a committed change set, by kind then ref."""
        token = ""
        while True:
            request = rpc.ListChangeSetResultsRequest(
                parent=name, page_size=RESULTS_PAGE_SIZE, page_token=token
            )
            page: rpc.ListChangeSetResultsResponse = await self._call(
                self._stub.ListChangeSetResults, request
            )
            for result in page.results:
                yield result
            token = page.next_page_token
            if not token:
                return
