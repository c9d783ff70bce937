"""The HTTP/JSON gateway in front of real sync and roster servers: transcoding, errors, limits.

Routes come from the protos' google.api.http annotations; bodies and answers are proto3 JSON;
errors are google.rpc.Status with the HTTP status AIP-193 gives each gRPC code.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from services.common.tls import TlsSettings
from tests.conftest import DatabaseFactory
from tests.support.gateway import gateway_client, gateway_settings, running_gateway
from tests.support.pki import make_pki
from tests.support.sync_stack import SyncStack, sync_stack

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SyncStack]:
    folder = tmp_path_factory.mktemp("gateway")
    with sync_stack(
        f"sqlite:///{folder}/roster.db", f"sqlite:///{folder}/sync.db", schools=3, teachers=12
    ) as running:
        yield running


@pytest.fixture(scope="module")
def http(stack: SyncStack) -> Iterator[httpx.Client]:
    with gateway_client(stack, max_body_bytes=4096, cors_origins="https://ew.example") as client:
        yield client


def district(stack: SyncStack, suffix: str = "") -> str:
    return f"/v1/districts/{stack.district_id}{suffix}"


def test_a_get_answers_the_rpcs_response_in_proto3_json(stack: SyncStack, http: httpx.Client) -> None:
    response = http.get(district(stack, "/connection"))

    assert response.status_code == 200
    connection = response.json()["connection"]
    assert connection["name"] == f"districts/{stack.district_id}/connection"
    assert connection["authMethod"] == "AUTH_METHOD_OAUTH1"
    assert "clientSecret" not in connection


def test_query_parameters_fill_request_fields_by_their_json_names(
    stack: SyncStack, http: httpx.Client
) -> None:
    first = http.get(district(stack, "/schoolMappings"), params={"pageSize": 1})
    second = http.get(
        district(stack, "/schoolMappings"),
        params={"page_size": 1, "pageToken": first.json()["nextPageToken"]},
    )

    assert first.status_code == second.status_code == 200
    assert len(first.json()["schoolMappings"]) == len(second.json()["schoolMappings"]) == 1
    assert first.json()["schoolMappings"] != second.json()["schoolMappings"]
    assert first.json()["totalSize"] == "3"


def test_a_body_fills_the_request_and_a_whole_run_goes_through_http(
    stack: SyncStack, http: httpx.Client
) -> None:
    started = http.post(district(stack, "/syncRuns"), json={})
    run = started.json()["run"]
    events = http.get(f"/v1/{run['name']}:watch")
    got = http.get(f"/v1/{run['name']}")

    assert started.status_code == 200 and events.status_code == 200
    assert got.json()["run"]["state"] == "SYNC_RUN_STATE_SUCCEEDED"
    assert got.json()["run"]["percent"] == 100
    listed = http.get(district(stack, "/syncRuns")).json()["runs"]
    assert run["name"] in [r["name"] for r in listed]


def test_a_preview_job_goes_through_http_and_its_plan_is_paged_by_its_name(
    stack: SyncStack, http: httpx.Client
) -> None:
    started = http.post(district(stack, "/syncRuns:preview"), json={})
    job = started.json()["run"]
    events = http.get(f"/v1/{job['name']}:watch")
    page = http.post(district(stack, ":previewSync"), json={"syncRun": job["name"], "pageSize": 1})

    assert started.status_code == 200 and events.status_code == 200, started.text
    assert job["trigger"] == "SYNC_TRIGGER_PREVIEW"
    assert page.status_code == 200, page.text
    assert len(page.json()["items"]) == 1 and page.json()["nextPageToken"]
    ended = http.get(f"/v1/{job['name']}").json()["run"]
    assert ended["state"] == "SYNC_RUN_STATE_PREVIEWED" and ended["percent"] == 100
    assert page.json()["summary"] == ended["summary"]


def test_a_body_field_rule_puts_the_body_in_that_field_and_the_path_in_its_name(
    stack: SyncStack, http: httpx.Client
) -> None:
    response = http.put(
        district(stack, "/autoSync"),
        json={"enabled": False, "cadence": "AUTO_SYNC_CADENCE_DAILY", "hour": 4, "timeZone": "UTC"},
    )

    assert response.status_code == 200, response.text
    auto_sync = response.json()["autoSync"]
    assert auto_sync["name"] == f"districts/{stack.district_id}/autoSync"
    assert auto_sync["cadence"] == "AUTO_SYNC_CADENCE_DAILY" and auto_sync["hour"] == 4
    assert http.get(district(stack, "/autoSync")).json()["autoSync"]["cadence"] == "AUTO_SYNC_CADENCE_DAILY"


def test_roster_reads_go_to_the_roster_service(stack: SyncStack, http: httpx.Client) -> None:
    teachers = http.get(district(stack, "/teachers"), params={"pageSize": 500})
    school = http.get(district(stack, "/schools")).json()["schools"][0]

    assert teachers.status_code == 200
    assert http.get(f"/v1/{school['name']}").status_code == 404
    assert http.get(district(stack)).json()["district"]["name"] == f"districts/{stack.district_id}"


def test_an_invalid_argument_is_400_with_the_field_violation_and_error_info(
    stack: SyncStack, http: httpx.Client
) -> None:
    response = http.get(district(stack, "/syncRuns"), params={"pageSize": -1})

    assert response.status_code == 400
    status = response.json()
    assert status["code"] == 3 and "page_size" in status["message"]
    types = {detail["@type"]: detail for detail in status["details"]}
    assert types["type.googleapis.com/google.rpc.ErrorInfo"]["domain"]
    violations = types["type.googleapis.com/google.rpc.BadRequest"]["fieldViolations"]
    assert violations[0]["field"] == "page_size"


def test_a_missing_run_is_404_not_found(stack: SyncStack, http: httpx.Client) -> None:
    response = http.get(district(stack, "/syncRuns/00000000-0000-4000-8000-000000000000"))

    assert response.status_code == 404
    assert response.json()["code"] == 5


def test_without_a_token_the_backend_refuses_with_401(stack: SyncStack, http: httpx.Client) -> None:
    response = httpx.get(f"{http.base_url}{district(stack, '/connection')}")

    assert response.status_code == 401
    assert response.json()["code"] == 16


@pytest.mark.parametrize(
    ("call", "status", "code"),
    [
        (lambda http, path: http.post(path + ":previewSync", content=b"{not json"), 400, 3),
        (lambda http, path: http.post(path + ":previewSync", json=[1, 2]), 400, 3),
        (lambda http, path: http.post(path + ":previewSync", json={"noSuchField": 1}), 400, 3),
        (lambda http, path: http.get(path + "/syncRuns", params={"pageSize": "many"}), 400, 3),
        (lambda http, path: http.get(path + "/syncRuns", params={"unknown": "1"}), 400, 3),
        (lambda http, path: http.post(path + ":previewSync", json={"pad": "x" * 5000}), 413, 8),
        (lambda http, path: http.get(path + "/nowhere"), 404, 5),
        (lambda http, path: http.delete(path + "/syncRuns"), 405, 12),
    ],
    ids=[
        "not-json",
        "not-an-object",
        "unknown-field",
        "bad-int",
        "unknown-query",
        "too-large",
        "no-route",
        "method",
    ],
)
def test_requests_the_gateway_cannot_transcode_get_4xx_with_a_status_body(
    stack: SyncStack,
    http: httpx.Client,
    call: Callable[[httpx.Client, str], httpx.Response],
    status: int,
    code: int,
) -> None:
    response = call(http, district(stack))

    assert response.status_code == status
    assert response.json()["code"] == code and response.json()["message"]


def test_cors_allows_the_configured_origins_only(stack: SyncStack, http: httpx.Client) -> None:
    def preflight(origin: str) -> httpx.Response:
        return http.options(
            district(stack, "/connection"),
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "authorization",
            },
        )

    assert preflight("https://ew.example").headers["access-control-allow-origin"] == "https://ew.example"
    assert "access-control-allow-origin" not in preflight("https://evil.example").headers


def test_health_and_readiness(stack: SyncStack, http: httpx.Client) -> None:
    assert http.get("/healthz").status_code == 200
    ready = http.get("/readyz")
    assert ready.status_code == 200 and all(ready.json()["backends"].values())


def test_not_ready_while_a_backend_is_unreachable(stack: SyncStack) -> None:
    with (
        socket_closed_port() as dead,
        running_gateway(gateway_settings(stack, roster_target=dead)) as base_url,
    ):
        healthz = httpx.get(f"{base_url}/healthz")
        readyz = httpx.get(f"{base_url}/readyz")

    assert healthz.status_code == 200
    assert readyz.status_code == 503
    assert readyz.json()["backends"] == {"ew.sync.v1.SyncService": True, "ew.roster.v1.RosterService": False}


def test_the_settings_page_is_served(http: httpx.Client) -> None:
    response = http.get("/settings/")

    assert response.status_code == 200
    assert "text/html" in response.headers["content-type"]


@contextmanager
def socket_closed_port() -> Iterator[str]:
    """A host:port nothing listens on (bound, then closed)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    yield f"127.0.0.1:{port}"


def test_the_gateway_reaches_services_that_require_client_certificates(
    database_url: DatabaseFactory, tmp_path: Path
) -> None:
    pki = make_pki(tmp_path)
    with sync_stack(database_url("roster"), database_url("sync"), tls=pki, schools=2, teachers=4) as stack:
        settings = gateway_settings(stack)
        with running_gateway(settings, pki.client()) as base_url:
            trusted = httpx.get(
                f"{base_url}{district(stack, '/connection')}",
                headers={"Authorization": f"Bearer {stack.token()}"},
            )
            ready = httpx.get(f"{base_url}/readyz")
        with running_gateway(settings, TlsSettings(ca_file=pki.ca)) as base_url:
            without_certificate = httpx.get(f"{base_url}/readyz")

    assert trusted.status_code == 200 and ready.status_code == 200
    assert without_certificate.status_code == 503
