"""Connect ClassLink through real gRPC calls: typed credentials and single sign-on against the sandbox."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import grpc
import httpx
import pytest
from ew.sync.v1 import sync_pb2, sync_service_pb2, sync_service_pb2_grpc

from services.common.auth import Role
from services.sync.store.models import Connection, SignInState
from tests.conftest import DatabaseFactory
from tests.support.sandbox import REDIRECT_URI, SandboxHandle, sso_settings, start_sandbox
from tests.support.sync_stack import DISTRICT, SyncStack, sign_in_stack, sync_stack

CONNECTED = "Connected Successfully! Your ClassLink account is connected."
PARENT = f"districts/{DISTRICT}"
CONNECTION = f"{PARENT}/connection"


def details(error: grpc.RpcError) -> str:
    """The status message of a failed call."""
    return error.details() or ""


@dataclass
class Api:
    """A blocking stub on the in-process sync server, calling as the district's administrator."""

    stack: SyncStack
    stub: sync_service_pb2_grpc.SyncServiceStub

    def metadata(
        self, district_id: str = DISTRICT, role: Role = Role.DISTRICT_ADMIN
    ) -> list[tuple[str, str]]:
        return [("authorization", f"Bearer {self.stack.token(district_id=district_id, role=role)}")]

    def call(self, method: str, request: Any, **caller: Any) -> Any:
        return getattr(self.stub, method)(request, metadata=self.metadata(**caller), timeout=60)

    def fails(self, method: str, request: Any, **caller: Any) -> grpc.RpcError:
        with pytest.raises(grpc.RpcError) as raised:
            self.call(method, request, **caller)
        return raised.value

    def stored_connection(self) -> Connection | None:
        with self.stack.app.sessions() as session:
            return session.get(Connection, DISTRICT)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxHandle]:
    with start_sandbox(tenants=2, schools=3, teachers=12) as handle:
        yield handle


def api_for(stack: SyncStack) -> Iterator[Api]:
    channel = grpc.insecure_channel(stack.server.target)
    try:
        yield Api(stack, sync_service_pb2_grpc.SyncServiceStub(channel))
    finally:
        channel.close()


@pytest.fixture
def api(sandbox: SandboxHandle, database_url: DatabaseFactory) -> Iterator[Api]:
    with sign_in_stack(database_url, sandbox) as stack:
        yield from api_for(stack)


def manual(sandbox: SandboxHandle, **changes: Any) -> sync_service_pb2.ConnectClassLinkRequest:
    tenant = sandbox.tenant()
    values: dict[str, Any] = {
        "server_url": tenant.server_url,
        "auth_method": sync_pb2.AUTH_METHOD_OAUTH1,
        "client_id": tenant.client_id,
        "client_secret": tenant.client_secret,
    }
    return sync_service_pb2.ConnectClassLinkRequest(
        parent=PARENT, manual=sync_pb2.ManualCredentials(**(values | changes))
    )


def test_manual_connect_proves_stores_encrypted_and_never_returns_the_secret(
    api: Api, sandbox: SandboxHandle, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = sandbox.tenant().client_secret

    response = api.call("ConnectClassLink", manual(sandbox))

    assert response.message == CONNECTED
    connection = response.connection
    assert (connection.name, connection.server_url, connection.client_id) == (
        CONNECTION,
        sandbox.tenant().server_url,
        sandbox.tenant().client_id,
    )
    assert connection.connect_method == sync_pb2.CONNECT_METHOD_MANUAL
    assert connection.secret_hint and secret not in connection.secret_hint
    got = api.call("GetConnection", sync_service_pb2.GetConnectionRequest(name=CONNECTION)).connection
    assert got == connection
    assert secret not in str(response) + str(got)
    stored = api.stored_connection()
    assert stored is not None and secret not in stored.secret_ciphertext
    assert api.stack.app.secrets.decrypt(stored.secret_ciphertext).get_secret_value() == secret
    assert secret not in caplog.text


def test_wrong_secret_is_refused_with_advice_and_nothing_is_stored(
    api: Api, sandbox: SandboxHandle, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    error = api.fails("ConnectClassLink", manual(sandbox, client_secret="not-the-secret-at-all"))

    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "ClassLink rejected the client id or secret" in details(error)
    assert "not-the-secret-at-all" not in details(error) + caplog.text
    assert api.stored_connection() is None


def test_an_unreachable_server_is_unavailable_and_nothing_is_stored(api: Api, sandbox: SandboxHandle) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{closed_port}"

    error = api.fails("ConnectClassLink", manual(sandbox, server_url=url))

    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert f"Could not reach the OneRoster server at {url}" in details(error)
    assert api.stored_connection() is None


def test_plain_http_is_refused_unless_the_operator_allows_it(
    sandbox: SandboxHandle, database_url: DatabaseFactory
) -> None:
    with sync_stack(
        database_url("roster"),
        database_url("sync"),
        sandbox=sandbox,
        settings={"allow_insecure_http": False},
        connect=False,
    ) as stack:
        for api in api_for(stack):
            error = api.fails("ConnectClassLink", manual(sandbox))
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "EW_SYNC_ALLOW_INSECURE_HTTP" in details(error)
            assert api.stored_connection() is None


def test_reconnecting_replaces_the_connection_and_disconnect_removes_it(
    api: Api, sandbox: SandboxHandle
) -> None:
    api.call("ConnectClassLink", manual(sandbox))
    bearer = manual(
        sandbox,
        auth_method=sync_pb2.AUTH_METHOD_BEARER,
        client_id="",
        client_secret=sandbox.tenant().bearer_token,
    )

    replaced = api.call("ConnectClassLink", bearer).connection

    assert replaced.auth_method == sync_pb2.AUTH_METHOD_BEARER
    assert (
        api.call("GetConnection", sync_service_pb2.GetConnectionRequest(name=CONNECTION)).connection
        == replaced
    )
    api.call("DeleteConnection", sync_service_pb2.DeleteConnectionRequest(name=CONNECTION))
    for method, request in (
        ("GetConnection", sync_service_pb2.GetConnectionRequest(name=CONNECTION)),
        ("DeleteConnection", sync_service_pb2.DeleteConnectionRequest(name=CONNECTION)),
    ):
        assert api.fails(method, request).code() == grpc.StatusCode.NOT_FOUND
    assert api.stored_connection() is None


def sign_in(api: Api, *, login: str | None = None, district_id: str = DISTRICT) -> tuple[str, str]:
    """Start a sign-in and play the browser: ClassLink's page redirects back with code and state."""
    start = api.call(
        "StartClassLinkSignIn",
        sync_service_pb2.StartClassLinkSignInRequest(
            parent=f"districts/{district_id}", redirect_uri=REDIRECT_URI
        ),
        district_id=district_id,
    )
    url = start.authorization_url + (f"&login_hint={login}" if login else "")
    response = httpx.get(url, follow_redirects=False, timeout=30)
    assert response.status_code == 302
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT_URI
    query = parse_qs(location.query)
    assert query["state"] == [start.state]
    return query["code"][0], start.state


def connect_sign_in(code: str, state: str) -> sync_service_pb2.ConnectClassLinkRequest:
    return sync_service_pb2.ConnectClassLinkRequest(
        parent=PARENT, sign_in=sync_pb2.SignInCode(code=code, state=state)
    )


def test_single_sign_on_connects_the_tenant_the_administrator_signed_in_to(
    api: Api, sandbox: SandboxHandle
) -> None:
    code, state = sign_in(api)

    response = api.call("ConnectClassLink", connect_sign_in(code, state))

    tenant = sandbox.tenant()
    assert response.message == CONNECTED
    assert response.connection.connect_method == sync_pb2.CONNECT_METHOD_SIGN_IN
    assert (response.connection.tenant_id, response.connection.server_url) == (
        tenant.tenant_id,
        tenant.server_url,
    )
    assert response.connection.client_id == tenant.client_id
    assert tenant.client_secret not in str(response)
    with api.stack.app.sessions() as session:
        # Only the state's hash is kept, and it is spent.
        stored = [(row.state_hash, row.used_time is not None) for row in session.query(SignInState)]
        assert stored == [(hashlib.sha256(state.encode()).hexdigest(), True)]


def test_a_sign_in_state_works_once(api: Api) -> None:
    code, state = sign_in(api)
    api.call("ConnectClassLink", connect_sign_in(code, state))

    error = api.fails("ConnectClassLink", connect_sign_in(code, state))

    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "already used" in details(error)


def test_unknown_or_other_districts_states_are_refused_and_nothing_is_stored(api: Api) -> None:
    other_code, other_state = sign_in(api, district_id="d-other")

    for code, state in (("made-up-code", "made-up-state"), (other_code, other_state)):
        error = api.fails("ConnectClassLink", connect_sign_in(code, state))
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "Start Connect ClassLink again" in details(error)
    assert api.stored_connection() is None


def test_an_expired_state_is_refused(api: Api) -> None:
    code, state = sign_in(api)
    started = api.stack.app.clock()
    api.stack.app.clock = lambda: started + dt.timedelta(minutes=11)

    error = api.fails("ConnectClassLink", connect_sign_in(code, state))

    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "expired" in details(error)
    assert api.stored_connection() is None


def test_a_teacher_signing_in_is_told_to_use_an_administrator_account(
    api: Api, sandbox: SandboxHandle
) -> None:
    code, state = sign_in(api, login=sandbox.tenant().logins["teacher"])

    error = api.fails("ConnectClassLink", connect_sign_in(code, state))

    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "Sign in with a ClassLink district administrator account" in details(error)
    assert api.stored_connection() is None


def test_a_tenant_that_has_not_added_the_app_cannot_connect(
    sandbox: SandboxHandle, database_url: DatabaseFactory
) -> None:
    # The partner API of a one-tenant sandbox does not list the second tenant of the sign-in sandbox.
    with (
        start_sandbox(tenants=1, schools=1, teachers=2) as partner,
        sync_stack(
            database_url("roster"),
            database_url("sync"),
            sandbox=sandbox,
            settings=sso_settings(sandbox, partner),
            connect=False,
        ) as stack,
    ):
        for api in api_for(stack):
            code, state = sign_in(api, login=sandbox.tenants[1].logins["admin"])
            error = api.fails("ConnectClassLink", connect_sign_in(code, state))
            assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert "has not added the app" in details(error)
            assert api.stored_connection() is None


def test_sign_in_only_returns_to_configured_redirect_uris(api: Api) -> None:
    request = sync_service_pb2.StartClassLinkSignInRequest(
        parent=PARENT, redirect_uri="https://evil.example.test/cb"
    )

    error = api.fails("StartClassLinkSignIn", request)

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    with api.stack.app.sessions() as session:
        assert session.query(SignInState).count() == 0
