"""What EW's roster must hold after a sync, worked out from the sandbox's ground truth.

Independent of the planner's code: the rules of the product's help text, applied to the raw
sandbox snapshot (``SandboxHandle.roster()`` in tests, ``GET /_sandbox/roster``), so an e2e test
compares RosterService with it and the demo knows which teachers a sync lands.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ew.roster.v1 import roster_pb2

from services.sync.planning.emails import email_key, is_valid_email
from services.sync.planning.person_names import name_key


@dataclass(frozen=True)
class TeacherRow:
    """One EW teacher as compared: names, email, schools, active or not."""

    given_name: str
    family_name: str
    email: str
    school_ids: frozenset[str]
    active: bool


def active_schools(truth: Mapping[str, Any]) -> list[dict[str, Any]]:
    """ClassLink schools that sync (type school, status active)."""
    return [o for o in truth["orgs"] if o["type"] == "school" and o["status"] == "active"]


STAFF_ROLES = ("teacher", "administrator", "aide", "proctor")


def _present(user: dict[str, Any]) -> bool:
    return bool(user["role"] in STAFF_ROLES and user["status"] == "active" and user["enabledUser"])


def _named(user: dict[str, Any]) -> bool:
    return bool(user["givenName"].strip() and user["familyName"].strip())


def people(truth: Mapping[str, Any]) -> list[list[dict[str, Any]]]:
    """Teacher rows that land in EW, grouped into people (sorted by sourcedId).

    Present teacher rows with both names and a valid email are one person per email key, unless a
    present staff account with that email and a name carries another name: then nobody lands.
    """
    candidates = [
        u
        for u in truth["users"]
        if u["role"] == "teacher"
        and _present(u)
        and _named(u)
        and u.get("email")
        and is_valid_email(u["email"])
    ]
    accounts: dict[str, list[dict[str, Any]]] = {}
    for u in truth["users"]:
        if _present(u) and _named(u) and u.get("email") and is_valid_email(u["email"]):
            accounts.setdefault(email_key(u["email"]), []).append(u)
    grouped: dict[str, list[dict[str, Any]]] = {}
    for u in sorted(candidates, key=lambda u: u["sourcedId"]):
        grouped.setdefault(email_key(u["email"]), []).append(u)
    return [
        rows
        for key, rows in grouped.items()
        if len({name_key(a["givenName"], a["familyName"]) for a in accounts[key]}) == 1
    ]


def syncable_teachers(truth: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The first row of each person that lands in EW (one EW teacher each)."""
    return [rows[0] for rows in people(truth)]


def expected_active(truth: Mapping[str, Any], mapping: Mapping[str, str]) -> dict[str, TeacherRow]:
    """Active EW teachers by email key; ``mapping`` is ClassLink school id → EW school id."""
    schools = {o["sourcedId"] for o in active_schools(truth)}
    return {
        email_key(rows[0]["email"]): TeacherRow(
            rows[0]["givenName"].strip(),
            rows[0]["familyName"].strip(),
            rows[0]["email"].strip(),
            frozenset(mapping[org] for u in rows for org in u["orgs"] if org in schools),
            True,
        )
        for rows in people(truth)
    }


def ew_teachers(teachers: Iterable[roster_pb2.Teacher]) -> dict[str, TeacherRow]:
    """EW's teachers by email key."""
    return {
        email_key(t.email): TeacherRow(
            t.given_name,
            t.family_name,
            t.email,
            frozenset(t.school_ids),
            t.state == roster_pb2.TEACHER_STATE_ACTIVE,
        )
        for t in teachers
    }
