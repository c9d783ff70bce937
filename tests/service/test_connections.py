"""Connections: the client library retries idempotent reads; servers age connections out."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
from ew.client.errors import UnavailableError
from ew.client.roster import RosterClient

from services.common.grpc_handlers import Handler, WrappingInterceptor, rebuild_handler
from tests.support.proxy import CuttableProxy
from tests.support.roster import Roster, running_roster

pytestmark = pytest.mark.timeout(60)


class Unavailable(WrappingInterceptor):
    """Answers the first ``failures`` calls of each method in ``methods`` with UNAVAILABLE; counts calls."""

    def __init__(self, methods: set[str], failures: int) -> None:
        self.methods = methods
        self.failures = failures
        self.calls: dict[str, int] = {}

    def wrap(self, handler: Handler, method: str) -> Handler:
        name = method.rsplit("/", 1)[-1]

        def unary(inner: Callable[..., Any]) -> Callable[..., Any]:
            def behaviour(request: Any, context: grpc.ServicerContext) -> Any:
                self.calls[name] = self.calls.get(name, 0) + 1
                if name in self.methods and self.calls[name] <= self.failures:
                    context.abort(grpc.StatusCode.UNAVAILABLE, "replica going away")
                return inner(request, context)

            return behaviour

        return rebuild_handler(handler, unary, lambda inner: inner)


@pytest.fixture
def flaky() -> Unavailable:
    return Unavailable({"GetDistrict", "CreateDistrict"}, failures=2)


@pytest.fixture
def roster(database_url: Callable[[str], str], flaky: Unavailable) -> Iterator[Roster]:
    with running_roster(database_url("roster"), interceptors=[flaky]) as running:
        yield running


def test_reads_are_retried_by_the_channel_and_writes_are_not(roster: Roster, flaky: Unavailable) -> None:
    flaky.methods = {"CreateDistrict"}
    with pytest.raises(UnavailableError):
        roster.client.create_district("d1", "District One")
    assert flaky.calls["CreateDistrict"] == 1  # a write that may have happened is not sent again

    flaky.methods = {"GetDistrict"}
    roster.client.create_district("d1", "District One")
    assert roster.client.get_district("d1").display_name == "District One"
    assert flaky.calls["GetDistrict"] == 3  # two UNAVAILABLE answers, then the third attempt


def test_a_connection_older_than_the_maximum_age_is_replaced_without_failing_calls(
    database_url: Callable[[str], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EW_GRPC_MAX_CONNECTION_AGE", "0.5")
    monkeypatch.setenv("EW_GRPC_MAX_CONNECTION_AGE_GRACE", "0.5")
    with running_roster(database_url("roster")) as roster:
        roster.client.create_district("d1", "District One")
        proxy = CuttableProxy(roster.address)
        try:
            with RosterClient(proxy.address, metadata=roster.service_tokens.metadata) as client:
                deadline = time.monotonic() + 20
                calls = 0
                while proxy.accepted < 2 and time.monotonic() < deadline:
                    assert client.get_district("d1").display_name == "District One"
                    calls += 1
        finally:
            proxy.close()
    assert proxy.accepted >= 2, f"one connection served {calls} calls over 20 s"
