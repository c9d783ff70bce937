"""Following a run over HTTP: Server-Sent Events resumed with Last-Event-ID, heartbeats, the end.

A real gateway (uvicorn) in front of real sync and roster servers and the OneRoster sandbox; the
client is httpx streaming, as a browser's EventSource would read it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import httpx
import pytest

from tests.support.gateway import gateway_client
from tests.support.sync_stack import SyncStack, paged_stack

pytestmark = pytest.mark.timeout(180)

# Every teacher page takes this long, so the run is live while the client drops and reconnects.
SLOW_TEACHERS = {"kind": "slow", "delay": 0.6, "times": 4, "path": "teachers"}


@dataclass
class Event:
    """One SSE event as a client sees it."""

    id: str | None = None
    event: str = "message"
    data: str = ""


@dataclass
class Stream:
    """What one connection delivered: events, and keep-alive comments in between."""

    events: list[Event] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)


def read(response: httpx.Response, *, stop_after: int | None = None) -> Stream:
    """Parse ``text/event-stream``; stop (and drop the connection) after ``stop_after`` events."""
    stream, current = Stream(), Event()
    for line in response.iter_lines():
        if line.startswith(":"):
            stream.comments.append(line)
        elif line:
            name, _, value = line.partition(":")
            setattr(current, name, value.removeprefix(" "))
        elif current.data or current.id:
            stream.events.append(current)
            current = Event()
            if stop_after is not None and len(stream.events) == stop_after:
                break
    return stream


@pytest.fixture
def stack(database_url: Callable[[str], str]) -> Iterator[SyncStack]:
    with paged_stack(database_url) as running:
        yield running


def start_run(http: httpx.Client, stack: SyncStack) -> str:
    response = http.post(f"/v1/districts/{stack.district_id}/syncRuns", json={})
    assert response.status_code == 200, response.text
    name: str = response.json()["run"]["name"]
    return name


def test_a_client_that_drops_every_third_event_and_resumes_gets_every_event_exactly_once(
    stack: SyncStack,
) -> None:
    stack.sandbox.set_faults([SLOW_TEACHERS])
    with gateway_client(stack) as http:
        run = start_run(http, stack)
        sequences: list[int] = []
        connections = 0
        ended = False
        while not ended:
            headers = {"Last-Event-ID": str(sequences[-1])} if sequences else {}
            with http.stream("GET", f"/v1/{run}:watch", headers=headers) as response:
                assert response.status_code == 200
                assert response.headers["content-type"].startswith("text/event-stream")
                batch = read(response, stop_after=3)
            connections += 1
            for event in batch.events:
                if event.event == "end":
                    ended = True
                else:
                    assert event.event == "progress"
                    assert event.id is not None
                    sequences.append(int(event.id))
        final = http.get(f"/v1/{run}").json()["run"]

    assert final["state"] == "SYNC_RUN_STATE_SUCCEEDED"
    assert sequences == list(range(1, int(final["lastSequence"]) + 1))
    assert connections >= len(sequences) // 3 > 2


def test_each_event_carries_its_sequence_as_id_and_the_stream_ends_after_the_final_event(
    stack: SyncStack,
) -> None:
    with gateway_client(stack, heartbeat_seconds=0.2) as http:
        stack.sandbox.set_faults([SLOW_TEACHERS])
        run = start_run(http, stack)
        with http.stream("GET", f"/v1/{run}:watch", params={"afterSequence": 0}) as response:
            stream = read(response)

    progress = [event for event in stream.events if event.event == "progress"]
    assert [event.event for event in stream.events[-1:]] == ["end"]
    assert all(
        event.id == httpx.Response(200, content=event.data).json()["event"]["sequence"] for event in progress
    )
    assert (
        httpx.Response(200, content=progress[-1].data).json()["event"]["state"] == "SYNC_RUN_STATE_SUCCEEDED"
    )
    assert ": keep-alive" in stream.comments


def test_after_sequence_in_the_query_skips_what_the_client_has(stack: SyncStack) -> None:
    with gateway_client(stack) as http:
        run = start_run(http, stack)
        with http.stream("GET", f"/v1/{run}:watch") as response:
            everything = [e for e in read(response).events if e.event == "progress"]
        with http.stream("GET", f"/v1/{run}:watch", params={"afterSequence": 2}) as response:
            rest = [e for e in read(response).events if e.event == "progress"]

    assert [e.id for e in rest] == [e.id for e in everything[2:]]


def test_an_event_source_may_send_its_token_in_the_query_of_a_stream(stack: SyncStack) -> None:
    with gateway_client(stack) as http:
        run = start_run(http, stack)
        url = f"{http.base_url}/v1/{run}:watch"
        with httpx.stream("GET", url, params={"access_token": stack.token()}) as response:
            events = read(response).events
        refused = httpx.get(url)

    assert events[-1].event == "end"
    assert refused.status_code == 401 and refused.json()["code"] == 16


def test_a_stream_that_cannot_start_is_a_json_status(stack: SyncStack) -> None:
    with gateway_client(stack) as http:
        missing = http.get(
            f"/v1/districts/{stack.district_id}/syncRuns/00000000-0000-4000-8000-000000000000:watch"
        )
        bad_resume = http.get(
            f"/v1/districts/{stack.district_id}/syncRuns/00000000-0000-4000-8000-000000000000:watch",
            headers={"Last-Event-ID": "seven"},
        )

    assert missing.status_code == 404 and missing.json()["code"] == 5
    assert bad_resume.status_code == 400 and bad_resume.json()["code"] == 3
