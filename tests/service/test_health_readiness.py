"""Health that means something (readiness follows the database and roster, liveness does not); reflection."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeAlias

import grpc
import pytest
from google.protobuf.descriptor_pb2 import FileDescriptorProto
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2

from services.common import healthcheck
from services.common.health import LIVENESS_SERVICE, READINESS_SERVICE
from services.common.reflection import V1_SERVICE_NAME, V1ALPHA_SERVICE_NAME
from services.roster.server import SERVICE_NAME as ROSTER_SERVICE
from services.sync.api.server import SERVICE_NAME as SYNC_SERVICE
from tests.support.postgres import own_postgres
from tests.support.sync_stack import sync_stack

pytestmark = pytest.mark.timeout(180)

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
Status: TypeAlias = health_pb2.HealthCheckResponse.ServingStatus.ValueType


def status(target: str, service: str) -> Status:
    with grpc.insecure_channel(target) as channel:
        request = health_pb2.HealthCheckRequest(service=service)
        return health_pb2_grpc.HealthStub(channel).Check(request, timeout=10).status


def reaches(target: str, service: str, expected: Status, *, within: float = 30.0) -> bool:
    """Whether ``service`` at ``target`` reports ``expected`` within ``within`` seconds (Health.Watch)."""
    with grpc.insecure_channel(target) as channel:
        updates = health_pb2_grpc.HealthStub(channel).Watch(
            health_pb2.HealthCheckRequest(service=service), timeout=within
        )
        try:
            return any(update.status == expected for update in updates)
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                return False
            raise
        finally:
            updates.cancel()


def test_both_servers_turn_not_serving_while_postgresql_is_down_and_serving_when_it_is_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EW_ROSTER_HEALTH_INTERVAL", "0.1")
    with own_postgres() as postgres:
        roster_url, sync_url = postgres.create_database("roster"), postgres.create_database("sync")
        with sync_stack(roster_url, sync_url, settings={"health_interval": 0.1}) as stack:
            roster, sync = stack.roster.address, stack.server.target
            for target, api in ((roster, ROSTER_SERVICE), (sync, SYNC_SERVICE)):
                for service in (READINESS_SERVICE, api, LIVENESS_SERVICE):
                    assert status(target, service) == SERVING, (target, service)

            postgres.stop()

            assert reaches(roster, READINESS_SERVICE, NOT_SERVING)
            assert reaches(sync, READINESS_SERVICE, NOT_SERVING)
            assert status(roster, ROSTER_SERVICE) == NOT_SERVING
            assert status(sync, SYNC_SERVICE) == NOT_SERVING
            assert status(roster, LIVENESS_SERVICE) == SERVING
            assert status(sync, LIVENESS_SERVICE) == SERVING

            postgres.start()

            assert reaches(roster, READINESS_SERVICE, SERVING)
            assert reaches(sync, READINESS_SERVICE, SERVING)
            events = list(stack.client.sync_rosters(stack.district_id))
            assert events[-1].message == "Sync complete", events[-1].message


def test_the_sync_service_is_not_ready_while_the_roster_service_is_down(
    database_url: Callable[[str], str],
) -> None:
    with sync_stack(database_url("roster"), database_url("sync"), settings={"health_interval": 0.1}) as stack:
        assert status(stack.server.target, READINESS_SERVICE) == SERVING

        stack.roster.server.stop(None)

        assert reaches(stack.server.target, READINESS_SERVICE, NOT_SERVING)
        assert status(stack.server.target, SYNC_SERVICE) == NOT_SERVING
        assert status(stack.server.target, LIVENESS_SERVICE) == SERVING
        # The container health check command says the same.
        assert healthcheck.main([stack.server.target]) == 1
        assert healthcheck.main([stack.server.target, LIVENESS_SERVICE]) == 0
        assert healthcheck.main([stack.roster.address]) == 1  # nothing listens there any more


def reflect(
    target: str, service: str, request: reflection_pb2.ServerReflectionRequest
) -> reflection_pb2.ServerReflectionResponse:
    """One reflection exchange with ``service`` (v1 or v1alpha), called by its method path."""
    with grpc.insecure_channel(target) as channel:
        call = channel.stream_stream(
            f"/{service}/ServerReflectionInfo",
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
        )
        (response,) = call(iter([request]), timeout=10)
        return response


@pytest.mark.parametrize("reflection_service", [V1_SERVICE_NAME, V1ALPHA_SERVICE_NAME])
def test_both_servers_answer_reflection_v1_and_v1alpha(
    database_url: Callable[[str], str], reflection_service: str
) -> None:
    with sync_stack(database_url("roster"), database_url("sync")) as stack:
        for target, api in ((stack.roster.address, ROSTER_SERVICE), (stack.server.target, SYNC_SERVICE)):
            listed = reflect(
                target, reflection_service, reflection_pb2.ServerReflectionRequest(list_services="")
            )
            names = {service.name for service in listed.list_services_response.service}
            assert {api, "grpc.health.v1.Health", V1_SERVICE_NAME, V1ALPHA_SERVICE_NAME} <= names

            described = reflect(
                target, reflection_service, reflection_pb2.ServerReflectionRequest(file_containing_symbol=api)
            )
            files = described.file_descriptor_response.file_descriptor_proto
            assert any(FileDescriptorProto.FromString(raw).service for raw in files)
