"""Both services over mutual TLS with a throwaway CA: a whole sync goes client → sync → roster encrypted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from ew.roster.v1 import roster_pb2
from ew.sync.v1 import sync_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common.tls import TlsSettings
from tests.conftest import DatabaseFactory
from tests.support.pki import Pki, make_pki
from tests.support.sync_stack import DISTRICT, SyncStack, sync_stack

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path)


@pytest.fixture
def stack(pki: Pki, database_url: DatabaseFactory) -> Iterator[SyncStack]:
    with sync_stack(database_url("roster"), database_url("sync"), tls=pki, schools=3, teachers=12) as running:
        yield running


def health(channel: grpc.Channel) -> health_pb2.HealthCheckResponse.ServingStatus.ValueType:
    return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10).status


def test_a_sync_lands_in_the_roster_with_every_call_over_mutual_tls(stack: SyncStack) -> None:
    preview = stack.client.preview_sync(DISTRICT)

    last = list(stack.client.sync_rosters(DISTRICT))[-1]

    assert last.state == sync_pb2.SYNC_RUN_STATE_SUCCEEDED, last.message
    assert last.summary.teachers_added == preview.summary.teachers_added > 0
    active = [
        t for t in stack.roster.client.list_teachers(DISTRICT) if t.state == roster_pb2.TEACHER_STATE_ACTIVE
    ]
    assert len(active) == last.summary.teachers_added
    assert stack.client.get_connection(DISTRICT).HasField("last_success_time")


@pytest.mark.parametrize("server", ["sync", "roster"])
def test_a_client_without_a_certificate_from_the_ca_is_not_served(
    stack: SyncStack, pki: Pki, server: str
) -> None:
    target = stack.server.target if server == "sync" else stack.roster.address
    with grpc.secure_channel(target, pki.client().channel_credentials()) as trusted:
        assert health(trusted) == health_pb2.HealthCheckResponse.SERVING
    refused = {
        "plaintext": grpc.insecure_channel(target),
        "no client certificate": grpc.secure_channel(
            target, TlsSettings(ca_file=pki.ca).channel_credentials()
        ),
        "another CA's certificate": grpc.secure_channel(
            target,
            TlsSettings(
                cert_file=pki.rogue_cert, key_file=pki.rogue_key, ca_file=pki.ca
            ).channel_credentials(),
        ),
    }
    for client, channel in refused.items():
        with channel, pytest.raises(grpc.RpcError) as caught:
            health(channel)
        assert (client, caught.value.code()) == (client, grpc.StatusCode.UNAVAILABLE)
