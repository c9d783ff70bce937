"""Malformed HTTP requests to the gateway's routes: the HTTP status, a google.rpc.Status body, nothing stored.

The routes are the google.api.http annotations of both services (see /openapi.json); each row
sends what a broken or hostile HTTP client would, and expects the status AIP-193 gives the gRPC
code, with a body of exactly ``code``, ``message`` and optional ``details``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from google.rpc import code_pb2

from services.common.auth import Role
from tests.badinput import tally
from tests.badinput.grpc_rows import changed_tables
from tests.badinput.world import FOREIGN, World
from tests.support.gateway import gateway_settings, running_gateway

TABLE = "HTTP gateway"
Headers = Mapping[str, str] | Mapping[bytes, bytes]
STATUS_KEYS = {"code", "message", "details"}
DENIED = "use a token issued for that district"


@dataclass(frozen=True)
class Call:
    """One HTTP request, the HTTP status and gRPC code it must get, and a fragment of its message.

    ``path`` and ``content`` may use the world's names; the fragment is matched case-insensitively.
    """

    id: str
    method: str
    path: Callable[[World], str]
    status: int
    code: int
    fragment: str
    content: Callable[[World], bytes] | None = None
    params: dict[str, str] = field(default_factory=dict)
    # None: the district administrator's token.
    headers: Callable[[World], Headers] | None = None


def at(suffix: str) -> Callable[[World], str]:
    return lambda w: f"/v1/{w.parent}{suffix}"


def body(text: str | bytes) -> Callable[[World], bytes]:
    raw = text.encode() if isinstance(text, str) else text
    return lambda w: raw


def bearer(token: Callable[[World], str]) -> Callable[[World], Headers]:
    return lambda w: {"Authorization": f"Bearer {token(w)}", "Content-Type": "application/json"}


BAD = code_pb2.INVALID_ARGUMENT
PRECONDITION = code_pb2.FAILED_PRECONDITION
TWENTY_MB = b'{"pairs": [{"classlinkSchoolId": "' + b"x" * (20 * 1024 * 1024) + b'"}]}'

CALLS = [
    # Paths, methods and tokens.
    Call("unknown-route", "GET", lambda w: "/v1/nowhere", 404, code_pb2.NOT_FOUND, "no API route"),
    Call("wrong-method-delete-runs", "DELETE", at("/syncRuns"), 405, code_pb2.UNIMPLEMENTED, "use POST, GET"),
    Call("wrong-method-patch-autosync", "PATCH", at("/autoSync"), 405, code_pb2.UNIMPLEMENTED, "not allowed"),
    Call("bad-run-id", "GET", at("/syncRuns/not-a-uuid"), 400, BAD, "name"),
    Call(
        "unknown-run",
        "GET",
        lambda w: f"/v1/{w.parent}/syncRuns/{uuid.uuid4()}",
        404,
        code_pb2.NOT_FOUND,
        "run",
    ),
    Call("bad-teacher-id", "GET", at("/teachers/garbage"), 400, BAD, "name"),
    Call(
        "foreign-teacher",
        "GET",
        lambda w: f"/v1/{w.foreign_teacher}",
        403,
        code_pb2.PERMISSION_DENIED,
        DENIED,
    ),
    Call(
        "foreign-district-runs",
        "GET",
        lambda w: f"/v1/districts/{FOREIGN}/syncRuns",
        403,
        code_pb2.PERMISSION_DENIED,
        DENIED,
    ),
    Call(
        "foreign-delete-connection",
        "DELETE",
        lambda w: f"/v1/districts/{FOREIGN}/connection",
        403,
        code_pb2.PERMISSION_DENIED,
        DENIED,
    ),
    Call("nul-in-district", "GET", lambda w: "/v1/districts/d%00runs/schools", 400, BAD, "parent"),
    Call(
        "missing-token", "GET", at("/syncRuns"), 401, code_pb2.UNAUTHENTICATED, "token", headers=lambda w: {}
    ),
    Call(
        "forged-token",
        "GET",
        at("/syncRuns"),
        401,
        code_pb2.UNAUTHENTICATED,
        "token",
        headers=bearer(lambda w: "eyJhbGciOiJIUzI1NiJ9.e30.forged"),
    ),
    Call(
        "non-ascii-authorization",
        "GET",
        at("/syncRuns"),
        401,
        code_pb2.UNAUTHENTICATED,
        "ASCII",
        headers=lambda w: {b"Authorization": "Bearer tökén".encode("latin-1")},
    ),
    Call(
        "teacher-forces-sync",
        "POST",
        at("/syncRuns:force"),
        403,
        code_pb2.PERMISSION_DENIED,
        "administrator",
        content=body("{}"),
        headers=bearer(lambda w: w.stack.token(role=Role.TEACHER)),
    ),
    Call(
        "watch-bad-last-event-id",
        "GET",
        lambda w: f"/v1/{w.run}:watch",
        400,
        BAD,
        "Last-Event-ID must be an event sequence number",
        headers=lambda w: {"Authorization": f"Bearer {w.stack.token()}", "Last-Event-ID": "abc"},
    ),
    Call(
        "watch-forged-access-token",
        "GET",
        lambda w: f"/v1/{w.run}:watch",
        401,
        code_pb2.UNAUTHENTICATED,
        "token",
        params={"access_token": "forged"},
        headers=lambda w: {},
    ),
    # Query parameters.
    Call("page-size-negative", "GET", at("/syncRuns"), 400, BAD, "page_size", params={"pageSize": "-1"}),
    Call("page-size-not-a-number", "GET", at("/syncRuns"), 400, BAD, "page", params={"pageSize": "ten"}),
    Call("page-size-overflow", "GET", at("/schools"), 400, BAD, "page", params={"pageSize": "99999999999"}),
    Call(
        "forged-page-token",
        "GET",
        at("/schoolMappings"),
        400,
        BAD,
        "page_token",
        params={"pageToken": "Zm9yZ2Vk"},
    ),
    Call(
        "foreign-page-token",
        "GET",
        at("/syncRuns"),
        400,
        BAD,
        "page_token",
        params={"pageToken": "@teachers"},
    ),
    Call("unknown-query-field", "GET", at("/syncRuns"), 400, BAD, "unknown field", params={"colour": "red"}),
    Call(
        "unknown-enum-state",
        "GET",
        at("/teachers"),
        400,
        BAD,
        "state",
        params={"state": "TEACHER_STATE_ASLEEP"},
    ),
    Call("bad-audit-time", "GET", at("/auditEvents"), 400, BAD, "start", params={"startTime": "yesterday"}),
    Call(
        "history-bad-teacher-id",
        "GET",
        at("/teacherHistory"),
        400,
        BAD,
        "teacher_id",
        params={"teacherId": "nope"},
    ),
    # Bodies.
    Call("malformed-json", "POST", at("/syncRuns"), 400, BAD, "json", content=body("{not json")),
    Call("json-array-body", "POST", at("/syncRuns"), 400, BAD, "object", content=body("[]")),
    Call(
        "wrong-type-approve-run",
        "POST",
        at("/syncRuns"),
        400,
        BAD,
        "approve",
        content=body('{"approveRun": 5}'),
    ),
    Call(
        "unknown-body-field",
        "POST",
        at("/syncRuns"),
        400,
        BAD,
        'no field named "approveRunz"',
        content=body('{"approveRunz": ""}'),
    ),
    Call(
        "invalid-utf8-body",
        "POST",
        at("/syncRuns"),
        400,
        BAD,
        "utf-8",
        content=body(b'{"approveRun": "\xff\xfe"}'),
    ),
    Call(
        "approve-run-not-in-review",
        "POST",
        at("/syncRuns"),
        400,
        PRECONDITION,
        "review",
        content=lambda w: f'{{"approveRun": "{w.run}"}}'.encode(),
    ),
    Call(
        "preview-job-body-not-object",
        "POST",
        at("/syncRuns:preview"),
        400,
        BAD,
        "must be a JSON object",
        content=body('"preview please"'),
    ),
    Call("map-no-pairs", "POST", at("/schoolMappings:map"), 400, BAD, "pairs", content=body('{"pairs": []}')),
    Call(
        "map-pair-wrong-type",
        "POST",
        at("/schoolMappings:map"),
        400,
        BAD,
        "classlink",
        content=body('{"pairs": [{"classlinkSchoolId": 12}]}'),
    ),
    Call(
        "map-20mb-body",
        "POST",
        at("/schoolMappings:map"),
        413,
        code_pb2.RESOURCE_EXHAUSTED,
        "larger than",
        content=body(TWENTY_MB),
    ),
    Call("connect-no-method", "POST", at("/connection:connect"), 400, BAD, "method", content=body("{}")),
    Call(
        "connect-ftp-url",
        "POST",
        at("/connection:connect"),
        400,
        BAD,
        "server_url",
        content=body(
            '{"manual": {"serverUrl": "ftp://x", "clientId": "id", "clientSecret": "secret-secret", '
            '"authMethod": "AUTH_METHOD_OAUTH1"}}'
        ),
    ),
    Call(
        "autosync-unknown-cadence",
        "PUT",
        at("/autoSync"),
        400,
        BAD,
        "cadence",
        content=body('{"cadence": "AUTO_SYNC_CADENCE_HOURLY"}'),
    ),
    Call(
        "autosync-hour-wrong-type", "PUT", at("/autoSync"), 400, BAD, "hour", content=body('{"hour": "noon"}')
    ),
    Call(
        "autosync-deep-nesting",
        "PUT",
        at("/autoSync"),
        400,
        BAD,
        "nested too deeply",
        content=body(b'{"pauseWindows": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"),
    ),
    Call(
        "autosync-nested-objects",
        "PUT",
        at("/autoSync"),
        400,
        BAD,
        "pause",
        content=body(b'{"pauseWindows": [' + b'{"start": ' * 400 + b"1" + b"}" * 400 + b"]}"),
    ),
    Call(
        "cancel-ended-run",
        "POST",
        lambda w: f"/v1/{w.run}:cancel",
        400,
        PRECONDITION,
        "ended",
        content=body("{}"),
    ),
    Call(
        "revert-wrong-type-flag",
        "POST",
        lambda w: f"/v1/{w.run}:revert",
        400,
        BAD,
        "validate",
        content=body('{"validateOnly": "yes"}'),
    ),
    Call(
        "unarchive-active-teacher",
        "POST",
        lambda w: f"/v1/{w.teacher}:unarchive",
        400,
        PRECONDITION,
        "active",
        content=body("{}"),
    ),
    Call("preview-unknown-kind", "POST", at(":previewSync"), 400, BAD, "kind", content=body('{"kind": 99}')),
]


@pytest.fixture(scope="module")
def http(world: World) -> Iterator[httpx.Client]:
    with (
        running_gateway(gateway_settings(world.stack)) as base_url,
        httpx.Client(base_url=base_url, timeout=60) as client,
    ):
        yield client


def resolved(world: World, params: dict[str, str]) -> dict[str, str]:
    """``params`` with ``@teachers`` replaced by a real page token of another list."""
    return {k: world.teachers_token if v == "@teachers" else v for k, v in params.items()}


@pytest.mark.parametrize("call", CALLS, ids=[c.id for c in CALLS])
def test_gateway_refuses(world: World, http: httpx.Client, call: Call) -> None:
    headers = call.headers(world) if call.headers else bearer(lambda w: w.stack.token())(world)
    before = world.snapshot()
    response = http.request(
        call.method,
        call.path(world),
        content=call.content(world) if call.content else None,
        params=resolved(world, call.params),
        headers=headers,
    )
    changed = changed_tables(before, world.snapshot())
    status: Any = (
        response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
    )
    shaped = isinstance(status, dict) and set(status) <= STATUS_KEYS and {"code", "message"} <= set(status)
    message = str(status.get("message", "")) if isinstance(status, dict) else ""
    right = (
        response.status_code == call.status
        and shaped
        and status.get("code") == call.code
        and call.fragment.lower() in message.lower()
    )
    tally.record(TABLE, right=right, unchanged=not changed)
    assert right, (
        f"HTTP {response.status_code} {response.text[:300]!r}; expected {call.status} {call.fragment!r}"
    )
    assert not changed, f"{call.id} changed {changed}"
