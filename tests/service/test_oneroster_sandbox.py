"""The sandbox as a OneRoster server, and as ClassLink's account side.

Spec-valid JSON, filters, paging headers, SSO and the partner API through the client's functions, and
the public CSV bundles.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from jsonschema import Draft4Validator
from pydantic import SecretStr

from services.sync.oneroster import OAuth1Credentials, OneRosterClient, ServerConfig
from services.sync.oneroster.classlink_account import (
    ClassLinkEndpoints,
    build_authorization_url,
    exchange_code,
    get_application_server,
    get_my_info,
    list_applications,
)
from services.sync.oneroster.errors import AuthenticationError
from tests.support.sandbox import FAST_RETRY, SHARED_ONEROSTER, SandboxHandle, start_sandbox

SPEC = json.loads((SHARED_ONEROSTER / "spec" / "oneroster-v1p1-openapi3.strongmind-copy.json").read_text())


def validator(schema_name: str) -> Draft4Validator:
    return Draft4Validator({"$ref": f"#/components/schemas/{schema_name}", "components": SPEC["components"]})


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxHandle]:
    with start_sandbox(seed=3, schools=5, teachers=40, tenants=2) as handle:
        yield handle


@pytest.fixture
def http(sandbox: SandboxHandle) -> Iterator[httpx.Client]:
    with httpx.Client(headers={"Authorization": f"Bearer {sandbox.bearer_token}"}, timeout=10) as client:
        yield client


@pytest.mark.parametrize(
    ("path", "schema"),
    [
        ("/orgs", "Orgs.Type"),
        ("/schools", "Orgs.Type"),
        ("/users", "Users.Type"),
        ("/teachers", "Users.Type"),
        ("/students", "Users.Type"),
    ],
)
def test_collections_validate_against_the_ims_1_1_openapi(
    sandbox: SandboxHandle, http: httpx.Client, path: str, schema: str
) -> None:
    body = http.get(sandbox.oneroster_url + path, params={"limit": 1000}).json()
    errors = list(validator(schema).iter_errors(body))
    assert errors == []
    assert len(next(iter(body.values()))) > 0


def test_single_records_and_errors_validate(sandbox: SandboxHandle, http: httpx.Client) -> None:
    user = http.get(sandbox.oneroster_url + "/users", params={"limit": 1}).json()["users"][0]
    single = http.get(f"{sandbox.oneroster_url}/users/{user['sourcedId']}").json()
    assert list(validator("SingleUser.Type").iter_errors(single)) == []
    missing = http.get(f"{sandbox.oneroster_url}/users/does-not-exist")
    assert missing.status_code == 404
    assert list(validator("imsx_StatusInfo.Type").iter_errors(missing.json())) == []
    refused = httpx.get(sandbox.oneroster_url + "/users", headers={"Authorization": "Bearer wrong"})
    assert refused.status_code == 401
    assert list(validator("imsx_StatusInfo.Type").iter_errors(refused.json())) == []


def test_filters_and_paging_headers(sandbox: SandboxHandle, http: httpx.Client) -> None:
    truth = sandbox.roster()
    teachers = [u for u in truth["users"] if u["role"] == "teacher"]
    deleted = [u for u in teachers if u["status"] == "tobedeleted"]
    response = http.get(
        sandbox.oneroster_url + "/users",
        params={"filter": "role='teacher' AND status='tobedeleted'", "limit": 500},
    )
    assert {u["sourcedId"] for u in response.json()["users"]} == {u["sourcedId"] for u in deleted}
    schools = http.get(sandbox.oneroster_url + "/orgs", params={"filter": "type='school'"}).json()["orgs"]
    assert {o["type"] for o in schools} == {"school"}
    recent = http.get(
        sandbox.oneroster_url + "/users", params={"filter": "dateLastModified>'2026-10-01'", "limit": 1000}
    ).json()["users"]
    assert recent and all(u["dateLastModified"] > "2026-10-01" for u in recent)
    page = http.get(sandbox.oneroster_url + "/teachers", params={"limit": 7, "offset": 7})
    assert page.headers["X-Total-Count"] == str(len(teachers))
    assert 'rel="next"' in page.headers["Link"] and 'rel="prev"' in page.headers["Link"]
    bad = http.get(sandbox.oneroster_url + "/users", params={"filter": "shoeSize='9'"})
    assert bad.status_code == 400 and "shoeSize" in bad.json()["imsx_description"]


def test_roster_has_what_real_districts_have(sandbox: SandboxHandle) -> None:
    truth = sandbox.roster()
    teachers = [u for u in truth["users"] if u["role"] == "teacher"]
    assert {u["role"] for u in truth["users"]} >= {"teacher", "student", "administrator"}
    assert any(len(u["orgs"]) >= 2 for u in teachers)
    assert any(not u["email"] for u in teachers)
    emails = [u["email"] for u in teachers if u["email"]]
    assert len({e.lower() for e in emails}) < len(set(emails)), "no emails differing only in case"
    assert any(not name.isascii() for u in teachers for name in (u["givenName"], u["familyName"]))


async def test_sign_in_with_classlink_finds_the_district_and_its_server(sandbox: SandboxHandle) -> None:
    endpoints = ClassLinkEndpoints(sandbox.sso["launchpad_url"], sandbox.sso["nodeapi_url"], sandbox.base_url)
    second = sandbox.tenants[1]
    url = build_authorization_url(
        endpoints,
        client_id=sandbox.sso["client_id"],
        redirect_uri="https://ew.example/classlink/callback?x=1",
        state="district-42",
    )
    async with httpx.AsyncClient(timeout=10) as http:
        redirect = await http.get(url + f"&login_hint=admin@{second.tenant_id}")
        assert redirect.status_code == 302
        query = parse_qs(urlsplit(redirect.headers["location"]).query)
        assert query["state"] == ["district-42"] and query["x"] == ["1"]
        token = await exchange_code(
            http,
            endpoints,
            client_id=sandbox.sso["client_id"],
            client_secret=SecretStr(sandbox.sso["client_secret"]),
            code=query["code"][0],
        )
        info = await get_my_info(http, endpoints, token)
        assert (info.tenant_id, info.role) == (second.tenant_id, "Tenant Administrator")
        with pytest.raises(AuthenticationError):
            await exchange_code(
                http,
                endpoints,
                client_id=sandbox.sso["client_id"],
                client_secret=SecretStr(sandbox.sso["client_secret"]),
                code=query["code"][0],
            )
        applications = await list_applications(http, endpoints, SecretStr(sandbox.partner_token))
        mine = next(a for a in applications if a.tenant_id == info.tenant_id)
        server = await get_application_server(
            http, endpoints, SecretStr(sandbox.partner_token), mine.oneroster_application_id
        )
        with pytest.raises(AuthenticationError):
            await list_applications(http, endpoints, SecretStr("not-the-partner-token"))
    config = ServerConfig(
        server.endpoint_url, OAuth1Credentials(server.client_id, server.client_secret), retry=FAST_RETRY
    )
    async with OneRosterClient(config) as client:
        assert await client.check_connection() == len(
            [o for o in sandbox.roster(second.tenant_id)["orgs"] if o["type"] == "school"]
        )
        roster = await client.pull_roster()
    truth = sandbox.roster(second.tenant_id)
    assert {t.sourced_id for t in roster.teachers} == {
        u["sourcedId"] for u in truth["users"] if u["role"] == "teacher"
    }


async def test_teacher_login_reports_role_and_sourced_id(sandbox: SandboxHandle) -> None:
    endpoints = ClassLinkEndpoints(sandbox.base_url, sandbox.base_url, sandbox.base_url)
    tenant = sandbox.tenants[0]
    url = build_authorization_url(
        endpoints, client_id=sandbox.sso["client_id"], redirect_uri="http://cb", state="s"
    )
    async with httpx.AsyncClient(timeout=10) as http:
        redirect = await http.get(url + f"&login_hint=teacher@{tenant.tenant_id}")
        code = parse_qs(urlsplit(redirect.headers["location"]).query)["code"][0]
        token = await exchange_code(
            http,
            endpoints,
            client_id=sandbox.sso["client_id"],
            client_secret=SecretStr(sandbox.sso["client_secret"]),
            code=code,
        )
        info = await get_my_info(http, endpoints, token)
    assert info.role == "Teacher" and info.tenant_id == tenant.tenant_id
    teacher_ids = {u["sourcedId"] for u in sandbox.roster()["users"] if u["role"] == "teacher"}
    assert info.sourced_id in teacher_ids
    assert "SecretStr('**********')" in repr(token)


def test_admin_api_needs_its_token(sandbox: SandboxHandle) -> None:
    response = httpx.get(f"{sandbox.base_url}/_sandbox/roster")
    assert response.status_code == 401


BUNDLES = sorted(p.parent for p in (SHARED_ONEROSTER / "csv").rglob("users.csv"))
# Teachers each public bundle lists (by role in users.csv, or roles.csv for 1.2 bundles).
EXPECTED_TEACHERS = {
    "OneRoster_1_0_Sample_Data": {"207270", "207268"},
    "OneRoster_1_1_Sample_Data": {"207270", "207268"},
    "Test_full_data_set": {"usr-222-123456", "usr-222-987654"},
    "v1p2_full_dataset": {"usr-222-123456", "usr-222-987654"},
    "oneroster_test_data": set(),
    "OneRosterv1p1BaseCSV": set(),
}


@pytest.mark.parametrize("bundle", BUNDLES, ids=lambda p: p.name)
async def test_public_csv_bundles_load_and_pull(bundle: Path) -> None:
    with start_sandbox(csv=bundle) as handle:
        async with OneRosterClient(handle.server_config(page_size=3)) as client:
            roster = await client.pull_roster()
        truth = handle.roster()
    assert {t.sourced_id for t in roster.teachers} == EXPECTED_TEACHERS[bundle.name]
    assert {s.sourced_id for s in roster.schools} == {
        o["sourcedId"] for o in truth["orgs"] if o["type"] == "school"
    }
    assert roster.problems == ()
    for problem in handle.csv_problems:
        assert problem["file"] in {"orgs.csv", "users.csv", "roles.csv"} and problem["reason"]
    if bundle.name in {"Test_full_data_set", "v1p2_full_dataset"}:
        # Moodle's department names a parent org that the bundle does not contain.
        assert any("unknown parent org-sch-222-3456" in p["reason"] for p in handle.csv_problems)


def test_messy_bundle_reports_bad_rows(tmp_path: Path) -> None:
    (tmp_path / "orgs.csv").write_text(
        "sourcedId,status,dateLastModified,name,type,identifier,parentSourcedId,\n"
        "s1,,2017-05-06 08:01:05,Lincoln Elementary,school,,,\n"
        ",active,,Nameless,school,,,\n"
        "s2,inactive,1/05/2023,Lincoln Elem School,school,X,,,\n"
        "s1,active,,Duplicate,school,,,\n"
    )
    (tmp_path / "users.csv").write_text(
        "sourcedId,status,dateLastModified,enabledUser,orgSourcedIds,role,username,givenName,familyName,email,ext_x\n"
        'u1,,2023-05-01,TRUE,"s1,s2",teacher,u1,José,Nguyễn,jose@example.org,1\n'
        "u2,,yesterday,false,s1,teacher,u2,Zoë,O'Brien,,\n"
        "u3,,,,s1,wizard,u3,Merlin,Ambrosius,m@example.org,\n"
        "u4,,,,s1,teacher,u4,,Nobody,n@example.org,\n"
    )
    with start_sandbox(csv=tmp_path) as handle:
        problems = {(p["file"], p["row"], p["skipped"]) for p in handle.csv_problems}
        truth = handle.roster()
    assert ("orgs.csv", 3, True) in problems  # no sourcedId
    assert ("orgs.csv", 5, True) in problems  # duplicate
    assert ("users.csv", 3, False) in problems  # unreadable date, loaded anyway
    assert ("users.csv", 4, True) in problems  # unknown role
    assert ("users.csv", 5, True) in problems  # no given name
    users = {u["sourcedId"]: u for u in truth["users"]}
    assert set(users) == {"u1", "u2"}
    assert users["u1"]["orgs"] == ["s1", "s2"] and users["u2"]["enabledUser"] is False
    assert {o["sourcedId"]: o["status"] for o in truth["orgs"]} == {"s1": "active", "s2": "tobedeleted"}
