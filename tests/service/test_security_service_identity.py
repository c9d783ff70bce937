"""The sync service calls the roster as its own identity; a roster that refuses it gets the operator told."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from ew.client.errors import RosterError
from pydantic import SecretStr

from services.common.auth import AuthSettings
from tests.conftest import DatabaseFactory
from tests.support.sync_stack import DISTRICT, SyncStack, sync_stack

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def stack(database_url: DatabaseFactory) -> Iterator[SyncStack]:
    # The roster verifies another key than the one the sync service signs its tokens with.
    elsewhere = AuthSettings(secret=SecretStr("the-roster-has-its-own-key-of-enough-bytes"))
    with sync_stack(
        database_url("roster"), database_url("sync"), roster_auth=elsewhere, schools=3, teachers=12
    ) as running:
        yield running


def test_a_refused_service_identity_is_reported_as_a_deployment_fault_and_nothing_changes(
    stack: SyncStack,
) -> None:
    before = stack.roster.snapshot()

    with pytest.raises(RosterError) as refused:
        stack.client.preview_sync(DISTRICT)
    last = list(stack.client.sync_rosters(DISTRICT))[-1]

    assert refused.value.code == grpc.StatusCode.UNAVAILABLE
    assert refused.value.reason == "ROSTER_REFUSED_SERVICE_IDENTITY"
    assert "EW_JWT_*" in refused.value.message
    assert "refused the sync service's identity" in last.message and "Nothing was changed" in last.message
    assert stack.roster.snapshot() == before
