"""/openapi.json: an OpenAPI 3.1 document generated from the protos, covering every annotated RPC."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from ew.roster.v1 import roster_service_pb2
from ew.sync.v1 import sync_service_pb2
from google.api import annotations_pb2

from services.gateway.settings import GatewaySettings
from tests.support.gateway import running_gateway

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def document() -> Iterator[dict[str, Any]]:
    # The document needs no backend: nothing listens at these targets.
    settings = GatewaySettings(sync_target="127.0.0.1:9", roster_target="127.0.0.1:9")
    with running_gateway(settings) as base_url:
        response = httpx.get(f"{base_url}/openapi.json")
    assert response.status_code == 200
    yield response.json()


def annotated_methods() -> set[str]:
    names = set()
    for file in (sync_service_pb2.DESCRIPTOR, roster_service_pb2.DESCRIPTOR):
        for service in file.services_by_name.values():
            for method in service.methods:
                if method.GetOptions().HasExtension(annotations_pb2.http):
                    names.add(f"{service.name}_{method.name}")
    return names


def operations(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {op["operationId"]: op for item in document["paths"].values() for op in item.values()}


def test_every_annotated_rpc_is_an_operation(document: dict[str, Any]) -> None:
    assert document["openapi"] == "3.1.0"
    assert annotated_methods() == set(operations(document))
    assert {"SyncService_WatchSyncRun", "SyncService_SetAutoSync", "RosterService_UnarchiveTeacher"} <= set(
        operations(document)
    )


def test_descriptions_come_from_the_proto_comments(document: dict[str, Any]) -> None:
    watch = operations(document)["SyncService_WatchSyncRun"]
    run = document["components"]["schemas"]["ew.sync.v1.SyncRun"]

    assert watch["description"].startswith("Streams a run's events after a sequence number")
    assert run["properties"]["percent"]["description"].startswith("0 to 100")


def test_paths_name_each_resource_id_and_bodies_leave_out_path_fields(document: dict[str, Any]) -> None:
    connect = document["paths"]["/v1/districts/{district}/connection:connect"]["post"]
    body = connect["requestBody"]["content"]["application/json"]["schema"]

    assert [p["name"] for p in connect["parameters"]] == ["district"]
    assert set(body["properties"]) == {"signIn", "manual"}
    assert body["not"] == {"anyOf": [{"required": ["signIn", "manual"]}]}
    watch = document["paths"]["/v1/districts/{district}/syncRuns/{syncRun}:watch"]["get"]
    assert [p["name"] for p in watch["parameters"]] == ["district", "syncRun", "afterSequence"]
    assert "text/event-stream" in watch["responses"]["200"]["content"]
