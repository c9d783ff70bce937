"""Prometheus metrics, scraped over HTTP as Prometheus does, while a sync runs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from wsgiref.simple_server import WSGIServer

import httpx
import pytest
from ew.client.errors import UnauthenticatedError
from ew.sync.v1 import sync_pb2
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from services.common.metrics import MetricsSettings, start_metrics_server
from services.common.processes import free_port
from services.sync.metrics import RunQueueCollector
from tests.support.sync_stack import SyncStack, paged_stack

pytestmark = pytest.mark.timeout(120)

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def stack(database_url: Callable[[str], str]) -> Iterator[SyncStack]:
    with paged_stack(database_url) as running:
        yield running


@pytest.fixture
def metrics_url(stack: SyncStack) -> Iterator[str]:
    """The /metrics address of this process, with the stack's run queue collector registered."""
    server = start_metrics_server(MetricsSettings(port=free_port(), address="127.0.0.1"))
    assert isinstance(server, WSGIServer)
    collector = RunQueueCollector(stack.app.sessions, stack.app.broker, stack.app.clock)
    REGISTRY.register(collector)
    try:
        yield f"http://127.0.0.1:{server.server_port}/metrics"
    finally:
        REGISTRY.unregister(collector)
        server.shutdown()
        server.server_close()


def scrape(url: str) -> Samples:
    body = httpx.get(url, timeout=10).raise_for_status().text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def rpc(service: str, method: str, kind: str, code: str) -> dict[str, str]:
    return {"grpc_service": service, "grpc_method": method, "grpc_type": kind, "grpc_code": code}


SYNC_ROSTERS_OK = rpc("ew.sync.v1.SyncService", "SyncRosters", "server_stream", "OK")
COMMIT_OK = rpc("ew.roster.v1.RosterService", "CommitChangeSet", "unary", "OK")
GET_CONNECTION_UNAUTHENTICATED = rpc("ew.sync.v1.SyncService", "GetConnection", "unary", "UNAUTHENTICATED")
MANUAL_SUCCEEDED = {"trigger": "MANUAL", "state": "SUCCEEDED"}


def test_a_scrape_during_a_sync_sees_the_run_and_after_it_the_run_rpc_and_oneroster_series_moved(
    stack: SyncStack, metrics_url: str
) -> None:
    before = scrape(metrics_url)
    during: Samples | None = None

    events = stack.client.sync_rosters(stack.district_id)
    for event in events:
        if during is None and event.phase == sync_pb2.SYNC_PHASE_READING_TEACHERS:
            during = scrape(metrics_url)
        last = event
    after = scrape(metrics_url)

    assert last.state == sync_pb2.SYNC_RUN_STATE_SUCCEEDED, last.message
    assert during is not None
    assert value(during, "ew_sync_runs_active", state="RUNNING") == 1
    assert value(after, "ew_sync_runs_active", state="RUNNING") == 0

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("ew_sync_runs_finished_total", **MANUAL_SUCCEEDED) == 1
    assert moved("ew_sync_run_duration_seconds_count", **MANUAL_SUCCEEDED) == 1
    assert moved("ew_sync_teachers_changed_total", kind="added") == last.summary.teachers_added > 0
    assert moved("grpc_server_handled_total", **SYNC_ROSTERS_OK) == 1
    assert moved("grpc_server_handling_seconds_count", **SYNC_ROSTERS_OK) == 1
    assert moved("grpc_server_handled_total", **COMMIT_OK) == 1
    assert moved("ew_oneroster_requests_total", status="200") >= 7  # 60 teachers in pages of 10, and schools
    assert value(after, "ew_queue_messages", queue="sync") == 0


def test_refused_calls_are_counted_with_the_status_the_caller_got(stack: SyncStack, metrics_url: str) -> None:
    before = scrape(metrics_url)

    with stack.client_as("not-a-token") as stranger, pytest.raises(UnauthenticatedError):
        stranger.get_connection(stack.district_id)

    after = scrape(metrics_url)
    moved = value(after, "grpc_server_handled_total", **GET_CONNECTION_UNAUTHENTICATED) - value(
        before, "grpc_server_handled_total", **GET_CONNECTION_UNAUTHENTICATED
    )
    assert moved == 1
