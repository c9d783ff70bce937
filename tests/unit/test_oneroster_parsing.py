"""Lenient parsing of what real OneRoster servers send."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from services.sync.oneroster import Status, Version
from services.sync.oneroster.parsing import (
    RowError,
    imsx_description,
    parse_bool,
    parse_datetime,
    parse_org,
    parse_status,
    parse_user,
)

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "oneroster"


def test_real_classlink_record_parses() -> None:
    record = json.loads(
        (
            SHARED / "json" / "classlink-roster-server-user-record.vossenv-oneroster-python-README.json"
        ).read_text()
    )
    user = parse_user(record["users"][0], Version.V1P1)
    assert user.sourced_id == "18125"
    assert user.enabled_user is True  # the string "true"
    assert user.role == "student"
    assert user.org_sourced_ids == ("2",)
    assert user.email == "billy.flores@classlink.k12.nj.us"
    assert user.date_last_modified == dt.datetime(2019, 3, 1, 18, 14, 45, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (True, True),
        (False, False),
        ("true", True),
        ("TRUE", True),
        ("false", False),
        ("False", False),
        (None, True),
        ("", True),
    ],
)
def test_enabled_user_variants(raw: object, expected: bool) -> None:
    assert parse_bool(raw) is expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("active", Status.ACTIVE),
        ("tobedeleted", Status.TOBEDELETED),
        ("inactive", Status.TOBEDELETED),
        ("", Status.ACTIVE),
        (None, Status.ACTIVE),
        ("TOBEDELETED", Status.TOBEDELETED),
    ],
)
def test_status_variants(raw: object, expected: Status) -> None:
    assert parse_status(raw) is expected


def test_dates_with_and_without_time() -> None:
    assert parse_datetime("2023-05-01") == dt.datetime(2023, 5, 1, tzinfo=dt.UTC)
    assert parse_datetime("2023-05-01T18:25:43.511Z") == dt.datetime(
        2023, 5, 1, 18, 25, 43, 511000, tzinfo=dt.UTC
    )
    assert parse_datetime("") is None
    assert parse_datetime("1/05/2023") is None


def test_empty_strings_are_missing_and_unknown_fields_ignored() -> None:
    user = parse_user(
        {
            "sourcedId": "u1",
            "status": "active",
            "role": "teacher",
            "givenName": "Zoë",
            "familyName": "O'Brien",
            "email": "  ",
            "username": "",
            "identifier": "",
            "orgs": [{"sourcedId": "s1"}, {"sourcedId": ""}],
            "ext_vendor": {"x": 1},
            "enabledUser": "false",
        },
        Version.V1P1,
    )
    assert user.email is None and user.username is None and user.identifier is None
    assert user.org_sourced_ids == ("s1",)
    assert user.enabled_user is False
    assert user.given_name == "Zoë"


def test_v1p2_roles_give_role_and_orgs() -> None:
    row = {
        "sourcedId": "u2",
        "status": "active",
        "enabledUser": "true",
        "givenName": "A",
        "familyName": "B",
        "roles": [
            {"roleType": "primary", "role": "guardian", "org": {"sourcedId": "s9"}},
            {"roleType": "primary", "role": "teacher", "org": {"sourcedId": "s1"}},
            {"roleType": "secondary", "role": "teacher", "org": {"sourcedId": "s2"}},
        ],
    }
    teacher = parse_user(row, Version.V1P2, wanted_role="teacher")
    assert teacher.role == "teacher" and teacher.org_sourced_ids == ("s1", "s2")
    assert parse_user(row, Version.V1P2).role == "guardian"


def test_rows_without_sourced_id_or_not_objects_are_errors() -> None:
    with pytest.raises(RowError, match="sourcedId"):
        parse_user({"sourcedId": "", "role": "teacher"}, Version.V1P1)
    with pytest.raises(RowError, match="JSON object"):
        parse_org(["not", "an", "object"])
    with pytest.raises(RowError, match="role"):
        parse_user({"sourcedId": "x"}, Version.V1P1)


def test_org_parent_and_type() -> None:
    org = parse_org(
        {
            "sourcedId": "s1",
            "name": "Lincoln Elem",
            "type": "School",
            "parent": {"sourcedId": "d1"},
            "identifier": "",
        }
    )
    assert (org.type, org.parent, org.identifier) == ("school", "d1", None)


@pytest.mark.parametrize(
    "payload",
    [
        {"imsx_codeMajor": "failure", "imsx_severity": "error", "imsx_description": "Bad filter"},
        {"statusInfoSet": [{"imsx_codeMajor": "failure", "imsx_description": "Bad filter"}]},
        {"StatusInfoSet": {"imsx_codemajor": "failure", "IMSX_DESCRIPTION": "Bad filter"}},
        {
            "imsx_codeMajor": "failure",
            "imsx_codeMinor": {
                "imsx_codeMinorField": [
                    {"imsx_codeMinorFieldName": "TargetEndSystem", "imsx_codeMinorFieldValue": "Bad filter"}
                ]
            },
        },
    ],
)
def test_imsx_descriptions_in_every_shape(payload: object) -> None:
    assert imsx_description(payload) == "Bad filter"


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ({"sourcedId": "u1", "role": "teacher", "givenName": 5}, "$.givenName"),
        ({"sourcedId": "u1", "role": "teacher", "orgs": "x"}, "$.orgs"),
        ({"sourcedId": "u1", "role": "teacher", "orgs": ["x"]}, "$.orgs[0]"),
        ({"sourcedId": "u1", "role": "teacher", "email": []}, "$.email"),
        ({"sourcedId": 12, "role": "teacher"}, "$.sourcedId"),
        ({"sourcedId": "u1", "role": "teacher", "enabledUser": {}}, "$.enabledUser"),
    ],
)
def test_fields_of_the_wrong_type_are_row_errors_naming_the_field(row: object, field: str) -> None:
    with pytest.raises(RowError, match="wrong type") as caught:
        parse_user(row, Version.V1P1)
    assert field in str(caught.value)
