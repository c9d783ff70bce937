"""TLS and mutual TLS on a real gRPC server, with a throwaway CA made for the test."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from pydantic import ValidationError

from services.common.auth import AuthSettings, ServiceTokenProvider, TokenVerifier
from services.common.auth_interceptor import AuthInterceptor, current_principal
from services.common.tls import TlsSettings, add_server_port
from tests.support.pki import Pki, make_pki


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path)


def serve(settings: TlsSettings, *interceptors: grpc.ServerInterceptor) -> tuple[grpc.Server, int]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2), interceptors=list(interceptors))
    health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
    port = add_server_port(server, "127.0.0.1:0", settings)
    server.start()
    return server, port


@pytest.fixture
def mtls_port(pki: Pki) -> Iterator[int]:
    server, port = serve(
        TlsSettings(
            cert_file=pki.server_cert, key_file=pki.server_key, ca_file=pki.ca, require_client_cert=True
        )
    )
    try:
        yield port
    finally:
        server.stop(None)


def check(port: int, client: TlsSettings) -> health_pb2.HealthCheckResponse.ServingStatus.ValueType:
    with grpc.secure_channel(
        f"localhost:{port}",
        client.channel_credentials(),
        options=[("grpc.ssl_target_name_override", "localhost")],
    ) as channel:
        response = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
        return response.status


def test_client_with_a_certificate_from_the_ca_is_served(mtls_port: int, pki: Pki) -> None:
    client = TlsSettings(cert_file=pki.client_cert, key_file=pki.client_key, ca_file=pki.ca)
    assert client.client_enabled
    assert check(mtls_port, client) == health_pb2.HealthCheckResponse.SERVING


@pytest.mark.parametrize("presents", ["nothing", "a certificate from another CA"])
def test_client_without_a_trusted_certificate_is_refused(mtls_port: int, pki: Pki, presents: str) -> None:
    client = (
        TlsSettings(ca_file=pki.ca)
        if presents == "nothing"
        else TlsSettings(cert_file=pki.rogue_cert, key_file=pki.rogue_key, ca_file=pki.ca)
    )
    with pytest.raises(grpc.RpcError) as caught:
        check(mtls_port, client)
    error: grpc.Call = caught.value  # type: ignore[assignment]
    assert error.code() is grpc.StatusCode.UNAVAILABLE


def test_server_only_tls_serves_clients_without_a_certificate(pki: Pki) -> None:
    server, port = serve(TlsSettings(cert_file=pki.server_cert, key_file=pki.server_key))
    try:
        assert check(port, TlsSettings(ca_file=pki.ca)) == health_pb2.HealthCheckResponse.SERVING
    finally:
        server.stop(None)


def test_client_that_does_not_trust_the_server_ca_gives_up(mtls_port: int, pki: Pki) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        check(
            mtls_port, TlsSettings(cert_file=pki.client_cert, key_file=pki.client_key, ca_file=pki.rogue_cert)
        )
    error: grpc.Call = caught.value  # type: ignore[assignment]
    assert error.code() is grpc.StatusCode.UNAVAILABLE


def test_tls_is_off_by_default_and_the_port_is_plaintext() -> None:
    settings = TlsSettings()
    assert not settings.enabled
    server, port = serve(settings)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            response = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert response.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        server.stop(None)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"EW_TLS_CERT_FILE": "server.crt"}, "set both EW_TLS_CERT_FILE and EW_TLS_KEY_FILE"),
        ({"EW_TLS_REQUIRE_CLIENT_CERT": "true"}, "EW_TLS_REQUIRE_CLIENT_CERT needs EW_TLS_CA_FILE"),
        ({"EW_TLS_CA_FILE": "missing.pem"}, "EW_TLS_CA_FILE missing.pem is not a readable file"),
    ],
)
def test_inconsistent_settings_fail_fast(
    env: dict[str, str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=message):
        TlsSettings()


def test_service_identity_calls_over_mutual_tls(pki: Pki) -> None:
    """The sync service's path to the roster service: client certificate plus its own service token."""
    auth = AuthSettings(secret="tls-test-secret-that-is-long-enough-for-hs256")  # type: ignore[arg-type]
    server_tls = TlsSettings(
        cert_file=pki.server_cert, key_file=pki.server_key, ca_file=pki.ca, require_client_cert=True
    )
    server, port = serve(server_tls, AuthInterceptor(TokenVerifier(auth)))

    def whoami(request: bytes, context: grpc.ServicerContext) -> bytes:
        principal = current_principal()
        return f"{principal.subject}|{principal.role.value}|{principal.district_id}".encode()

    server.add_generic_rpc_handlers(
        [
            grpc.method_handlers_generic_handler(
                "test.Echo", {"Whoami": grpc.unary_unary_rpc_method_handler(whoami)}
            )
        ]
    )
    client_tls = TlsSettings(cert_file=pki.client_cert, key_file=pki.client_key, ca_file=pki.ca)
    try:
        with grpc.secure_channel(f"localhost:{port}", client_tls.channel_credentials()) as channel:
            call = channel.unary_unary("/test.Echo/Whoami", _raw, _raw)
            answer = call(b"", metadata=ServiceTokenProvider(auth).metadata(), timeout=10)
            with pytest.raises(grpc.RpcError) as caught:
                call(b"", timeout=10)
    finally:
        server.stop(None)
    assert answer == b"ew-sync|service|*"
    error: grpc.Call = caught.value  # type: ignore[assignment]
    assert error.code() is grpc.StatusCode.UNAUTHENTICATED


def _raw(data: bytes) -> bytes:
    return data
