"""The sandbox's slow-server profile: the request limit and its 429 answers, on a clock the test moves."""

from __future__ import annotations

import httpx
import pytest

from services.oneroster_sandbox.__main__ import build, parse_args
from services.oneroster_sandbox.app import create_app
from services.oneroster_sandbox.generator import generate_district
from services.oneroster_sandbox.rate_limit import RateLimiter
from services.oneroster_sandbox.state import Sandbox, Settings


class Clock:
    """A clock that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_eleventh_request_within_a_second_waits_until_the_first_leaves_the_window() -> None:
    clock = Clock()
    limiter = RateLimiter(10, clock=clock)
    admitted = []
    for _ in range(10):
        admitted.append(limiter.admit())
        clock.now += 0.05
    assert admitted == [None] * 10
    assert limiter.admit() == 1
    clock.now = 1000.0 + 1.0
    assert limiter.admit() is None, "the first request has left the window"
    assert limiter.admit() == 1, "the second one has not"


def test_refused_requests_are_not_counted() -> None:
    clock = Clock()
    limiter = RateLimiter(2, clock=clock)
    assert [limiter.admit() for _ in range(5)] == [None, None, 1, 1, 1]
    clock.now += 1.0
    assert [limiter.admit() for _ in range(3)] == [None, None, 1]


async def test_the_server_answers_429_with_retry_after_above_the_limit() -> None:
    clock = Clock()
    district = generate_district(seed=7, tenant_index=0, schools=3, teachers=30)
    sandbox = Sandbox(
        settings=Settings(rate_limit=10),
        districts={district.tenant_id: district},
        limiter=RateLimiter(10, clock=clock),
    )
    sandbox.start("http://testserver")
    url = f"/districts/{district.tenant_id}/ims/oneroster/v1p1/teachers"
    headers = {"Authorization": f"Bearer {district.bearer_token}"}
    transport = httpx.ASGITransport(app=create_app(sandbox))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        statuses = [(await http.get(url, headers=headers)).status_code for _ in range(10)]
        refused = await http.get(url, headers=headers)
        clock.now += 1.0
        again = await http.get(url, headers=headers)
    assert statuses == [200] * 10
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "1"
    assert again.status_code == 200


def test_the_slow_profile_sets_delay_page_cap_and_limit_unless_a_flag_says_otherwise() -> None:
    sandbox, _ = build(parse_args(["--profile", "slow", "--teachers", "5", "--schools", "1"]))
    assert (sandbox.settings.request_delay, sandbox.settings.page_cap, sandbox.settings.rate_limit) == (
        0.15,
        1000,
        10,
    )
    assert sandbox.limiter is not None and sandbox.limiter.limit == 10
    explicit = parse_args(["--profile", "slow", "--rate-limit", "50", "--request-delay", "0"])
    assert (explicit.rate_limit, explicit.request_delay, explicit.page_cap) == (50, 0.0, 1000)


def test_no_profile_no_limit() -> None:
    sandbox, _ = build(parse_args(["--teachers", "5", "--schools", "1"]))
    assert sandbox.limiter is None and sandbox.settings.request_delay == 0.0


@pytest.mark.parametrize("flag", [["--rate-limit", "0"], ["--request-delay", "-1"]])
def test_nonsense_profile_values_are_refused(flag: list[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args(flag)
