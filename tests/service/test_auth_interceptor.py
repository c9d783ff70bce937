"""The auth interceptors on real in-process servers (thread and aio) on port 0.

A generic service stands in for the project's services: ``Whoami`` answers with the principal the
handler sees, ``WhoamiStream`` streams it, ``Count`` takes a request stream, ``SyncAdmin`` applies
the sync admin rule through the error interceptor. Health checks need no token.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from concurrent import futures
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer as AsyncHealthServicer
from grpc_status import rpc_status

from services.common.auth import AuthSettings, Role, TokenVerifier, mint_token
from services.common.auth_interceptor import AsyncAuthInterceptor, AuthInterceptor, current_principal
from services.common.authz import require_sync_admin
from services.common.errors import ERROR_DOMAIN
from services.common.grpc_errors import AsyncErrorInterceptor, ErrorInterceptor

SECRET = "interceptor-test-secret-long-enough-for-hs256"
SETTINGS = AuthSettings(algorithm="HS256", secret=SECRET, issuer="ew-rostersync", audience="ew-rostersync")  # type: ignore[arg-type]
SERVICE = "test.Echo"

Metadata = tuple[tuple[str, str], ...]


def describe() -> bytes:
    principal = current_principal()
    return f"{principal.subject}|{principal.district_id}|{principal.role.value}|{principal.plan}".encode()


def thread_handlers() -> grpc.GenericRpcHandler:
    def whoami(request: bytes, context: grpc.ServicerContext) -> bytes:
        return describe()

    def whoami_stream(request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
        yield describe()
        yield describe()

    def count(requests: Iterator[bytes], context: grpc.ServicerContext) -> bytes:
        return str(sum(1 for _ in requests)).encode() + b"|" + describe()

    def sync_admin(request: bytes, context: grpc.ServicerContext) -> bytes:
        require_sync_admin(current_principal(), request.decode())
        return b"ok"

    return grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Whoami": grpc.unary_unary_rpc_method_handler(whoami),
            "WhoamiStream": grpc.unary_stream_rpc_method_handler(whoami_stream),
            "Count": grpc.stream_unary_rpc_method_handler(count),
            "SyncAdmin": grpc.unary_unary_rpc_method_handler(sync_admin),
        },
    )


def aio_handlers() -> grpc.GenericRpcHandler:
    async def whoami(request: bytes, context: Any) -> bytes:
        return describe()

    async def whoami_stream(request: bytes, context: Any) -> AsyncIterator[bytes]:
        yield describe()
        yield describe()

    async def count(requests: AsyncIterator[bytes], context: Any) -> bytes:
        return str(len([r async for r in requests])).encode() + b"|" + describe()

    async def sync_admin(request: bytes, context: Any) -> bytes:
        require_sync_admin(current_principal(), request.decode())
        return b"ok"

    return grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Whoami": grpc.unary_unary_rpc_method_handler(whoami),
            "WhoamiStream": grpc.unary_stream_rpc_method_handler(whoami_stream),
            "Count": grpc.stream_unary_rpc_method_handler(count),
            "SyncAdmin": grpc.unary_unary_rpc_method_handler(sync_admin),
        },
    )


def raw_bytes(data: bytes) -> bytes:
    return data


def bearer(raw: str) -> Metadata:
    return (("authorization", f"Bearer {raw}"),)


def admin_token(settings: AuthSettings = SETTINGS, **overrides: Any) -> str:
    values: dict[str, Any] = {
        "subject": "alice",
        "district_id": "d1",
        "role": Role.DISTRICT_ADMIN,
        "plan": "district_premium",
        "ttl_seconds": 300,
    }
    values.update(overrides)
    return mint_token(settings, **values)


def _other(**overrides: Any) -> AuthSettings:
    values: dict[str, Any] = {"secret": SECRET}
    values.update(overrides)
    return AuthSettings(**values)


REFUSED: list[tuple[str, Callable[[], Metadata], str, str]] = [
    ("no token", lambda: (), "missing bearer token", "MISSING_TOKEN"),
    (
        "basic auth",
        lambda: (("authorization", "Basic YTpi"),),
        "malformed authorization header",
        "MALFORMED_AUTHORIZATION",
    ),
    (
        "empty bearer",
        lambda: (("authorization", "Bearer "),),
        "malformed authorization header",
        "MALFORMED_AUTHORIZATION",
    ),
    (
        "expired",
        lambda: bearer(admin_token(issued_at=datetime.now(UTC) - timedelta(hours=1))),
        "token expired",
        "TOKEN_EXPIRED",
    ),
    (
        "bad signature",
        lambda: bearer(admin_token(_other(secret="a-different-secret-of-sufficient-length!"))),
        "token signature is invalid",
        "TOKEN_INVALID",
    ),
    (
        "wrong audience",
        lambda: bearer(admin_token(_other(audience="elsewhere"))),
        "token audience is wrong",
        "TOKEN_INVALID",
    ),
    (
        "wrong issuer",
        lambda: bearer(admin_token(_other(issuer="elsewhere"))),
        "token issuer is wrong",
        "TOKEN_INVALID",
    ),
    ("garbage", lambda: bearer("abc.def.ghi"), "token is not a well-formed JWT", "TOKEN_INVALID"),
]
METHODS = [("Whoami", False, False), ("WhoamiStream", False, True), ("Count", True, False)]


def echoes_credentials(sent: Metadata, details: str) -> bool:
    credentials = [value.split(" ", 1)[-1] for _, value in sent]
    return any(credential.strip() and credential in details for credential in credentials)


def _error_info(status: Any) -> error_details_pb2.ErrorInfo:
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    return info


# --- thread server ---------------------------------------------------------------------------


@pytest.fixture
def thread_channel() -> Iterator[grpc.Channel]:
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=4),
        interceptors=[AuthInterceptor(TokenVerifier(SETTINGS)), ErrorInterceptor()],
    )
    server.add_generic_rpc_handlers([thread_handlers()])
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield channel
    finally:
        channel.close()
        server.stop(None)


def call_thread(channel: grpc.Channel, method: str, metadata: Metadata, request: bytes = b"") -> list[bytes]:
    path = f"/{SERVICE}/{method}"
    if method == "WhoamiStream":
        return list(channel.unary_stream(path, raw_bytes, raw_bytes)(request, metadata=metadata, timeout=10))
    if method == "Count":
        return [
            channel.stream_unary(path, raw_bytes, raw_bytes)(
                iter([b"a", b"b", b"c"]), metadata=metadata, timeout=10
            )
        ]
    return [channel.unary_unary(path, raw_bytes, raw_bytes)(request, metadata=metadata, timeout=10)]


@pytest.mark.parametrize("method", [m for m, _, _ in METHODS])
@pytest.mark.parametrize(("case", "metadata", "message", "reason"), REFUSED)
def test_thread_server_refuses_bad_credentials(
    thread_channel: grpc.Channel,
    method: str,
    case: str,
    metadata: Callable[[], Metadata],
    message: str,
    reason: str,
) -> None:
    sent = metadata()
    with pytest.raises(grpc.RpcError) as caught:
        call_thread(thread_channel, method, sent)
    error: Any = caught.value
    assert error.code() is grpc.StatusCode.UNAUTHENTICATED
    assert error.details().startswith(message)
    info = _error_info(rpc_status.from_call(error))
    assert (info.reason, info.domain) == (reason, ERROR_DOMAIN)
    assert not echoes_credentials(sent, error.details())


def test_thread_handlers_see_the_principal(thread_channel: grpc.Channel) -> None:
    metadata = bearer(admin_token())
    expected = b"alice|d1|district_admin|district_premium"
    assert call_thread(thread_channel, "Whoami", metadata) == [expected]
    assert call_thread(thread_channel, "WhoamiStream", metadata) == [expected, expected]
    assert call_thread(thread_channel, "Count", metadata) == [b"3|" + expected]


def test_thread_concurrent_callers_each_see_their_own_principal(thread_channel: grpc.Channel) -> None:
    whoami = thread_channel.unary_unary(f"/{SERVICE}/Whoami", raw_bytes, raw_bytes)
    subjects = [f"user{i}" for i in range(16)]
    calls = [whoami.future(b"", metadata=bearer(admin_token(subject=s)), timeout=10) for s in subjects]
    assert [call.result().split(b"|")[0].decode() for call in calls] == subjects


def test_thread_authorization_failure_is_permission_denied(thread_channel: grpc.Channel) -> None:
    teacher = bearer(admin_token(role=Role.TEACHER))
    with pytest.raises(grpc.RpcError) as caught:
        call_thread(thread_channel, "SyncAdmin", teacher, b"d1")
    error: Any = caught.value
    assert error.code() is grpc.StatusCode.PERMISSION_DENIED
    assert "ClassLink sync is a District Premium feature" in error.details()
    assert call_thread(thread_channel, "SyncAdmin", bearer(admin_token()), b"d1") == [b"ok"]


def test_thread_health_check_needs_no_token(thread_channel: grpc.Channel) -> None:
    response = health_pb2_grpc.HealthStub(thread_channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
    assert response.status == health_pb2.HealthCheckResponse.SERVING


def test_thread_unknown_method_is_unimplemented(thread_channel: grpc.Channel) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        thread_channel.unary_unary(f"/{SERVICE}/Nope", raw_bytes, raw_bytes)(b"", timeout=10)
    error: Any = caught.value
    assert error.code() is grpc.StatusCode.UNIMPLEMENTED


# --- aio server --------------------------------------------------------------------------------


@pytest.fixture
async def aio_channel() -> AsyncIterator[grpc.aio.Channel]:
    server = grpc.aio.server(
        interceptors=[AsyncAuthInterceptor(TokenVerifier(SETTINGS)), AsyncErrorInterceptor()]
    )
    server.add_generic_rpc_handlers([aio_handlers()])
    health_pb2_grpc.add_HealthServicer_to_server(AsyncHealthServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield channel
    finally:
        await channel.close()
        await server.stop(None)


async def call_aio(
    channel: grpc.aio.Channel,
    method: str,
    metadata: Metadata,
    request: bytes = b"",
    stream: tuple[bytes, ...] = (b"a", b"b", b"c"),
) -> list[bytes]:
    path = f"/{SERVICE}/{method}"
    if method == "WhoamiStream":
        return [
            r
            async for r in channel.unary_stream(path, raw_bytes, raw_bytes)(
                request, metadata=metadata, timeout=10
            )
        ]
    if method == "Count":

        async def requests() -> AsyncIterator[bytes]:
            for item in stream:
                yield item

        return [
            await channel.stream_unary(path, raw_bytes, raw_bytes)(requests(), metadata=metadata, timeout=10)
        ]
    return [await channel.unary_unary(path, raw_bytes, raw_bytes)(request, metadata=metadata, timeout=10)]


@pytest.mark.parametrize("method", [m for m, _, _ in METHODS])
@pytest.mark.parametrize(("case", "metadata", "message", "reason"), REFUSED)
async def test_aio_server_refuses_bad_credentials(
    aio_channel: grpc.aio.Channel,
    method: str,
    case: str,
    metadata: Callable[[], Metadata],
    message: str,
    reason: str,
) -> None:
    sent = metadata()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        # No request messages: a client still writing after the server refused the call may see
        # its failed send ("Internal error from Core") instead of the status this test reads.
        await call_aio(aio_channel, method, sent, stream=())
    error = caught.value
    assert not echoes_credentials(sent, error.details() or "")
    assert error.code() is grpc.StatusCode.UNAUTHENTICATED
    assert (error.details() or "").startswith(message)
    status = rpc_status.from_call(error)
    info = _error_info(status)
    assert (info.reason, info.domain) == (reason, ERROR_DOMAIN)


async def test_aio_handlers_see_the_principal(aio_channel: grpc.aio.Channel) -> None:
    metadata = bearer(admin_token(district_id="d9", role=Role.SCHOOL_ADMIN, plan="basic"))
    expected = b"alice|d9|school_admin|basic"
    assert await call_aio(aio_channel, "Whoami", metadata) == [expected]
    assert await call_aio(aio_channel, "WhoamiStream", metadata) == [expected, expected]
    assert await call_aio(aio_channel, "Count", metadata) == [b"3|" + expected]


async def test_aio_authorization_failure_is_permission_denied(aio_channel: grpc.aio.Channel) -> None:
    other_district = bearer(admin_token(district_id="d2"))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call_aio(aio_channel, "SyncAdmin", other_district, b"d1")
    assert caught.value.code() is grpc.StatusCode.PERMISSION_DENIED
    assert await call_aio(aio_channel, "SyncAdmin", bearer(admin_token()), b"d1") == [b"ok"]


async def test_aio_health_check_needs_no_token(aio_channel: grpc.aio.Channel) -> None:
    response = await health_pb2_grpc.HealthStub(aio_channel).Check(
        health_pb2.HealthCheckRequest(), timeout=10
    )
    assert response.status == health_pb2.HealthCheckResponse.SERVING
