"""Retry rules of one request (MockTransport, one rule per test; whole pulls run against the sandbox)."""

from __future__ import annotations

import email.utils
import time

import httpx
import msgspec
import pytest

from services.sync.oneroster import RetryPolicy
from services.sync.oneroster.errors import MalformedResponseError, RateLimitedError, ServerError
from services.sync.oneroster.transport import RetryBudget, Transport, parse_retry_after

FAST = RetryPolicy(
    attempts_per_request=4, initial_delay=0.001, max_delay=0.002, jitter=0.001, budget_seconds=5
)


def scripted(*responses: httpx.Response) -> tuple[httpx.AsyncClient, list[httpx.Request]]:
    seen: list[httpx.Request] = []
    queue = list(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return httpx.AsyncClient(transport=httpx.MockTransport(handler)), seen


def test_retry_after_seconds_and_http_date() -> None:
    assert parse_retry_after("3") == 3.0
    future = email.utils.formatdate(time.time() + 120, usegmt=True)
    assert 100 < (parse_retry_after(future) or 0) <= 120
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


async def test_retry_after_is_honoured_and_charged_to_the_budget() -> None:
    http, seen = scripted(
        httpx.Response(429, headers={"Retry-After": "1"}), httpx.Response(200, json={"orgs": []})
    )
    budget = RetryBudget(5)
    started = time.monotonic()
    response = await Transport(http, FAST).get("http://x/orgs", None, budget, msgspec.json.decode)
    assert response.body == {"orgs": []} and len(seen) == 2
    assert time.monotonic() - started >= 1.0
    assert budget.remaining == pytest.approx(4.0)


async def test_a_retry_after_beyond_the_budget_fails_at_once() -> None:
    http, seen = scripted(httpx.Response(429, headers={"Retry-After": "3600"}), httpx.Response(200, json={}))
    with pytest.raises(RateLimitedError) as caught:
        await Transport(http, FAST).get("http://x/orgs", None, RetryBudget(5), msgspec.json.decode)
    assert caught.value.retry_after == 3600 and len(seen) == 1


async def test_5xx_retried_until_attempts_run_out_then_server_error_with_description() -> None:
    body = {"imsx_codeMajor": "failure", "imsx_severity": "error", "imsx_description": "maintenance window"}
    http, seen = scripted(httpx.Response(503, json=body))
    with pytest.raises(ServerError, match="maintenance window") as caught:
        await Transport(http, FAST).get("http://x/orgs", None, RetryBudget(5), msgspec.json.decode)
    assert caught.value.status_code == 503 and len(seen) == FAST.attempts_per_request


async def test_non_json_200_is_retried_then_malformed() -> None:
    http, seen = scripted(httpx.Response(200, content=b'{"orgs": [{"sourcedId"'))
    with pytest.raises(MalformedResponseError):
        await Transport(http, FAST).get("http://x/orgs", None, RetryBudget(5), msgspec.json.decode)
    assert len(seen) == FAST.attempts_per_request


async def test_400_is_not_retried() -> None:
    http, seen = scripted(httpx.Response(400, json={"imsx_description": "invalid filter"}))
    with pytest.raises(ServerError, match="invalid filter"):
        await Transport(http, FAST).get("http://x/orgs", None, RetryBudget(5), msgspec.json.decode)
    assert len(seen) == 1


async def test_an_unexpected_status_quotes_a_short_body_without_the_secret() -> None:
    page = "<html><body>Teapot for s3cr3t " + "x" * 500 + "</body></html>"
    http, _ = scripted(httpx.Response(418, content=page.encode()))
    transport = Transport(http, FAST, secrets=["s3cr3t"])
    with pytest.raises(ServerError) as caught:
        await transport.get("http://x/orgs", None, RetryBudget(5), msgspec.json.decode)
    message = str(caught.value)
    assert "(HTTP 418): <html><body>Teapot for *** xxx" in message
    assert "s3cr3t" not in message and len(message) < 250
