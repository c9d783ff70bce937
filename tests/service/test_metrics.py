"""Prometheus metrics, scraped over HTTP as Prometheus does, while a sync runs."""

from __future__ import annotations

import time
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


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(number for (sample, have), number in samples.items() if sample == name and wanted <= have)


def moved(url: str, before: Samples, name: str, **labels: str) -> float:
    """How far ``name`` (with ``labels``) moved since ``before``, once it moved at all.

    Servers and workers record a call or a run as they finish, a moment after the client read its
    last event (and closed the call, so a stream's code may be OK or CANCELLED): poll, bounded.
    """
    deadline = time.monotonic() + 10
    while (change := total(scrape(url), name, **labels) - total(before, name, **labels)) == 0:
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    return change


SYNC_ROSTERS = {"grpc_service": "ew.sync.v1.SyncService", "grpc_method": "SyncRosters"}
COMMIT_OK = {"grpc_method": "CommitChangeSet", "grpc_code": "OK"}
GET_CONNECTION_UNAUTHENTICATED = {"grpc_method": "GetConnection", "grpc_code": "UNAUTHENTICATED"}
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

    assert last.state == sync_pb2.SYNC_RUN_STATE_SUCCEEDED, last.message
    assert during is not None
    assert total(during, "ew_sync_runs_active", state="RUNNING") == 1
    assert moved(metrics_url, before, "ew_sync_runs_finished_total", **MANUAL_SUCCEEDED) == 1
    assert moved(metrics_url, before, "ew_sync_run_duration_seconds_count", **MANUAL_SUCCEEDED) == 1
    added = moved(metrics_url, before, "ew_sync_teachers_changed_total", kind="added")
    assert added == last.summary.teachers_added > 0
    assert moved(metrics_url, before, "grpc_server_handled_total", **SYNC_ROSTERS) == 1
    assert moved(metrics_url, before, "grpc_server_handling_seconds_count", **SYNC_ROSTERS) == 1
    assert moved(metrics_url, before, "grpc_server_handled_total", **COMMIT_OK) == 1
    # 60 teachers in pages of 10, and the schools.
    assert moved(metrics_url, before, "ew_oneroster_requests_total", status="200") >= 7
    after = scrape(metrics_url)
    assert total(after, "ew_sync_runs_active", state="RUNNING") == 0
    assert total(after, "ew_queue_messages", queue="sync") == 0


def test_refused_calls_are_counted_with_the_status_the_caller_got(stack: SyncStack, metrics_url: str) -> None:
    before = scrape(metrics_url)

    with stack.client_as("not-a-token") as stranger, pytest.raises(UnauthenticatedError):
        stranger.get_connection(stack.district_id)

    assert moved(metrics_url, before, "grpc_server_handled_total", **GET_CONNECTION_UNAUTHENTICATED) == 1
