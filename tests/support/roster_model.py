"""What EW's roster must hold after a sync, worked out from the sandbox's ground truth.

Independent of the planner's code: the rules of the product's help text, applied to the raw
sandbox snapshot (``SandboxHandle.roster()``), so an e2e test compares RosterService with it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ew.roster.v1 import roster_pb2

from services.sync.emails import email_key, is_valid_email


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


def syncable_teachers(truth: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Teacher rows that land in EW: active, enabled, both names, a valid email no other such row shares."""
    present = [
        u for u in truth["users"] if u["role"] == "teacher" and u["status"] == "active" and u["enabledUser"]
    ]
    candidates = [
        u
        for u in present
        if u.get("email")
        and u["email"].strip()
        and is_valid_email(u["email"].strip())
        and u["givenName"].strip()
        and u["familyName"].strip()
    ]
    counts = Counter(email_key(u["email"]) for u in candidates)
    return [u for u in candidates if counts[email_key(u["email"])] == 1]


def expected_active(truth: Mapping[str, Any], mapping: Mapping[str, str]) -> dict[str, TeacherRow]:
    """Active EW teachers by email key; ``mapping`` is ClassLink school id → EW school id."""
    schools = {o["sourcedId"] for o in active_schools(truth)}
    return {
        email_key(u["email"]): TeacherRow(
            u["givenName"].strip(),
            u["familyName"].strip(),
            u["email"].strip(),
            frozenset(mapping[org] for org in u["orgs"] if org in schools),
            True,
        )
        for u in syncable_teachers(truth)
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
