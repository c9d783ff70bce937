"""What real OneRoster servers do beyond ClassLink's happy path, served by the sandbox over HTTP.

Silent page caps without totals or links, staff accounts, broken rows and bodies, a redirecting
token endpoint and long ``Retry-After`` waits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from ew.client.errors import FailedPreconditionError, InvalidArgumentError
from ew.sync.v1 import sync_pb2

from services.sync.oneroster import OneRosterClient, RetryPolicy, Roster, RowProblem, ServerConfig, Version
from services.sync.oneroster.errors import MalformedResponseError, ServerError, WaitTooLongError
from services.sync.setup.oneroster_adapter import oneroster_failure
from tests.support.sandbox import FAST_RETRY, SandboxHandle, start_sandbox
from tests.support.sync_stack import sync_stack

STAFF_ROLES = {"administrator", "aide", "proctor"}
V1P2_NAMES = {"administrator": "districtAdministrator"}


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxHandle]:
    with start_sandbox(schools=4, teachers=30, staff=2, staff_twins=True) as handle:
        yield handle


@pytest.fixture(autouse=True)
def no_faults_left(sandbox: SandboxHandle) -> Iterator[None]:
    yield
    sandbox.clear_faults()


async def pull(config: ServerConfig, **client_options: Any) -> Roster:
    async with OneRosterClient(config, **client_options) as client:
        return await client.pull_roster()


def ids(users: tuple[Any, ...]) -> list[str]:
    return sorted(u.sourced_id for u in users)


def truth_ids(handle: SandboxHandle, roles: set[str]) -> list[str]:
    return sorted(u["sourcedId"] for u in handle.roster()["users"] if u["role"] in roles)


@pytest.mark.parametrize("teachers", [21, 23], ids=["ends-on-page-boundary", "ends-mid-page"])
async def test_capped_pages_without_total_or_links_read_every_row_once(teachers: int) -> None:
    with start_sandbox(
        schools=3, teachers=teachers, staff=3, page_cap=7, omit_total=True, omit_links=True
    ) as handle:
        roster = await pull(handle.server_config(page_size=1000))
        assert ids(roster.teachers) == truth_ids(handle, {"teacher"})
        assert ids(roster.staff) == truth_ids(handle, STAFF_ROLES)
        assert len(roster.teachers) == teachers and roster.problems == ()


@pytest.mark.parametrize("version", [Version.V1P1, Version.V1P2])
async def test_staff_accounts_are_read_with_their_roles_and_never_students(version: Version) -> None:
    flags: dict[str, Any] = {"staff": 2, "staff_twins": True, "oneroster_version": version.value}
    with start_sandbox(schools=3, teachers=20, **flags) as handle:
        roster = await pull(handle.server_config(auth="oauth1" if version is Version.V1P1 else "oauth2"))
        truth = [u for u in handle.roster()["users"] if u["role"] in STAFF_ROLES]
    expected = {u["sourcedId"]: V1P2_NAMES.get(u["role"], u["role"]) for u in truth}
    if version is Version.V1P1:
        expected = {u["sourcedId"]: u["role"] for u in truth}
    assert {s.sourced_id: s.role for s in roster.staff} == expected
    assert {"aide", "proctor"} <= {s.role for s in roster.staff}
    teachers = {t.email: t for t in roster.teachers if t.email}
    twins = [(s, teachers[s.email]) for s in roster.staff if s.email in teachers]
    assert sorted((s.given_name == t.given_name, s.family_name == t.family_name) for s, t in twins) == [
        (False, True),
        (True, True),
    ]


async def test_staff_problems_are_reported_as_staff(sandbox: SandboxHandle) -> None:
    sandbox.set_faults([{"kind": "bad_row", "path": "users", "row": "not an object"}])
    roster = await pull(sandbox.server_config())
    assert [(p.collection, p.reason) for p in roster.problems] == [("staff", "row is not a JSON object")]


BROKEN_TEACHERS: list[tuple[object, str | None, str | None, str]] = [
    ("not an object", None, None, "row is not a JSON object"),
    ({"sourcedId": 12, "role": "teacher", "email": "n12@x.org"}, None, "n12@x.org", "$.sourcedId"),
    (
        {"sourcedId": "g5", "role": "teacher", "givenName": 5, "email": "g5@x.org"},
        "g5",
        "g5@x.org",
        "$.givenName",
    ),
    ({"sourcedId": "o1", "role": "teacher", "orgs": "x", "email": " "}, "o1", None, "$.orgs"),
    ({"sourcedId": "e1", "role": "teacher", "email": []}, "e1", None, "$.email"),
    (
        {"sourcedId": "b1", "role": "teacher", "enabledUser": {}, "email": "b1@x.org"},
        "b1",
        "b1@x.org",
        "$.enabledUser",
    ),
    (
        {"role": "teacher", "givenName": "A", "familyName": "B", "email": "only@x.org"},
        None,
        "only@x.org",
        "sourcedId",
    ),
    ({"role": "teacher", "givenName": "No", "familyName": "Identifier"}, None, None, "sourcedId"),
]


async def test_unreadable_rows_become_problems_with_their_email(sandbox: SandboxHandle) -> None:
    nameless = {"sourcedId": "nameless-1", "status": "active", "role": "teacher", "orgs": []}
    rows = [row for row, *_ in BROKEN_TEACHERS] + [nameless]
    sandbox.set_faults([{"kind": "bad_row", "path": "teachers", "rows": rows}])
    roster = await pull(sandbox.server_config(page_size=1000))
    assert list(roster.problems) == [
        RowProblem("teachers", position, sourced_id, email, roster.problems[position].reason)
        for position, (_, sourced_id, email, _) in enumerate(BROKEN_TEACHERS)
    ]
    for problem, (*_, reason) in zip(roster.problems, BROKEN_TEACHERS, strict=True):
        assert reason in problem.reason
    [kept] = [t for t in roster.teachers if t.sourced_id == "nameless-1"]
    assert (kept.given_name, kept.family_name) == ("", "")
    assert len(roster.teachers) == len(truth_ids(sandbox, {"teacher"})) - len(BROKEN_TEACHERS)


async def test_schools_without_id_or_name_are_problems(sandbox: SandboxHandle) -> None:
    rows = [{"name": "Nameless Id", "type": "school"}, {"sourcedId": "s-1", "type": "school"}]
    sandbox.set_faults([{"kind": "bad_row", "path": "schools", "rows": rows}])
    roster = await pull(sandbox.server_config(page_size=1000))
    assert [(p.collection, p.position, p.sourced_id) for p in roster.problems] == [
        ("schools", 0, None),
        ("schools", 1, "s-1"),
    ]
    assert "no sourcedId" in roster.problems[0].reason and "no name" in roster.problems[1].reason


async def test_a_district_without_schools_is_an_empty_list_not_an_error() -> None:
    with start_sandbox(schools=0, teachers=5) as handle:
        roster = await pull(handle.server_config())
    assert roster.schools == () and len(roster.teachers) == 5 and roster.problems == ()


async def test_split_rows_arrive_as_separate_one_school_rows() -> None:
    with start_sandbox(schools=4, teachers=40, split_rows=True) as handle:
        roster = await pull(handle.server_config())
        truth = [u for u in handle.roster()["users"] if u["role"] == "teacher"]
    assert ids(roster.teachers) == sorted(u["sourcedId"] for u in truth)
    assert all(len(t.org_sourced_ids) == 1 for t in roster.teachers)
    by_email: dict[str, set[str]] = {}
    for teacher in roster.teachers:
        by_email.setdefault(teacher.email or "", set()).update(teacher.org_sourced_ids)
    assert any(len(orgs) > 1 for email, orgs in by_email.items() if email)


@pytest.mark.parametrize(
    ("kind", "detail"), [("invalid_utf8", "invalid UTF-8"), ("deep_nesting", "nested too deeply")]
)
async def test_bodies_that_are_not_json_are_a_malformed_response(
    sandbox: SandboxHandle, kind: str, detail: str
) -> None:
    sandbox.set_faults([{"kind": kind, "times": -1, "path": "teachers"}])
    with pytest.raises(MalformedResponseError) as caught:
        await pull(sandbox.server_config())
    message = str(caught.value)
    assert message.startswith("ClassLink sent a response to /") and message.endswith(
        f"/teachers that is not valid JSON ({detail})."
    )
    assert message in oneroster_failure(caught.value, sandbox.server_url).message


async def test_a_redirecting_token_endpoint_names_the_address_to_use() -> None:
    with start_sandbox(schools=2, teachers=5, auth="oauth2", token_redirect=True) as handle:
        with pytest.raises(ServerError) as caught:
            await pull(handle.server_config(auth="oauth2"))
        assert (
            f"the token endpoint redirects to {handle.issuer_token_url}; use that address as the token URL"
            in str(caught.value)
        )
        failure = oneroster_failure(caught.value, handle.server_url).message
        assert "Could not reach" not in failure and handle.issuer_token_url in failure
        roster = await pull(handle.server_config(auth="oauth2", token_url=handle.issuer_token_url))
    assert len(roster.teachers) == 5


async def test_the_observer_hears_each_wait_the_server_asks_for(sandbox: SandboxHandle) -> None:
    sandbox.set_faults([{"kind": "status", "status": 429, "retry_after": "1", "path": "teachers"}])
    waits: list[float] = []
    roster = await pull(sandbox.server_config(), on_wait=waits.append)
    assert waits == [1.0]
    assert ids(roster.teachers) == truth_ids(sandbox, {"teacher"})


async def test_a_wait_longer_than_the_budget_fails_at_once_saying_so(sandbox: SandboxHandle) -> None:
    sandbox.set_faults([{"kind": "status", "status": 429, "retry_after": "1", "times": -1}])
    waits: list[float] = []
    tight = RetryPolicy(
        attempts_per_request=FAST_RETRY.attempts_per_request,
        initial_delay=FAST_RETRY.initial_delay,
        max_delay=FAST_RETRY.max_delay,
        jitter=FAST_RETRY.jitter,
        budget_seconds=0.5,
    )
    with pytest.raises(WaitTooLongError) as caught:
        await pull(sandbox.server_config(retry=tight), on_wait=waits.append)
    message = "ClassLink asked us to wait 1 s, longer than this call allows."
    assert str(caught.value) == message and waits == []
    assert oneroster_failure(caught.value, sandbox.server_url).message.startswith(message)


@pytest.mark.timeout(120)
def test_a_runs_progress_says_when_classlink_asks_for_a_wait(database_url: Callable[[str], str]) -> None:
    with sync_stack(database_url("roster"), database_url("sync"), schools=3, teachers=20) as stack:
        stack.sandbox.set_faults([{"kind": "status", "status": 429, "retry_after": "1", "path": "teachers"}])
        seen = list(stack.client.sync_rosters(stack.district_id))
    waits = [e for e in seen if e.message == "ClassLink asked us to wait 1 s"]
    assert waits and waits[0].phase == sync_pb2.SYNC_PHASE_READING_TEACHERS
    assert [e.percent for e in seen] == sorted(e.percent for e in seen)
    assert seen[-1].state == sync_pb2.SYNC_RUN_STATE_SUCCEEDED, seen[-1].message


@pytest.mark.timeout(120)
def test_connect_takes_a_token_url_and_reports_a_redirecting_one(database_url: Callable[[str], str]) -> None:
    with sync_stack(
        database_url("roster"),
        database_url("sync"),
        connect=False,
        schools=2,
        teachers=5,
        auth="oauth2",
        token_redirect=True,
    ) as stack:
        tenant = stack.sandbox.tenant()

        def connect(token_url: str) -> sync_pb2.Connection:
            return stack.client.connect_manual(
                stack.district_id,
                server_url=tenant.server_url,
                client_id=tenant.client_id,
                client_secret=tenant.client_secret,
                auth_method=sync_pb2.AUTH_METHOD_OAUTH2,
                token_url=token_url,
            ).connection

        with pytest.raises(FailedPreconditionError) as refused:
            connect("")
        assert f"redirects to {stack.sandbox.issuer_token_url}; use that address" in str(refused.value)
        with pytest.raises(InvalidArgumentError) as invalid:
            connect("ftp://tokens.example.org/token")
        assert [v.field for v in invalid.value.violations] == ["manual.token_url"]
        assert connect(stack.sandbox.issuer_token_url).token_url == stack.sandbox.issuer_token_url
        seen = list(stack.client.sync_rosters(stack.district_id))
    assert seen[-1].state == sync_pb2.SYNC_RUN_STATE_SUCCEEDED, seen[-1].message
