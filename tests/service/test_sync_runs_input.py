"""Bad input for every run RPC: the right status, a message naming what to fix, nothing stored."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import grpc
import pytest
from ew.client.errors import RosterError
from ew.client.sync import SyncClient
from ew.sync.v1 import sync_pb2, sync_service_pb2, sync_service_pb2_grpc

from services.common.auth import Role
from tests.support.sync_stack import SyncStack, sync_stack

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SyncStack]:
    # One stack for the module: every call here is refused, so nothing carries over between tests.
    base = tmp_path_factory.mktemp("runs-input")
    with sync_stack(
        f"sqlite:///{base / 'roster.db'}", f"sqlite:///{base / 'sync.db'}", schools=4, teachers=12
    ) as s:
        events = s.client.sync_rosters(s.district_id)
        list(events)
        yield s


@pytest.fixture
def run_name(stack: SyncStack) -> str:
    return stack.client.list_runs(stack.district_id).runs[0].name


@pytest.fixture
def stub(
    stack: SyncStack,
) -> Iterator[tuple[sync_service_pb2_grpc.SyncServiceStub, tuple[tuple[str, str], ...]]]:
    channel = grpc.insecure_channel(stack.server.target)
    yield sync_service_pb2_grpc.SyncServiceStub(channel), (("authorization", f"Bearer {stack.token()}"),)
    channel.close()


def refused(call: Callable[[], object]) -> RosterError:
    with pytest.raises(RosterError) as error:
        call()
    return error.value


def stream_refused(call: Callable[[], object]) -> RosterError:
    return refused(lambda: list(call()))  # type: ignore[call-overload]


def run_count(stack: SyncStack) -> int:
    return len(stack.client.list_runs(stack.district_id, page_size=500).runs)


@pytest.mark.parametrize(
    ("parent", "approve_run", "field"),
    [
        ("", "", "parent"),
        ("district/x", "", "parent"),
        ("districts/d-runs", "syncRuns/1", "approve_run"),
        ("districts/d-runs", "districts/d-runs/syncRuns/not-a-uuid", "approve_run"),
        ("districts/d-runs", f"districts/other/syncRuns/{uuid.uuid4()}", "approve_run"),
    ],
)
def test_sync_rosters_rejects_malformed_requests(
    stack: SyncStack,
    stub: tuple[sync_service_pb2_grpc.SyncServiceStub, tuple[tuple[str, str], ...]],
    parent: str,
    approve_run: str,
    field: str,
) -> None:
    before = run_count(stack)
    service, metadata = stub
    request = sync_service_pb2.SyncRostersRequest(parent=parent, approve_run=approve_run)

    with pytest.raises(grpc.RpcError) as error:
        list(service.SyncRosters(request, metadata=metadata))

    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in (error.value.details() or "")
    assert run_count(stack) == before


def test_sync_rosters_refuses_an_unknown_run_to_approve(stack: SyncStack) -> None:
    before = run_count(stack)
    error = stream_refused(
        lambda: stack.client.sync_rosters(stack.district_id, approve_run=str(uuid.uuid4()))
    )
    assert error.code == grpc.StatusCode.NOT_FOUND
    assert "approve_run" in error.message
    assert run_count(stack) == before


def test_sync_rosters_needs_a_connection(stack: SyncStack) -> None:
    token = stack.token(district_id="d-unconnected")
    with stack.client_as(token) as other:
        error = stream_refused(lambda: other.sync_rosters("d-unconnected"))
        assert error.code == grpc.StatusCode.FAILED_PRECONDITION
        assert "connect" in error.message.lower()
        assert other.list_runs("d-unconnected").runs == []


@pytest.mark.parametrize(
    ("role", "plan", "district", "code"),
    [
        (Role.TEACHER, "district_premium", None, grpc.StatusCode.PERMISSION_DENIED),
        (Role.DISTRICT_ADMIN, "basic", None, grpc.StatusCode.PERMISSION_DENIED),
        (Role.DISTRICT_ADMIN, "district_premium", "d-other", grpc.StatusCode.PERMISSION_DENIED),
    ],
)
def test_every_run_rpc_refuses_callers_who_may_not_sync_this_district(
    stack: SyncStack, run_name: str, role: Role, plan: str, district: str | None, code: grpc.StatusCode
) -> None:
    before = run_count(stack)
    with stack.client_as(stack.token(role=role, plan=plan, district_id=district)) as caller:
        calls: list[Callable[[], object]] = [
            lambda: list(caller.sync_rosters(stack.district_id)),
            lambda: list(caller.watch_run(run_name)),
            lambda: caller.get_run(run_name),
            lambda: caller.list_runs(stack.district_id),
            lambda: caller.list_run_items(run_name),
        ]
        for call in calls:
            assert refused(call).code == code
    assert run_count(stack) == before


def test_run_rpcs_without_a_token_are_unauthenticated(stack: SyncStack, run_name: str) -> None:
    with SyncClient(stack.server.target) as anonymous:
        assert refused(lambda: anonymous.get_run(run_name)).code == grpc.StatusCode.UNAUTHENTICATED
        assert refused(lambda: list(anonymous.watch_run(run_name))).code == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize(
    "name",
    ["", "districts/d-runs", "districts/d-runs/syncRuns/", "districts/d-runs/syncRuns/xyz", "syncRuns/1"],
)
def test_run_names_are_validated(stack: SyncStack, name: str) -> None:
    for call in (
        lambda: stack.client.get_run(name),
        lambda: list(stack.client.watch_run(name)),
        lambda: stack.client.list_run_items(name),
    ):
        error = refused(call)
        assert error.code == grpc.StatusCode.INVALID_ARGUMENT
        assert error.violations and error.violations[0].field in ("name", "parent")


def test_unknown_runs_are_not_found(stack: SyncStack) -> None:
    name = f"districts/{stack.district_id}/syncRuns/{uuid.uuid4()}"
    for call in (
        lambda: stack.client.get_run(name),
        lambda: list(stack.client.watch_run(name)),
        lambda: stack.client.list_run_items(name),
    ):
        assert refused(call).code == grpc.StatusCode.NOT_FOUND


def test_watch_refuses_a_negative_sequence(stack: SyncStack, run_name: str) -> None:
    error = refused(lambda: list(stack.client.watch_run(run_name, after_sequence=-1)))
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert error.violations[0].field == "after_sequence"


def test_list_runs_validates_page_size_and_token(stack: SyncStack) -> None:
    negative = refused(lambda: stack.client.list_runs(stack.district_id, page_size=-1))
    assert negative.code == grpc.StatusCode.INVALID_ARGUMENT and negative.violations[0].field == "page_size"
    forged = refused(lambda: stack.client.list_runs(stack.district_id, page_token="bm90LWEtdG9rZW4"))
    assert forged.code == grpc.StatusCode.INVALID_ARGUMENT and forged.violations[0].field == "page_token"


def test_list_run_items_validates_kind_page_size_and_token(stack: SyncStack, run_name: str) -> None:
    bad_kind = refused(lambda: stack.client.list_run_items(run_name, kind=99))  # type: ignore[arg-type]
    assert bad_kind.code == grpc.StatusCode.INVALID_ARGUMENT and bad_kind.violations[0].field == "kind"
    negative = refused(lambda: stack.client.list_run_items(run_name, page_size=-5))
    assert negative.code == grpc.StatusCode.INVALID_ARGUMENT
    runs_token = stack.client.list_runs(stack.district_id, page_size=1).next_page_token or "x"
    foreign = refused(lambda: stack.client.list_run_items(run_name, page_token=runs_token))
    assert foreign.code == grpc.StatusCode.INVALID_ARGUMENT and foreign.violations[0].field == "page_token"
    page = stack.client.list_run_items(run_name, page_size=1, kind=sync_pb2.PLAN_ITEM_KIND_ADD_TEACHER)
    assert page.next_page_token
    other_kind = refused(
        lambda: stack.client.list_run_items(
            run_name, page_size=1, page_token=page.next_page_token, kind=sync_pb2.PLAN_ITEM_KIND_SKIP
        )
    )
    assert other_kind.code == grpc.StatusCode.INVALID_ARGUMENT
