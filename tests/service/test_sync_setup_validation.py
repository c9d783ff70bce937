"""Bad input and callers without the right to act, for every setup RPC: the right status, nothing stored."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, cast

import grpc
import pytest
from ew.sync.v1 import sync_pb2, sync_service_pb2, sync_service_pb2_grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from sqlalchemy import func, select

from services.common.auth import Role
from services.sync.store.models import Connection, Plan, SchoolMapping, SignInState
from tests.conftest import DatabaseFactory
from tests.support.sandbox import SandboxHandle, start_sandbox
from tests.support.sync_stack import DISTRICT, SyncStack, sync_stack

PARENT = f"districts/{DISTRICT}"
CONNECTION = f"{PARENT}/connection"
R = sync_service_pb2
INVALID = grpc.StatusCode.INVALID_ARGUMENT
# An enum number this server does not know, as a newer client could send.
UNKNOWN_KIND = sync_pb2.PlanItemKind.ValueType(77)


def details(error: grpc.RpcError) -> str:
    """The status message of a failed call."""
    return error.details() or ""


def manual(**fields: Any) -> R.ConnectClassLinkRequest:
    values: dict[str, Any] = {
        "server_url": "https://district.example.test",
        "auth_method": sync_pb2.AUTH_METHOD_OAUTH1,
        "client_id": "key",
        "client_secret": "s3cret-value-for-the-test",
    }
    return R.ConnectClassLinkRequest(parent=PARENT, manual=sync_pb2.ManualCredentials(**(values | fields)))


def pairs(*items: tuple[str, str]) -> R.MapSchoolsRequest:
    return R.MapSchoolsRequest(
        parent=PARENT, pairs=[sync_pb2.SchoolPair(classlink_school_id=c, ew_school_id=e) for c, e in items]
    )


# URLs no server could be reached at, and what the message says about each.
MALFORMED_URLS = [
    ("https://district example.test", "contains a space at position 17, which a URL cannot contain"),
    ("https://district.example.test/ims\x00", "an invisible character (U+0000)"),
    ("https://district.example.test\n/x", "an invisible character (U+000A)"),
    ("https://district.example.test\u200b", "U+200B ZERO WIDTH SPACE"),
    ("https://district.example.test/{id}", "the character '{'"),
    ("https://district.example.test:44x3", "is not a valid URL"),
    ("https://[district.example.test", "is not a valid URL"),
]

# (case, method, request, expected status, words the message contains)
BAD_REQUESTS: list[tuple[str, str, Any, grpc.StatusCode, str]] = [
    *[
        (f"{method} parent {parent!r}", method, request_type(parent=parent), INVALID, "districts/{district}")
        for parent in ("", "districts/", "district/d-runs", "districts/d-runs/x", "districts/a b")
        for method, request_type in (
            ("StartClassLinkSignIn", R.StartClassLinkSignInRequest),
            ("ConnectClassLink", R.ConnectClassLinkRequest),
            ("ListSchoolMappings", R.ListSchoolMappingsRequest),
            ("MapSchools", R.MapSchoolsRequest),
            ("PreviewSync", R.PreviewSyncRequest),
        )
    ],
    *[
        (f"{method} name {name!r}", method, request_type(name=name), INVALID, "connection")
        for name in ("", PARENT, f"{PARENT}/connections", "districts//connection")
        for method, request_type in (
            ("GetConnection", R.GetConnectionRequest),
            ("DeleteConnection", R.DeleteConnectionRequest),
        )
    ],
    (
        "sign-in without redirect",
        "StartClassLinkSignIn",
        R.StartClassLinkSignInRequest(parent=PARENT),
        INVALID,
        "redirect_uri",
    ),
    (
        "sign-in not configured",
        "StartClassLinkSignIn",
        R.StartClassLinkSignInRequest(parent=PARENT, redirect_uri="https://ew.example.test/cb"),
        grpc.StatusCode.FAILED_PRECONDITION,
        "connect with the OneRoster credentials instead",
    ),
    (
        "connect without a method",
        "ConnectClassLink",
        R.ConnectClassLinkRequest(parent=PARENT),
        INVALID,
        "sign_in",
    ),
    (
        "sign-in code missing",
        "ConnectClassLink",
        R.ConnectClassLinkRequest(parent=PARENT, sign_in=sync_pb2.SignInCode(state="s")),
        INVALID,
        "sign_in.code",
    ),
    ("no server url", "ConnectClassLink", manual(server_url=""), INVALID, "manual.server_url"),
    ("ftp server url", "ConnectClassLink", manual(server_url="ftp://x.test"), INVALID, "manual.server_url"),
    (
        "url with password",
        "ConnectClassLink",
        manual(server_url="https://u:p@x.test"),
        INVALID,
        "credentials",
    ),
    *[
        (f"server url {url!r}", "ConnectClassLink", manual(server_url=url), INVALID, words)
        for url, words in MALFORMED_URLS
    ],
    *[
        (
            f"redirect uri {url!r}",
            "StartClassLinkSignIn",
            R.StartClassLinkSignInRequest(parent=PARENT, redirect_uri=url),
            INVALID,
            words,
        )
        for url, words in MALFORMED_URLS
    ],
    ("no auth method", "ConnectClassLink", manual(auth_method=0), INVALID, "manual.auth_method"),
    ("unknown auth method", "ConnectClassLink", manual(auth_method=42), INVALID, "manual.auth_method"),
    ("unknown version", "ConnectClassLink", manual(oneroster_version=9), INVALID, "manual.oneroster_version"),
    ("no client id", "ConnectClassLink", manual(client_id=""), INVALID, "manual.client_id"),
    ("no secret", "ConnectClassLink", manual(client_secret="  "), INVALID, "manual.client_secret"),
    (
        "negative mapping page",
        "ListSchoolMappings",
        R.ListSchoolMappingsRequest(parent=PARENT, page_size=-1),
        INVALID,
        "page_size",
    ),
    ("no pairs", "MapSchools", pairs(), INVALID, "at least one"),
    ("blank pair ids", "MapSchools", pairs(("", " ")), INVALID, "pairs[0].classlink_school_id"),
    (
        "too many pairs",
        "MapSchools",
        pairs(*[(f"c{i}", f"e{i}") for i in range(501)]),
        INVALID,
        "at most 500",
    ),
    *[
        (
            f"UnmapSchool name {name!r}",
            "UnmapSchool",
            R.UnmapSchoolRequest(name=name),
            INVALID,
            "schoolMappings",
        )
        for name in (
            "",
            PARENT,
            f"{PARENT}/schoolMappings",
            f"{PARENT}/schoolMappings/",
            f"{PARENT}/schoolMappings/ ",
        )
    ],
    (
        "negative preview page",
        "PreviewSync",
        R.PreviewSyncRequest(parent=PARENT, page_size=-5),
        INVALID,
        "page_size",
    ),
    ("unknown kind", "PreviewSync", R.PreviewSyncRequest(parent=PARENT, kind=UNKNOWN_KIND), INVALID, "kind"),
    (
        "forged preview token",
        "PreviewSync",
        R.PreviewSyncRequest(parent=PARENT, page_token="abc"),
        INVALID,
        "page_token",
    ),
]

VALID_REQUESTS: list[tuple[str, Any]] = [
    (
        "StartClassLinkSignIn",
        R.StartClassLinkSignInRequest(parent=PARENT, redirect_uri="https://ew.example.test/cb"),
    ),
    ("ConnectClassLink", manual()),
    ("GetConnection", R.GetConnectionRequest(name=CONNECTION)),
    ("DeleteConnection", R.DeleteConnectionRequest(name=CONNECTION)),
    ("ListSchoolMappings", R.ListSchoolMappingsRequest(parent=PARENT)),
    ("MapSchools", pairs(("c1", "e1"))),
    ("UnmapSchool", R.UnmapSchoolRequest(name=f"{PARENT}/schoolMappings/c1")),
    ("PreviewSync", R.PreviewSyncRequest(parent=PARENT)),
]


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxHandle]:
    with start_sandbox(tenants=1, schools=3, teachers=4) as handle:
        yield handle


@pytest.fixture
def stack(sandbox: SandboxHandle, database_url: DatabaseFactory) -> Iterator[SyncStack]:
    with sync_stack(database_url("roster"), database_url("sync"), sandbox=sandbox, connect=False) as stack:
        yield stack


def stored_rows(stack: SyncStack) -> dict[str, int]:
    with stack.app.sessions() as session:
        return {
            model.__tablename__: session.scalar(select(func.count()).select_from(model)) or 0
            for model in (Connection, SignInState, SchoolMapping, Plan)
        }


def call(stack: SyncStack, method: str, request: Any, token: str | None) -> grpc.RpcError:
    metadata = [("authorization", f"Bearer {token}")] if token is not None else []
    with grpc.insecure_channel(stack.server.target) as channel:
        stub = sync_service_pb2_grpc.SyncServiceStub(channel)
        with pytest.raises(grpc.RpcError) as raised:
            getattr(stub, method)(request, metadata=metadata, timeout=60)
    return raised.value


def test_every_bad_request_gets_an_actionable_status_and_changes_nothing(stack: SyncStack) -> None:
    empty = stored_rows(stack)
    token = stack.token()
    for case, method, request, code, words in BAD_REQUESTS:
        error = call(stack, method, request, token)
        assert (case, error.code()) == (case, code)
        assert words in details(error), (case, details(error))
    assert stored_rows(stack) == empty == dict.fromkeys(empty, 0)


def test_a_malformed_url_names_the_field_and_what_is_wrong_with_it(stack: SyncStack) -> None:
    token = stack.token()
    cases = [
        ("manual.server_url", "ConnectClassLink", manual(server_url="https://district.exa\tmple.test")),
        (
            "redirect_uri",
            "StartClassLinkSignIn",
            R.StartClassLinkSignInRequest(parent=PARENT, redirect_uri="https://ew.example.test/c b"),
        ),
    ]
    for field, method, request in cases:
        error = call(stack, method, request, token)
        status = rpc_status.from_call(cast(grpc.Call, error))
        assert status is not None and status.code == INVALID.value[0]
        bad_request = error_details_pb2.BadRequest()
        assert [d.Unpack(bad_request) for d in status.details if d.Is(bad_request.DESCRIPTOR)] == [True]
        [violation] = bad_request.field_violations
        assert violation.field == field
        assert "which a URL cannot contain" in violation.description
    assert stored_rows(stack) == dict.fromkeys(stored_rows(stack), 0)


def test_only_a_premium_district_administrator_of_the_district_gets_through(stack: SyncStack) -> None:
    callers = {
        "no token": (None, grpc.StatusCode.UNAUTHENTICATED),
        "teacher": (stack.token(role=Role.TEACHER), grpc.StatusCode.PERMISSION_DENIED),
        "school admin": (stack.token(role=Role.SCHOOL_ADMIN), grpc.StatusCode.PERMISSION_DENIED),
        "basic plan": (stack.token(plan="district_basic"), grpc.StatusCode.PERMISSION_DENIED),
        "other district": (stack.token(district_id="d-other"), grpc.StatusCode.PERMISSION_DENIED),
    }
    for method, request in VALID_REQUESTS:
        for caller, (token, code) in callers.items():
            error = call(stack, method, request, token)
            assert (method, caller, error.code()) == (method, caller, code)
    assert stored_rows(stack) == dict.fromkeys(stored_rows(stack), 0)


def test_undecodable_requests_are_invalid_arguments_without_internals(stack: SyncStack) -> None:
    """A truncated message or a string field that is not UTF-8, to a unary and a streaming RPC."""
    empty = stored_rows(stack)
    metadata = (("authorization", f"Bearer {stack.token()}"),)
    connection = R.GetConnectionRequest(name=CONNECTION).SerializeToString()
    sync = R.SyncRostersRequest(parent=PARENT).SerializeToString()
    # Field 1's tag and length, then bytes that are not UTF-8 in place of the first characters.
    bad_connection = connection[:2] + b"\xff\xfe" + connection[4:]
    bad_sync = sync[:2] + b"\xff" + sync[3:]
    with grpc.insecure_channel(stack.server.target) as channel:
        get_connection: grpc.UnaryUnaryMultiCallable[bytes, R.GetConnectionResponse] = channel.unary_unary(
            "/ew.sync.v1.SyncService/GetConnection",
            request_serializer=None,
            response_deserializer=R.GetConnectionResponse.FromString,
        )
        sync_rosters: grpc.UnaryStreamMultiCallable[bytes, R.SyncRostersResponse] = channel.unary_stream(
            "/ew.sync.v1.SyncService/SyncRosters",
            request_serializer=None,
            response_deserializer=R.SyncRostersResponse.FromString,
        )
        attempts: list[Callable[[], object]] = [
            lambda: get_connection(connection[:-1], metadata=metadata, timeout=60),
            lambda: get_connection(bad_connection, metadata=metadata, timeout=60),
            lambda: list(sync_rosters(sync[:-1], metadata=metadata, timeout=60)),
            lambda: list(sync_rosters(bad_sync, metadata=metadata, timeout=60)),
        ]
        for number, attempt in enumerate(attempts):
            with pytest.raises(grpc.RpcError) as raised:
                attempt()
            assert (number, raised.value.code()) == (number, INVALID)
            message = details(raised.value)
            assert message.startswith("The request could not be decoded: "), message
            assert "DecodeError" not in message and "class" not in message
    assert stored_rows(stack) == empty
