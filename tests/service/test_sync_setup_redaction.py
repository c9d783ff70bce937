"""Which ClassLink secrets log redaction hides: only those of proven, stored connections.

Redaction is process-wide, so the sandbox's first tenant gets credentials of its own here: the
seeded ones are stored by other suites in this process and stay redacted for them.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator

import grpc
import pytest
from ew.client.errors import FailedPreconditionError, InvalidArgumentError
from ew.sync.v1 import sync_pb2

from services.common.redaction import REDACTED
from services.sync.setup.oneroster_adapter import redaction_owner
from services.sync.store.models import Connection
from tests.conftest import DatabaseFactory
from tests.support.sandbox import SandboxHandle, start_sandbox
from tests.support.sync_stack import DISTRICT, SyncStack, sync_stack

SECOND_DISTRICT = "d-second"
CLIENT_SECRET = f"redaction-client-secret-{uuid.uuid4().hex}"
BEARER_TOKEN = f"redaction-bearer-token-{uuid.uuid4().hex}"

log = logging.getLogger("ew.test.redaction")


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxHandle]:
    with start_sandbox(
        tenants=1, schools=2, teachers=3, client_secret=CLIENT_SECRET, bearer_token=BEARER_TOKEN
    ) as handle:
        yield handle


@pytest.fixture
def stack(sandbox: SandboxHandle, database_url: DatabaseFactory) -> Iterator[SyncStack]:
    with sync_stack(database_url("roster"), database_url("sync"), sandbox=sandbox, connect=False) as stack:
        yield stack


def logged(caplog: pytest.LogCaptureFixture, text: str) -> str:
    """What a log line carrying ``text`` reads once redaction has seen it."""
    caplog.clear()
    with caplog.at_level(logging.INFO, logger=log.name):
        log.info("line: %s", text)
    [record] = caplog.records
    return record.getMessage()


def connect(
    stack: SyncStack,
    secret: str,
    *,
    method: sync_pb2.AuthMethod.ValueType = sync_pb2.AUTH_METHOD_OAUTH1,
    district_id: str = DISTRICT,
) -> None:
    tenant = stack.sandbox.tenant()
    client = (
        stack.client if district_id == DISTRICT else stack.client_as(stack.token(district_id=district_id))
    )
    client.connect_manual(
        district_id,
        server_url=tenant.server_url,
        client_id=tenant.client_id,
        client_secret=secret,
        auth_method=method,
    )


def stored(stack: SyncStack) -> list[str]:
    with stack.app.sessions() as session:
        return [connection.district_id for connection in session.query(Connection)]


def test_a_refused_secret_is_not_redacted_and_a_proven_one_is_until_replaced_or_disconnected(
    stack: SyncStack, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(FailedPreconditionError):
        connect(stack, "teacher1")
    assert logged(caplog, "teacher1 opened the roster") == "line: teacher1 opened the roster"

    connect(stack, CLIENT_SECRET)
    assert logged(caplog, CLIENT_SECRET) == f"line: {REDACTED}"

    connect(stack, BEARER_TOKEN, method=sync_pb2.AUTH_METHOD_BEARER)
    assert logged(caplog, f"{CLIENT_SECRET} {BEARER_TOKEN}") == f"line: {CLIENT_SECRET} {REDACTED}"

    stack.client.delete_connection(DISTRICT)
    assert logged(caplog, BEARER_TOKEN) == f"line: {BEARER_TOKEN}"


def test_a_secret_two_districts_share_stays_redacted_until_both_disconnect(
    stack: SyncStack, caplog: pytest.LogCaptureFixture
) -> None:
    connect(stack, CLIENT_SECRET)
    connect(stack, CLIENT_SECRET, district_id=SECOND_DISTRICT)

    stack.client.delete_connection(DISTRICT)
    assert logged(caplog, CLIENT_SECRET) == f"line: {REDACTED}"
    stack.client_as(stack.token(district_id=SECOND_DISTRICT)).delete_connection(SECOND_DISTRICT)
    assert logged(caplog, CLIENT_SECRET) == f"line: {CLIENT_SECRET}"


def test_a_stored_secret_is_redacted_again_when_a_restarted_service_uses_it(
    stack: SyncStack, caplog: pytest.LogCaptureFixture
) -> None:
    connect(stack, CLIENT_SECRET)
    # A restarted process knows no secret until it loads a connection: forget this one as it would.
    stack.app.redactor.release(redaction_owner(stack.app, DISTRICT))
    assert logged(caplog, CLIENT_SECRET) == f"line: {CLIENT_SECRET}"

    stack.client.preview_sync(DISTRICT)

    assert logged(caplog, CLIENT_SECRET) == f"line: {REDACTED}"


def test_a_secret_shorter_than_eight_characters_is_refused_and_nothing_is_stored(stack: SyncStack) -> None:
    with pytest.raises(InvalidArgumentError) as raised:
        connect(stack, "abc12")

    assert raised.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "The secret is too short (5 characters" in raised.value.message
    assert [v.field for v in raised.value.violations] == ["manual.client_secret"]
    assert stored(stack) == []
