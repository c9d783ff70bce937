"""Whole pulls against a running sandbox: complete rosters at every page size, never a short roster.

Every fault is either recovered (the same roster as a clean pull) or a typed error.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import SecretStr

from services.sync.oneroster import (
    BearerToken,
    OAuth1Credentials,
    OneRosterClient,
    Roster,
    ServerConfig,
    Timeouts,
)
from services.sync.oneroster.errors import (
    AuthenticationError,
    IncompletePullError,
    MalformedResponseError,
    RateLimitedError,
    ServerError,
    UnreachableError,
)
from tests.support.sandbox import FAST_RETRY, SandboxHandle, start_sandbox

SIZE = {"seed": 11, "schools": 6, "teachers": 60}


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxHandle]:
    with start_sandbox(**SIZE, tenants=2, auth="oauth1,bearer,oauth2") as handle:
        yield handle


@pytest.fixture(scope="module")
def reference() -> Iterator[Roster]:
    """A clean pull of an untouched district, for comparing other modes against."""
    import asyncio

    with start_sandbox(**SIZE) as handle:
        yield asyncio.run(pull(handle.server_config()))


@pytest.fixture(autouse=True)
def no_faults_left(sandbox: SandboxHandle) -> Iterator[None]:
    yield
    sandbox.clear_faults()


async def pull(config: ServerConfig) -> Roster:
    async with OneRosterClient(config) as client:
        return await client.pull_roster()


def teacher_view(roster: Roster) -> dict[str, tuple[Any, ...]]:
    """What a sync relies on, per teacher (no dates: quirks mode sends some without a time)."""
    view = {
        t.sourced_id: (
            t.given_name,
            t.family_name,
            t.email,
            frozenset(t.org_sourced_ids),
            t.status.value,
            t.enabled_user,
        )
        for t in roster.teachers
    }
    assert len(view) == len(roster.teachers), "a teacher appears twice"
    return view


def school_view(roster: Roster) -> dict[str, tuple[str, str]]:
    return {s.sourced_id: (s.name, s.status.value) for s in roster.schools}


def truth_teachers(truth: dict[str, Any]) -> dict[str, tuple[Any, ...]]:
    return {
        u["sourcedId"]: (
            u["givenName"],
            u["familyName"],
            u["email"],
            frozenset(u["orgs"]),
            u["status"],
            u["enabledUser"],
        )
        for u in truth["users"]
        if u["role"] == "teacher"
    }


def truth_schools(truth: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {o["sourcedId"]: (o["name"], o["status"]) for o in truth["orgs"] if o["type"] == "school"}


def assert_complete(roster: Roster, handle: SandboxHandle, tenant_id: str | None = None) -> None:
    truth = handle.roster(tenant_id)
    assert teacher_view(roster) == truth_teachers(truth)
    assert school_view(roster) == truth_schools(truth)
    assert roster.problems == ()


@pytest.mark.parametrize("page_size", [1, 7, 1000])
@pytest.mark.parametrize("concurrency", [1, 4])
async def test_complete_pull_at_every_page_size(
    sandbox: SandboxHandle, page_size: int, concurrency: int
) -> None:
    roster = await pull(sandbox.server_config(page_size=page_size, concurrency=concurrency))
    assert_complete(roster, sandbox)
    assert len(roster.teachers) >= 60


@pytest.mark.parametrize("auth", ["oauth1", "bearer", "oauth2"])
async def test_every_auth_method_reads_the_district(sandbox: SandboxHandle, auth: str) -> None:
    assert_complete(await pull(sandbox.server_config(auth=auth, page_size=25)), sandbox)


async def test_wrong_credentials_are_a_clear_authentication_error(sandbox: SandboxHandle) -> None:
    config = ServerConfig(
        sandbox.server_url, OAuth1Credentials(sandbox.client_id, SecretStr("wrong-secret-123"))
    )
    with pytest.raises(AuthenticationError) as caught:
        await pull(config)
    message = str(caught.value)
    assert "HTTP 401" in message and "client id and secret" in message
    assert "wrong-secret-123" not in message and "oauth_signature" not in message
    with pytest.raises(AuthenticationError):
        await pull(ServerConfig(sandbox.server_url, BearerToken(SecretStr("not-a-token"))))


async def test_a_district_cannot_be_read_with_another_districts_credentials(sandbox: SandboxHandle) -> None:
    first, second = sandbox.tenants
    foreign = ServerConfig(
        second.server_url, OAuth1Credentials(first.client_id, SecretStr(first.client_secret))
    )
    with pytest.raises(AuthenticationError):
        await pull(foreign)
    own = await pull(sandbox.server_config(tenant_id=second.tenant_id))
    assert_complete(own, sandbox, second.tenant_id)
    assert not set(teacher_view(own)) & set(truth_teachers(sandbox.roster(first.tenant_id)))


async def test_oauth2_token_is_refetched_once_after_a_401(sandbox: SandboxHandle) -> None:
    async with OneRosterClient(sandbox.server_config(auth="oauth2", page_size=30)) as client:
        await client.list_schools()
        sandbox.revoke_tokens()
        assert school_view(Roster((await client.list_schools()).records, (), ())) == truth_schools(
            sandbox.roster()
        )


def read_timeout(fault: dict[str, Any]) -> Timeouts:
    """Short enough that a slow page times out; generous for every other fault."""
    return Timeouts(read=0.2) if fault["kind"] == "slow" else Timeouts()


RECOVERED = [
    pytest.param({"kind": "status", "status": 503, "times": 2}, id="503-burst"),
    pytest.param(
        {"kind": "status", "status": 502, "times": 1, "path": "teachers", "skip": 2}, id="502-mid-pull"
    ),
    pytest.param({"kind": "status", "status": 504, "times": 1}, id="504"),
    pytest.param({"kind": "status", "status": 429, "retry_after": "0", "times": 3}, id="429"),
    pytest.param({"kind": "truncate", "times": 1, "path": "teachers", "skip": 1}, id="truncated-json"),
    pytest.param({"kind": "short_page", "times": 1, "path": "teachers", "skip": 2}, id="short-page"),
    pytest.param({"kind": "overlap", "times": 1, "path": "teachers", "skip": 3}, id="overlapping-page"),
    pytest.param({"kind": "total_change", "times": 1, "path": "teachers", "skip": 2}, id="total-changes"),
    pytest.param({"kind": "slow", "delay": 0.6, "times": 1, "path": "teachers", "skip": 1}, id="slow"),
]


@pytest.mark.parametrize("fault", RECOVERED)
@pytest.mark.parametrize("concurrency", [1, 4])
async def test_transient_faults_are_recovered_into_the_full_roster(
    sandbox: SandboxHandle, fault: dict[str, Any], concurrency: int
) -> None:
    sandbox.set_faults([fault])
    config = sandbox.server_config(page_size=7, concurrency=concurrency, timeouts=read_timeout(fault))
    roster = await pull(config)
    assert sandbox.pending_faults()[0]["times"] == 0, "the fault was never hit"
    assert_complete(roster, sandbox)


async def test_retry_after_is_waited_for(sandbox: SandboxHandle) -> None:
    import time

    sandbox.set_faults([{"kind": "status", "status": 429, "retry_after": "1", "times": 1}])
    started = time.monotonic()
    assert_complete(await pull(sandbox.server_config(page_size=100)), sandbox)
    assert time.monotonic() - started >= 1.0


PERSISTENT = [
    pytest.param({"kind": "status", "status": 503, "times": -1}, ServerError, id="5xx-forever"),
    pytest.param({"kind": "status", "status": 500, "times": -1}, ServerError, id="500"),
    pytest.param(
        {"kind": "status", "status": 429, "retry_after": "3600", "times": -1}, RateLimitedError, id="429-long"
    ),
    pytest.param(
        {"kind": "truncate", "times": -1, "path": "teachers"}, MalformedResponseError, id="truncated-forever"
    ),
    pytest.param(
        {"kind": "short_page", "times": -1, "path": "teachers", "skip": 1},
        IncompletePullError,
        id="short-forever",
    ),
    pytest.param(
        {"kind": "overlap", "times": -1, "path": "teachers", "skip": 1},
        IncompletePullError,
        id="overlap-forever",
    ),
    pytest.param(
        {"kind": "slow", "delay": 0.6, "times": -1, "path": "teachers"}, UnreachableError, id="slow-forever"
    ),
]


@pytest.mark.parametrize(("fault", "error"), PERSISTENT)
async def test_persistent_faults_raise_typed_errors_never_a_short_roster(
    sandbox: SandboxHandle, fault: dict[str, Any], error: type[Exception]
) -> None:
    sandbox.set_faults([fault])
    config = sandbox.server_config(page_size=7, concurrency=4, timeouts=read_timeout(fault))
    with pytest.raises(error):
        await pull(config)


async def test_server_error_carries_the_imsx_description(sandbox: SandboxHandle) -> None:
    sandbox.set_faults([{"kind": "status", "status": 500, "times": -1}])
    with pytest.raises(ServerError) as caught:
        await pull(sandbox.server_config())
    assert caught.value.status_code == 500
    assert caught.value.description == "Injected fault: HTTP 500."


async def test_unreachable_server_is_a_typed_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = ServerConfig(f"http://127.0.0.1:{port}", BearerToken(SecretStr("x")), retry=FAST_RETRY)
    with pytest.raises(UnreachableError):
        await pull(config)


async def test_roster_mutations_show_in_the_next_pull(sandbox: SandboxHandle) -> None:
    tenant = sandbox.tenants[1].tenant_id
    truth = sandbox.roster(tenant)
    teachers = [u for u in truth["users"] if u["role"] == "teacher" and u["status"] == "active"]
    school = next(o for o in truth["orgs"] if o["type"] == "school")
    results = sandbox.mutate(
        [
            {"op": "remove_user", "sourcedId": teachers[0]["sourcedId"]},
            {"op": "update_user", "sourcedId": teachers[1]["sourcedId"], "set": {"status": "tobedeleted"}},
            {
                "op": "update_user",
                "sourcedId": teachers[2]["sourcedId"],
                "set": {"email": "New.Address@example.org"},
            },
            {"op": "update_school", "sourcedId": school["sourcedId"], "set": {"name": "Renamed Academy"}},
            {
                "op": "add_teacher",
                "givenName": "Nguyễn",
                "familyName": "Thị",
                "email": "nt@example.org",
                "orgs": [school["sourcedId"]],
            },
        ],
        tenant_id=tenant,
    )
    roster = await pull(sandbox.server_config(tenant_id=tenant, page_size=9))
    assert_complete(roster, sandbox, tenant)
    by_id = {t.sourced_id: t for t in roster.teachers}
    assert teachers[0]["sourcedId"] not in by_id
    assert by_id[teachers[1]["sourcedId"]].status.value == "tobedeleted"
    assert by_id[teachers[2]["sourcedId"]].email == "New.Address@example.org"
    assert by_id[results[4]["sourcedId"]].given_name == "Nguyễn"
    assert {s.name for s in roster.schools if s.sourced_id == school["sourcedId"]} == {"Renamed Academy"}


def test_a_failing_mutation_batch_changes_nothing(sandbox: SandboxHandle) -> None:
    tenant = sandbox.tenants[1].tenant_id
    before = sandbox.roster(tenant)
    victim = next(u for u in before["users"] if u["role"] == "teacher")
    with pytest.raises(RuntimeError, match="operation 1"):
        sandbox.mutate(
            [
                {"op": "remove_user", "sourcedId": victim["sourcedId"]},
                {"op": "remove_user", "sourcedId": "no-such-user"},
            ],
            tenant_id=tenant,
        )
    assert sandbox.roster(tenant)["users"] == before["users"]


MODES = [
    pytest.param({"page_cap": 5}, {"page_size": 1000, "concurrency": 4}, id="page-cap-below-limit"),
    pytest.param({"page_cap": 5}, {"page_size": 1000, "concurrency": 1}, id="page-cap-sequential"),
    pytest.param({"omit_total": True}, {"page_size": 8}, id="no-total-follows-link"),
    pytest.param({"disable_endpoint": ["schools", "teachers"]}, {"page_size": 10}, id="orgs-users-fallback"),
    pytest.param({"quirks": True}, {"page_size": 13}, id="classlink-quirks"),
    pytest.param({"oneroster_version": "1.2"}, {"page_size": 11, "auth": "oauth2"}, id="oneroster-1.2"),
    pytest.param(
        {"oneroster_version": "1.2", "quirks": True, "disable_endpoint": ["teachers"]},
        {"page_size": 11, "auth": "oauth2"},
        id="1.2-quirks-fallback",
    ),
]


@pytest.mark.parametrize(("flags", "options"), MODES)
async def test_every_server_mode_gives_the_same_roster(
    reference: Roster, flags: dict[str, Any], options: dict[str, Any]
) -> None:
    with start_sandbox(**SIZE, **flags) as handle:
        roster = await pull(handle.server_config(**options))
        assert_complete(roster, handle)
    assert teacher_view(roster) == teacher_view(reference)
    assert school_view(roster) == school_view(reference)


def test_sandbox_exits_cleanly_on_sigterm() -> None:
    handle = start_sandbox(schools=1, teachers=2)
    assert handle.stop() == 0


@pytest.mark.parametrize("auth", ["oauth1", "bearer", "oauth2"])
async def test_credentials_never_reach_the_logs(
    sandbox: SandboxHandle, auth: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sandbox.set_faults([{"kind": "short_page", "times": 1, "path": "teachers", "skip": 1}])
    await pull(sandbox.server_config(auth=auth, page_size=20))
    assert "inconsistent pull" in caplog.text  # logging was on and the client did log
    for secret in (sandbox.client_secret, sandbox.bearer_token, "oauth_signature", "Authorization", "Basic "):
        assert secret not in caplog.text


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (None, "row has no sourcedId"),
        ("not an object", "row is not a JSON object"),
        ({"sourcedId": "x1"}, "has no role"),
    ],
)
async def test_unreadable_rows_are_reported_with_their_position(
    sandbox: SandboxHandle, row: object, reason: str
) -> None:
    sandbox.set_faults([{"kind": "bad_row", "times": 1, "path": "teachers", "skip": 1, "row": row}])
    roster = await pull(sandbox.server_config(page_size=10, concurrency=1))
    truth = truth_teachers(sandbox.roster())
    [problem] = roster.problems
    assert (problem.collection, problem.position) == ("teachers", 10)
    assert reason in problem.reason
    pulled = teacher_view(roster)
    assert len(pulled) == len(truth) - 1 and set(pulled) < set(truth)
