"""Typed client of the sync service (``ew.sync.v1.SyncService``).

One ``SyncClient`` owns one channel; every unary call carries a deadline and the caller's bearer
token, and a failed call raises a ``ew.client.errors`` exception. Run progress comes back as a
``RunEvents`` iterator that re-attaches with ``WatchSyncRun`` after the last event it yielded when
the stream breaks, so a caller sees every event exactly once, in order, up to the run's end.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType

import grpc
from ew.client.channels import SYNC_READS, channel_options, open_channel
from ew.client.errors import UnavailableError, from_rpc_error, retry_delay
from ew.sync.v1 import sync_pb2, sync_service_pb2, sync_service_pb2_grpc

TokenProvider = Callable[[], str]
"""Returns the bearer token for the next call; called on every call, so it may refresh."""

Responses = Generator[sync_service_pb2.SyncRostersResponse, None, None]

TERMINAL_STATES = frozenset(
    {
        sync_pb2.SYNC_RUN_STATE_SUCCEEDED,
        sync_pb2.SYNC_RUN_STATE_NEEDS_REVIEW,
        sync_pb2.SYNC_RUN_STATE_FAILED,
        sync_pb2.SYNC_RUN_STATE_CANCELLED,
        sync_pb2.SYNC_RUN_STATE_PREVIEWED,
    }
)

# A connection reset mid-stream surfaces as INTERNAL or UNKNOWN with one of these in the details.
OPTIONS = channel_options(sync_service_pb2.DESCRIPTOR.services_by_name["SyncService"].full_name, SYNC_READS)
_RESET_MARKERS = ("rst_stream", "connection reset", "socket closed", "stream removed")


def district_name(district_id: str) -> str:
    """The resource name ``districts/{district}``."""
    return f"districts/{district_id}"


def school_mapping_name(district_id: str, classlink_school_id: str) -> str:
    """``districts/{district}/schoolMappings/{classlink_school}``."""
    return f"{district_name(district_id)}/schoolMappings/{classlink_school_id}"


def autosync_name(district_id: str) -> str:
    """``districts/{district}/autoSync``."""
    return f"{district_name(district_id)}/autoSync"


def run_name(district_id: str, run: str) -> str:
    """The resource name of a run from its id; a full name is returned unchanged."""
    return run if run.startswith("districts/") else f"districts/{district_id}/syncRuns/{run}"


def is_transient(error: grpc.RpcError) -> bool:
    """True when the transport broke rather than the request, so re-opening the stream may work."""
    if not isinstance(error, grpc.Call):
        return False
    code = error.code()
    if code == grpc.StatusCode.UNAVAILABLE:
        return True
    details = (error.details() or "").lower()
    return code in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN) and any(
        marker in details for marker in _RESET_MARKERS
    )


class StreamBroken(UnavailableError):
    """A run's event stream broke and re-attaching kept failing; the run itself goes on."""

    def __init__(self, run: str, last_sequence: int, attempts: int) -> None:
        super().__init__(
            grpc.StatusCode.UNAVAILABLE,
            "STREAM_LOST",
            f"Lost the progress stream of {run or 'the sync'} after event {last_sequence} and could "
            f"not re-attach in {attempts} attempts; the run goes on: follow it with "
            f"`ew-sync watch {run or 'RUN'} --after {last_sequence}`.",
        )
        self.run = run
        self.last_sequence = last_sequence


@dataclass(frozen=True)
class ReattachPolicy:
    """How hard ``RunEvents`` tries to re-attach: consecutive attempts without a new event."""

    max_attempts: int = 8
    initial_backoff: float = 0.2
    max_backoff: float = 5.0

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before re-attach attempt ``attempt`` (1-based), with jitter."""
        ceiling = min(self.max_backoff, self.initial_backoff * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)


class RunEvents(Iterator[sync_pb2.SyncEvent]):
    """The events of one run in sequence order, ending with its terminal event.

    ``start()`` opens the first stream while the run's name is unknown (``SyncRosters``); once it
    is known, every (re-)open is ``watch(run_name, last_sequence)``. A stream that breaks with a
    transient error (a server shutting down says ``UNAVAILABLE``, reason ``SERVER_SHUTTING_DOWN``),
    or ends before the terminal event, is re-opened after a backoff (at least the server's
    ``RetryInfo`` delay); events at or below the last yielded sequence are dropped, so nothing is
    lost and nothing shows twice.
    When a stream ends cleanly, ``get_run`` tells whether the run had already ended before
    ``after_sequence`` (watching a finished run from its end yields nothing and stops).
    Non-transient errors raise the ``ew.client.errors`` exception at once.
    """

    def __init__(
        self,
        start: Callable[[], Responses],
        watch: Callable[[str, int], Responses],
        get_run: Callable[[str], sync_pb2.SyncRun],
        *,
        run: str = "",
        after_sequence: int = 0,
        policy: ReattachPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._start = start
        self._watch = watch
        self._get_run = get_run
        self._policy = policy or ReattachPolicy()
        self._sleep = sleep
        self._responses: Responses | None = None
        self._failed_attempts = 0
        self._finished = False
        self.run: sync_pb2.SyncRun | None = None
        """The run as ``SyncRosters`` first reported it; None when following by name."""
        self.run_name = run
        self.last_sequence = after_sequence
        self.last_event: sync_pb2.SyncEvent | None = None
        self.reattach_count = 0

    def __iter__(self) -> RunEvents:
        return self

    def __next__(self) -> sync_pb2.SyncEvent:
        while not self._finished:
            if self._responses is None:
                self._responses = (
                    self._watch(self.run_name, self.last_sequence) if self.run_name else self._start()
                )
            try:
                response = next(self._responses)
            except StopIteration:
                if self._run_ended_already():
                    self.close()
                    break
                self._retry_later(None)
                continue
            except grpc.RpcError as error:
                if not is_transient(error):
                    self.close()
                    raise from_rpc_error(error) from error
                self._retry_later(error)
                continue
            if response.HasField("run") and self.run is None:
                self.run = response.run
                self.run_name = self.run_name or response.run.name
            event = response.event
            self.run_name = self.run_name or event.run
            if event.sequence <= self.last_sequence:
                continue
            self.last_sequence = event.sequence
            self.last_event = event
            self._failed_attempts = 0
            if event.state in TERMINAL_STATES:
                self.close()
            return event
        raise StopIteration

    def close(self) -> None:
        """Stop following the run; the run itself goes on."""
        self._finished = True
        responses, self._responses = self._responses, None
        if responses is not None:
            responses.close()

    def _run_ended_already(self) -> bool:
        """True when the run is over and every one of its events has been yielded."""
        if not self.run_name:
            return False
        try:
            run = self._get_run(self.run_name)
        except UnavailableError:
            return False
        return run.state in TERMINAL_STATES and run.last_sequence <= self.last_sequence

    def _retry_later(self, error: grpc.RpcError | None) -> None:
        self._responses = None
        self._failed_attempts += 1
        if self._failed_attempts > self._policy.max_attempts:
            self._finished = True
            raise StreamBroken(self.run_name, self.last_sequence, self._policy.max_attempts) from error
        self.reattach_count += 1
        asked = retry_delay(error) if error is not None else None
        self._sleep(max(asked or 0.0, self._policy.backoff(self._failed_attempts)))


def _cancelling(call: Iterator[sync_service_pb2.SyncRostersResponse]) -> Responses:
    """Yield a streaming call's responses; cancel the call when the consumer stops early."""
    try:
        yield from call
    finally:
        cancel = getattr(call, "cancel", None)
        if cancel is not None:
            cancel()


def _watch_responses(call: Iterator[sync_service_pb2.WatchSyncRunResponse]) -> Responses:
    """WatchSyncRun responses in the shape of SyncRosters responses (event only)."""
    try:
        for response in call:
            yield sync_service_pb2.SyncRostersResponse(event=response.event)
    finally:
        cancel = getattr(call, "cancel", None)
        if cancel is not None:
            cancel()


class SyncClient:
    """A district administrator's view of the sync service.

    Methods take the district id (and run ids or names) rather than raw requests, and return the
    response messages. ``timeout`` is the deadline of each unary call in seconds; streams have no
    deadline because a run may take long, but they re-attach when they break.
    """

    def __init__(
        self,
        target: str,
        *,
        token: TokenProvider | None = None,
        timeout: float = 30.0,
        credentials: grpc.ChannelCredentials | None = None,
        reattach: ReattachPolicy | None = None,
        channel: grpc.Channel | None = None,
    ) -> None:
        # Over TLS the channel's call credentials carry the token; on plaintext, each call's metadata.
        self._token = token
        if channel is None:
            channel = open_channel(target, credentials, OPTIONS, token)
            self._token = token if credentials is None else None
        self._channel = channel
        self._stub = sync_service_pb2_grpc.SyncServiceStub(channel)
        self._timeout = timeout
        self._reattach = reattach or ReattachPolicy()

    def close(self) -> None:
        """Close the channel."""
        self._channel.close()

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _metadata(self) -> tuple[tuple[str, str | bytes], ...]:
        return (("authorization", f"Bearer {self._token()}"),) if self._token is not None else ()

    # Connection.

    def start_sign_in(
        self, district_id: str, redirect_uri: str
    ) -> sync_service_pb2.StartClassLinkSignInResponse:
        """ClassLink's sign-in URL and the single-use state that comes back with the code."""
        request = sync_service_pb2.StartClassLinkSignInRequest(
            parent=district_name(district_id), redirect_uri=redirect_uri
        )
        try:
            return self._stub.StartClassLinkSignIn(request, timeout=self._timeout, metadata=self._metadata())
        except grpc.RpcError as error:
            raise from_rpc_error(error) from error

    def connect_sign_in(
        self, district_id: str, code: str, state: str
    ) -> sync_service_pb2.ConnectClassLinkResponse:
        """Connect with the code and state ClassLink's sign-in returned."""
        return self._connect(
            sync_service_pb2.ConnectClassLinkRequest(
                parent=district_name(district_id), sign_in=sync_pb2.SignInCode(code=code, state=state)
            )
        )

    def connect_manual(
        self,
        district_id: str,
        *,
        server_url: str,
        client_id: str,
        client_secret: str,
        auth_method: sync_pb2.AuthMethod.ValueType = sync_pb2.AUTH_METHOD_OAUTH1,
        oneroster_version: sync_pb2.OneRosterVersion.ValueType = sync_pb2.ONE_ROSTER_VERSION_V1P1,
        token_url: str = "",
    ) -> sync_service_pb2.ConnectClassLinkResponse:
        """Connect with credentials typed in by hand (``token_url``: OAuth 2 only, optional)."""
        return self._connect(
            sync_service_pb2.ConnectClassLinkRequest(
                parent=district_name(district_id),
                manual=sync_pb2.ManualCredentials(
                    server_url=server_url,
                    auth_method=auth_method,
                    client_id=client_id,
                    client_secret=client_secret,
                    oneroster_version=oneroster_version,
                    token_url=token_url,
                ),
            )
        )

    def _connect(
        self, request: sync_service_pb2.ConnectClassLinkRequest
    ) -> sync_service_pb2.ConnectClassLinkResponse:
        try:
            return self._stub.ConnectClassLink(request, timeout=self._timeout, metadata=self._metadata())
        except grpc.RpcError as error:
            raise from_rpc_error(error) from error

    def get_connection(self, district_id: str) -> sync_pb2.Connection:
        """The district's connection (never its secret)."""
        request = sync_service_pb2.GetConnectionRequest(name=f"{district_name(district_id)}/connection")
        try:
            response = self._stub.GetConnection(request, timeout=self._timeout, metadata=self._metadata())
        except grpc.RpcError as error:
            raise from_rpc_error(error) from error
        return response.connection

    def delete_connection(self, district_id: str) -> None:
        """Delete the connection and its stored secret ("Disconnect ClassLink"); mappings and history stay."""
        request = sync_service_pb2.DeleteConnectionRequest(name=f"{district_name(district_id)}/connection")
        try:
            self._stub.DeleteConnection(request, timeout=self._timeout, metadata=self._metadata())
        except grpc.RpcError as error:
            raise from_rpc_error(error) from error

    # School mapping.

    def list_school_mappings(
        self, district_id: str, *, page_size: int = 0, page_token: str = ""
    ) -> sync_service_pb2.ListSchoolMappingsResponse:
        """One page of ClassLink schools with their mapping or suggestions."""
        request = sync_service_pb2.ListSchoolMappingsRequest(
            parent=district_name(district_id), page_size=page_size, page_token=page_token
        )
        try:
            return self._stub.ListSchoolMappings(request, timeout=self._timeout, metadata=self._metadata())
        except grpc.RpcError as error:
            raise from_rpc_error(error) from error

    def map_schools(self, district_id: str, pairs: Sequence[tuple[str, str]]) -> list[sync_pb2.SchoolMapping]:
        """Map (ClassLink school id, EW school id) pairs by hand, all or none."""
        return list(self.map_schools_response(district_id, pairs).school_mappings)

    def map_schools_response(
        self, district_id: str, pairs: Sequence[tuple[str, str]], *, merge_created_schools: bool = False
    ) -> sync_service_pb2.MapSchoolsResponse:
        """Map pairs by hand; the response also names EW schools a sync created that the pairs left behind.

        With ``merge_created_schools`` those are merged into the schools now mapped.
        """
        request = sync_service_pb2.MapSchoolsRequest(
            parent=district_name(district_id),
            pairs=[sync_pb2.SchoolPair(classlink_school_id=c, ew_school_id=e) for c, e in pairs],
            merge_created_schools=merge_created_schools,
        )
        try:
            return self._stub.MapSchools(request, timeout=self._timeout, metadata=self._metadata())
        except grpc.RpcError as error:
            raise from_rpc_error(error) from error

    def revert_run(
        self, run: str, *, validate_only: bool = False, partial: bool = False
    ) -> sync_service_pb2.RevertSyncRunResponse:
        """Revert a run by name (``validate_only``: preview; ``partial``: leave rows changed since)."""
        request = sync_service_pb2.RevertSyncRunRequest(
            name=run, validate_only=validate_only, partial=partial
        )
        try:
            return self._stub.RevertSyncRun(request, timeout=self._timeout, metadata=self._metadata())
        except grpc.RpcError as error:
            raise from_rpc_error(error) from error

    def list_audit_events(
        self,
        district_id: str,
        *,
        action: sync_pb2.AuditAction.ValueType = sync_pb2.AUDIT_ACTION_UNSPECIFIED,
        actor: str = "",
        start_time: dt.datetime | None = None,
        end_time: dt.datetime | None = None,
        page_size: int = 0,
        page_token: str = "",
    ) -> sync_service_pb2.ListAuditEventsResponse:
        """One page of the district's audit trail, newest first, filtered."""
        request = sync_service_pb2.ListAuditEventsRequest(
            parent=district_name(district_id),
            action=action,
            actor=actor,
            page_size=page_size,
            page_token=page_token,
        )
        if start_time is not None:
            request.start_time.FromDatetime(start_time)
        if end_time is not None:
            request.end_time.FromDatetime(end_time)
        try:
            return self._stub.ListAuditEvents(request, timeout=self._timeout, metadata=self._metadata())
        except grpc.RpcError as error:
            raise from_rpc_error(error) from error

    def list_teacher_history(
        self, district_id: str, teacher_id: str, *, page_size: int = 0, page_token: str = ""
    ) -> sync_service_pb2.ListTeacherHistoryResponse:
        """One page of every change runs made to one EW teacher, oldest first."""
        request = sync_service_pb2.ListTeacherHistoryRequest(
            parent=district_name(district_id),
            teacher_id=teacher_id,
            page_size=page_size,
            page_token=page_token,
        )
        try:
            return self._stub.ListTeacherHistory(request, timeout=self._timeout, metadata=self._metadata())
        except grpc.RpcError as error:
            raise from_rpc_error(error) from error

    def merge_school(
        self, district_id: str, ew_school_id: str, into_ew_school_id: str
    ) -> sync_service_pb2.MergeSchoolResponse:
        """Merge one EW school into another; the merged school's ClassLink mapping follows."""
        request = sync_service_pb2.MergeSchoolRequest(
            parent=district_name(district_id), ew_school_id=ew_school_id, into_ew_school_id=into_ew_school_id
        )
        try:
            return self._stub.MergeSchool(request, timeout=self._timeout, metadata=self._metadata())
        except grpc.RpcError as error:
            raise from_rpc_error(error) from error

    def unmap_school(self, district_id: str, classlink_school_id: str) -> sync_pb2.SchoolMapping:
        """Remove a ClassLink school's mapping; it comes back unmapped, with suggestions."""
        request = sync_service_pb2.UnmapSchoolRequest(
            name=school_mapping_name(district_id, classlink_school_id)
        )
        try:
            response = self._stub.UnmapSchool(request, timeout=self._timeout, metadata=self._metadata())
        except grpc.RpcError as error:
            raise from_rpc_error(error) from error
        return response.school_mapping

    # Preview and runs.

    def preview_sync(
        self,
        district_id: str,
        *,
        page_size: int = 0,
        page_token: str = "",
        kind: sync_pb2.PlanItemKind.ValueType = sync_pb2.PLAN_ITEM_KIND_UNSPECIFIED,
        sync_run: str = "",
    ) -> sync_service_pb2.PreviewSyncResponse:
        """The plan a sync would apply now: complete counts, guard verdict, one page of items.

        Without ``sync_run`` the call itself reads ClassLink (small districts). With ``sync_run``
        (a preview job's id or name, see ``start_sync_preview``) it pages the plan that job stored.
        """
        request = sync_service_pb2.PreviewSyncRequest(
            parent=district_name(district_id),
            page_size=page_size,
            page_token=page_token,
            kind=kind,
            sync_run=run_name(district_id, sync_run) if sync_run else "",
        )
        try:
            return self._stub.PreviewSync(request, timeout=self._timeout, metadata=self._metadata())
        except grpc.RpcError as error:
            raise from_rpc_error(error) from error

    def start_sync_preview(self, district_id: str) -> sync_service_pb2.StartSyncPreviewResponse:
        """Start a preview job (or attach to the district's active one) and return it at once.

        Follow it with ``watch_run`` (it ends PREVIEWED), then page its plan with
        ``preview_sync(district_id, sync_run=run.name)`` or ``list_run_items``.
        """
        request = sync_service_pb2.StartSyncPreviewRequest(parent=district_name(district_id))
        try:
            return self._stub.StartSyncPreview(request, timeout=self._timeout, metadata=self._metadata())
        except grpc.RpcError as error:
            raise from_rpc_error(error) from error

    def start_sync_run(self, district_id: str, *, approve_run: str = "") -> sync_pb2.SyncRun:
        """Start a sync (or attach to the active one) and return the run at once, without following it.

        ``approve_run`` (id or name) goes ahead with a run that stopped in NEEDS_REVIEW.
        """
        request = sync_service_pb2.StartSyncRunRequest(
            parent=district_name(district_id),
            approve_run=run_name(district_id, approve_run) if approve_run else "",
        )
        try:
            response = self._stub.StartSyncRun(request, timeout=self._timeout, metadata=self._metadata())
        except grpc.RpcError as error:
            raise from_rpc_error(error) from error
        return response.run

    def sync_rosters(self, district_id: str, *, approve_run: str = "") -> RunEvents:
        """Start a sync (or attach to the running one) and follow its events to the end.

        ``approve_run`` (id or name) goes ahead with a run that stopped in NEEDS_REVIEW.
        """
        request = sync_service_pb2.SyncRostersRequest(
            parent=district_name(district_id),
            approve_run=run_name(district_id, approve_run) if approve_run else "",
        )

        def start() -> Responses:
            return _cancelling(self._stub.SyncRosters(request, metadata=self._metadata()))

        return RunEvents(start, self._watch, self.get_run, policy=self._reattach)

    def watch_run(self, run: str, *, after_sequence: int = 0) -> RunEvents:
        """Follow a run by name: its events after ``after_sequence``, then live ones to the end."""

        def start() -> Responses:
            return self._watch(run, after_sequence)

        return RunEvents(
            start, self._watch, self.get_run, run=run, after_sequence=after_sequence, policy=self._reattach
        )

    def _watch(self, run: str, after_sequence: int) -> Responses:
        request = sync_service_pb2.WatchSyncRunRequest(name=run, after_sequence=after_sequence)
        return _watch_responses(self._stub.WatchSyncRun(request, metadata=self._metadata()))

    def get_run(self, run: str) -> sync_pb2.SyncRun:
        """A run by name."""
        try:
            response = self._stub.GetSyncRun(
                sync_service_pb2.GetSyncRunRequest(name=run), timeout=self._timeout, metadata=self._metadata()
            )
        except grpc.RpcError as error:
            raise from_rpc_error(error) from error
        return response.run

    def cancel_run(self, run: str) -> sync_pb2.SyncRun:
        """Cancel a run by name; ``FailedPreconditionError`` once its commit started or when it ended.

        A queued run, or one waiting for review, comes back CANCELLED; a running one comes back with
        ``cancel_requested`` and ends CANCELLED at its next checkpoint (follow it with ``watch_run``).
        """
        try:
            response = self._stub.CancelSyncRun(
                sync_service_pb2.CancelSyncRunRequest(name=run),
                timeout=self._timeout,
                metadata=self._metadata(),
            )
        except grpc.RpcError as error:
            raise from_rpc_error(error) from error
        return response.run

    def list_runs(
        self, district_id: str, *, page_size: int = 0, page_token: str = ""
    ) -> sync_service_pb2.ListSyncRunsResponse:
        """One page of the district's runs, newest first."""
        request = sync_service_pb2.ListSyncRunsRequest(
            parent=district_name(district_id), page_size=page_size, page_token=page_token
        )
        try:
            return self._stub.ListSyncRuns(request, timeout=self._timeout, metadata=self._metadata())
        except grpc.RpcError as error:
            raise from_rpc_error(error) from error

    def list_run_items(
        self,
        run: str,
        *,
        page_size: int = 0,
        page_token: str = "",
        kind: sync_pb2.PlanItemKind.ValueType = sync_pb2.PLAN_ITEM_KIND_UNSPECIFIED,
    ) -> sync_service_pb2.ListSyncRunItemsResponse:
        """One page of what a run changed (or would change, when it stopped for review)."""
        request = sync_service_pb2.ListSyncRunItemsRequest(
            parent=run, page_size=page_size, page_token=page_token, kind=kind
        )
        try:
            return self._stub.ListSyncRunItems(request, timeout=self._timeout, metadata=self._metadata())
        except grpc.RpcError as error:
            raise from_rpc_error(error) from error

    # Force Sync Now and AutoSync.

    def force_sync_now(self, district_id: str) -> sync_service_pb2.ForceSyncNowResponse:
        """Queue a sync now (trigger FORCE), or get the district's active run (``already_active``)."""
        request = sync_service_pb2.ForceSyncNowRequest(parent=district_name(district_id))
        try:
            return self._stub.ForceSyncNow(request, timeout=self._timeout, metadata=self._metadata())
        except grpc.RpcError as error:
            raise from_rpc_error(error) from error

    def get_autosync(self, district_id: str) -> sync_pb2.AutoSync:
        """The district's AutoSync settings, next run time and last automatic run."""
        request = sync_service_pb2.GetAutoSyncRequest(name=autosync_name(district_id))
        try:
            response = self._stub.GetAutoSync(request, timeout=self._timeout, metadata=self._metadata())
        except grpc.RpcError as error:
            raise from_rpc_error(error) from error
        return response.auto_sync

    def set_autosync(self, settings: sync_pb2.AutoSync) -> sync_pb2.AutoSync:
        """Replace the AutoSync settings ``settings.name`` names; returns them with the next run time."""
        request = sync_service_pb2.SetAutoSyncRequest(auto_sync=settings)
        try:
            response = self._stub.SetAutoSync(request, timeout=self._timeout, metadata=self._metadata())
        except grpc.RpcError as error:
            raise from_rpc_error(error) from error
        return response.auto_sync
