"""A Node client built from the repository's protos alone decodes a refusal's ErrorInfo as Python does.

``clients/node/refused.js`` loads ``protos/`` (our APIs and the vendored google/api and google/rpc
files) with @grpc/proto-loader, calls GetConnection with a caller the rules refuse, and decodes the
``grpc-status-details-bin`` trailer as google.rpc.Status + ErrorInfo with protobufjs.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from ew.client.errors import PermissionDeniedError
from ew.sync.v1 import sync_service_pb2, sync_service_pb2_grpc
from google.rpc import error_details_pb2  # type: ignore[import-untyped,unused-ignore]
from grpc_status import rpc_status

from services.common.auth import Role
from services.common.errors import ERROR_DOMAIN
from tests.support.sync_stack import SyncStack, sync_stack

pytestmark = pytest.mark.timeout(300)

ROOT = Path(__file__).resolve().parents[2]
NODE_CLIENT = ROOT / "clients" / "node"


@pytest.fixture
def node_client(node_examples: Path) -> Path:
    """The path of refused.js, its packages installed."""
    return node_examples / "refused.js"


@pytest.fixture
def stack(database_url: Callable[[str], str]) -> Iterator[SyncStack]:
    with sync_stack(database_url("roster"), database_url("sync"), connect=False) as running:
        yield running


def _node(script: Path, *args: str) -> dict[str, Any]:
    done = subprocess.run(["node", str(script), *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _python_error_info(stack: SyncStack, token: str) -> tuple[grpc.StatusCode, error_details_pb2.ErrorInfo]:
    """The same call from Python's generated stub, its ErrorInfo decoded with grpc_status."""
    with grpc.insecure_channel(stack.server.target) as channel:
        stub = sync_service_pb2_grpc.SyncServiceStub(channel)
        request = sync_service_pb2.GetConnectionRequest(name=f"districts/{stack.district_id}/connection")
        with pytest.raises(grpc.RpcError) as raised:
            stub.GetConnection(request, metadata=(("authorization", f"Bearer {token}"),), timeout=30)
    call: grpc.Call = raised.value  # type: ignore[assignment]
    status = rpc_status.from_call(call)
    assert status is not None, "the refusal carries no grpc-status-details-bin"
    info = error_details_pb2.ErrorInfo()
    assert [d for d in status.details if d.Unpack(info)], "no ErrorInfo among the status details"
    return call.code(), info


@pytest.mark.parametrize(
    ("role", "plan"),
    [(Role.TEACHER, "district_premium"), (Role.DISTRICT_ADMIN, "district_basic")],
    ids=["teacher", "admin-without-premium"],
)
def test_node_decodes_the_same_error_info_as_the_python_client(
    node_client: Path, stack: SyncStack, role: Role, plan: str
) -> None:
    token = stack.token(role=role, plan=plan)

    printed = _node(node_client, stack.server.target, token)
    with pytest.raises(PermissionDeniedError) as raised:
        stack.client_as(token).get_connection(stack.district_id)
    code, info = _python_error_info(stack, token)

    # The Python client library decodes ErrorInfo from the refused call...
    assert raised.value.code == grpc.StatusCode.PERMISSION_DENIED
    assert raised.value.reason == info.reason and info.reason
    assert info.domain == ERROR_DOMAIN
    # ...and the Node client prints the same status, reason and domain.
    assert printed["refused"] is True
    assert printed["code"] == code.name == "PERMISSION_DENIED"
    assert (printed["reason"], printed["domain"]) == (raised.value.reason, info.domain)
    assert printed["metadata"] == dict(info.metadata)
