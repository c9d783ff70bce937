"""RunEvents: a broken progress stream re-attaches after the last event, so no event is lost or repeated."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import grpc
import pytest
from ew.client.errors import PermissionDeniedError
from ew.client.sync import ReattachPolicy, Responses, RunEvents, StreamBroken
from ew.sync.v1 import sync_pb2, sync_service_pb2

RUN = "districts/d1/syncRuns/r1"
RUNNING = sync_pb2.SYNC_RUN_STATE_RUNNING
SUCCEEDED = sync_pb2.SYNC_RUN_STATE_SUCCEEDED


class FakeRpcError(grpc.RpcError, grpc.Call):
    """What a broken call raises: a status code and details, no trailers."""

    def __init__(self, code: grpc.StatusCode, details: str = "") -> None:
        super().__init__()
        self._code = code
        self._details = details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def initial_metadata(self) -> tuple[()]:
        return ()

    def trailing_metadata(self) -> tuple[()]:
        return ()

    def is_active(self) -> bool:
        return False

    def time_remaining(self) -> float:
        return 0.0

    def cancel(self) -> bool:
        return False

    def add_callback(self, callback: Callable[[], None]) -> bool:
        return False


def event(
    sequence: int, state: sync_pb2.SyncRunState.ValueType = RUNNING
) -> sync_service_pb2.SyncRostersResponse:
    return sync_service_pb2.SyncRostersResponse(
        event=sync_pb2.SyncEvent(run=RUN, sequence=sequence, state=state, percent=sequence)
    )


def first_response() -> sync_service_pb2.SyncRostersResponse:
    response = event(1)
    response.run.CopyFrom(sync_pb2.SyncRun(name=RUN, run_id="r1"))
    return response


Script = Sequence[sync_service_pb2.SyncRostersResponse | grpc.RpcError]


class FakeServer:
    """Serves scripted streams in order and records how each was opened and whether it was closed."""

    def __init__(self, starts: list[Script], watches: list[Script]) -> None:
        self._starts = starts
        self._watches = watches
        self.watch_calls: list[tuple[str, int]] = []
        self.start_calls = 0
        self.closed = 0
        self.run = sync_pb2.SyncRun(name=RUN, state=RUNNING, last_sequence=0)

    def _serve(self, script: Script) -> Responses:
        try:
            for item in script:
                if isinstance(item, grpc.RpcError):
                    raise item
                yield item
        finally:
            self.closed += 1

    def start(self) -> Responses:
        self.start_calls += 1
        return self._serve(self._starts.pop(0))

    def get_run(self, run: str) -> sync_pb2.SyncRun:
        assert run == RUN
        return self.run

    def watch(self, run: str, after_sequence: int) -> Responses:
        self.watch_calls.append((run, after_sequence))
        return self._serve(self._watches.pop(0))


def follow(server: FakeServer) -> tuple[RunEvents, list[float]]:
    sleeps: list[float] = []
    policy = ReattachPolicy(max_attempts=3, initial_backoff=0.1, max_backoff=0.4)
    events = RunEvents(server.start, server.watch, server.get_run, policy=policy, sleep=sleeps.append)
    return events, sleeps


def test_unavailable_mid_stream_reattaches_after_the_last_event_and_loses_nothing() -> None:
    server = FakeServer(
        starts=[
            [first_response(), event(2), event(3), FakeRpcError(grpc.StatusCode.UNAVAILABLE, "Socket closed")]
        ],
        watches=[[event(4), event(5), event(6, SUCCEEDED)]],
    )
    events, sleeps = follow(server)

    sequences = [e.sequence for e in events]

    assert sequences == [1, 2, 3, 4, 5, 6]
    assert server.watch_calls == [(RUN, 3)]
    assert events.run is not None and events.run.run_id == "r1"
    assert events.reattach_count == 1 and len(sleeps) == 1


def test_replayed_events_are_not_shown_twice() -> None:
    server = FakeServer(
        starts=[[first_response(), event(2), FakeRpcError(grpc.StatusCode.UNAVAILABLE)]],
        watches=[[event(1), event(2), event(3, SUCCEEDED)]],
    )
    events, _ = follow(server)

    assert [e.sequence for e in events] == [1, 2, 3]


def test_a_connection_reset_reported_as_internal_also_reattaches() -> None:
    reset = FakeRpcError(grpc.StatusCode.INTERNAL, "Received RST_STREAM with error code 2")
    server = FakeServer(starts=[[first_response(), reset]], watches=[[event(2, SUCCEEDED)]])
    events, _ = follow(server)

    assert [e.sequence for e in events] == [1, 2]
    assert server.watch_calls == [(RUN, 1)]


def test_a_stream_that_ends_before_the_run_ends_is_reopened() -> None:
    server = FakeServer(starts=[[first_response(), event(2)]], watches=[[event(3, SUCCEEDED)]])
    events, _ = follow(server)

    assert [e.sequence for e in events] == [1, 2, 3]
    assert server.watch_calls == [(RUN, 2)]


def test_a_break_before_the_first_message_asks_for_the_sync_again() -> None:
    server = FakeServer(
        starts=[[FakeRpcError(grpc.StatusCode.UNAVAILABLE)], [first_response(), event(2, SUCCEEDED)]],
        watches=[],
    )
    events, _ = follow(server)

    assert [e.sequence for e in events] == [1, 2]
    assert server.start_calls == 2 and server.watch_calls == []


def test_watch_starts_after_the_given_sequence_and_reattaches_from_the_last_one_seen() -> None:
    server = FakeServer(
        starts=[],
        watches=[[event(8), FakeRpcError(grpc.StatusCode.UNAVAILABLE)], [event(9, SUCCEEDED)]],
    )
    events = RunEvents(
        lambda: server.watch(RUN, 7),
        server.watch,
        server.get_run,
        run=RUN,
        after_sequence=7,
        sleep=lambda _: None,
    )

    assert [e.sequence for e in events] == [8, 9]
    assert server.watch_calls == [(RUN, 7), (RUN, 8)]


def test_a_refused_request_raises_the_client_error_without_retrying() -> None:
    denied = FakeRpcError(grpc.StatusCode.PERMISSION_DENIED, "ClassLink sync is a District Premium feature")
    server = FakeServer(starts=[[denied]], watches=[])
    events, sleeps = follow(server)

    with pytest.raises(PermissionDeniedError, match="District Premium"):
        next(events)
    assert server.start_calls == 1 and sleeps == []


def test_giving_up_says_where_to_resume() -> None:
    down = FakeRpcError(grpc.StatusCode.UNAVAILABLE, "failed to connect")
    server = FakeServer(
        starts=[[first_response(), event(2), down]],
        watches=[[down], [down], [down]],
    )
    events, sleeps = follow(server)

    assert [next(events).sequence, next(events).sequence] == [1, 2]
    with pytest.raises(StreamBroken) as raised:
        next(events)
    assert raised.value.last_sequence == 2
    assert f"ew-sync watch {RUN} --after 2" in raised.value.message
    assert len(server.watch_calls) == 3 and len(sleeps) == 3
    assert max(sleeps) <= 0.4


def test_the_stream_is_closed_after_the_terminal_event() -> None:
    server = FakeServer(starts=[[first_response(), event(2, SUCCEEDED), event(3)]], watches=[])
    events, _ = follow(server)

    assert [e.sequence for e in events] == [1, 2]
    assert server.closed == 1


def test_watching_a_finished_run_from_its_end_stops_without_retrying() -> None:
    server = FakeServer(starts=[], watches=[[]])
    server.run = sync_pb2.SyncRun(name=RUN, state=SUCCEEDED, last_sequence=9)
    sleeps: list[float] = []
    events = RunEvents(
        lambda: server.watch(RUN, 9),
        server.watch,
        server.get_run,
        run=RUN,
        after_sequence=9,
        sleep=sleeps.append,
    )

    assert list(events) == []
    assert server.watch_calls == [(RUN, 9)] and sleeps == []
