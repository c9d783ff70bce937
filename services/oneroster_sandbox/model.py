"""The sandbox's district data and the mutations tests apply between syncs.

Records are immutable; a mutation batch builds new dictionaries and swaps them in only when every
operation of the batch succeeded, so a failed batch changes nothing.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

ROLES = ("administrator", "aide", "guardian", "parent", "proctor", "relative", "student", "teacher")
ORG_TYPES = ("department", "district", "local", "national", "school", "state")


class MutationError(ValueError):
    """An admin mutation that cannot apply; the message names the operation and the reason."""


@dataclass(frozen=True, slots=True)
class SandboxOrg:
    """An org (district or school) as the sandbox serves it."""

    sourced_id: str
    name: str
    type: str
    identifier: str
    parent: str | None
    status: str
    date_last_modified: dt.datetime


@dataclass(frozen=True, slots=True)
class SandboxUser:
    """A user (teacher, student or staff) as the sandbox serves it; ``orgs`` are sourcedIds."""

    sourced_id: str
    status: str
    enabled_user: bool
    given_name: str
    family_name: str
    email: str | None
    role: str
    orgs: tuple[str, ...]
    username: str
    identifier: str
    date_last_modified: dt.datetime
    grades: tuple[str, ...] = ()


@dataclass
class District:
    """One tenant's roster plus its credentials and ClassLink account identities."""

    tenant_id: str
    name: str
    orgs: dict[str, SandboxOrg]
    users: dict[str, SandboxUser]
    client_id: str
    client_secret: str
    bearer_token: str
    application_id: str
    revision: int = 0
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def next_id(self, prefix: str) -> str:
        """A sourcedId for a new record, unused by any org or user of the district."""
        while True:
            candidate = f"{prefix}-{self.tenant_id}-{next(self._ids):06d}"
            if candidate not in self.users and candidate not in self.orgs:
                return candidate

    def district_org(self) -> SandboxOrg | None:
        """The district's own org, when the roster has one."""
        return next((o for o in self.orgs.values() if o.type == "district"), None)

    def apply(self, ops: list[dict[str, Any]], now: dt.datetime) -> list[dict[str, Any]]:
        """Applies a batch of mutations atomically; returns one result per operation."""
        batch = _Batch(self, dict(self.orgs), dict(self.users), now)
        results = []
        for index, op in enumerate(ops):
            try:
                results.append(_apply_one(batch, op))
            except (KeyError, TypeError, ValueError) as exc:
                raise MutationError(f"operation {index} ({op.get('op')!r}): {exc}") from exc
        self.orgs, self.users = batch.orgs, batch.users
        self.revision += 1
        return results


def _text(value: object, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"'{name}' must be a non-empty string")
    return value


def _status(value: object) -> str:
    if value not in ("active", "tobedeleted"):
        raise ValueError("'status' must be 'active' or 'tobedeleted'")
    return str(value)


def _email(value: object) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ValueError("'email' must be a string or null")
    return value or None


def _enabled(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError("'enabledUser' must be a boolean")
    return value


def _role(value: object) -> str:
    if value not in ROLES:
        raise ValueError(f"'role' must be one of {', '.join(ROLES)}")
    return str(value)


def _org_ids(value: object, orgs: dict[str, SandboxOrg]) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise ValueError("'orgs' must be a non-empty list of org sourcedIds")
    unknown = [o for o in value if o not in orgs]
    if unknown:
        raise ValueError(f"unknown orgs {unknown}")
    return tuple(value)


def _user_fields(spec: dict[str, Any], orgs: dict[str, SandboxOrg]) -> dict[str, Any]:
    checks: dict[str, tuple[str, Callable[[object], object]]] = {
        "givenName": ("given_name", partial(_text, name="givenName")),
        "familyName": ("family_name", partial(_text, name="familyName")),
        "username": ("username", partial(_text, name="username")),
        "identifier": ("identifier", partial(_text, name="identifier")),
        "email": ("email", _email),
        "status": ("status", _status),
        "enabledUser": ("enabled_user", _enabled),
        "role": ("role", _role),
        "orgs": ("orgs", partial(_org_ids, orgs=orgs)),
    }
    return {attr: check(spec[key]) for key, (attr, check) in checks.items() if key in spec}


@dataclass(frozen=True)
class _Batch:
    """What every operation of one mutation batch works on: copies of the district's orgs and users."""

    district: District
    orgs: dict[str, SandboxOrg]
    users: dict[str, SandboxUser]
    now: dt.datetime


def _add_user(batch: _Batch, op: dict[str, Any]) -> object:
    sourced_id = op.get("sourcedId") or batch.district.next_id("usr")
    if sourced_id in batch.users:
        raise ValueError(f"user {sourced_id} already exists")
    spec = {"role": "teacher"} | op
    for required in ("givenName", "familyName", "orgs"):
        if required not in spec:
            raise ValueError(f"'{required}' is required")
    values = _user_fields(spec, batch.orgs)
    batch.users[sourced_id] = SandboxUser(
        sourced_id=sourced_id,
        status=values.get("status", "active"),
        enabled_user=values.get("enabled_user", True),
        given_name=values["given_name"],
        family_name=values["family_name"],
        email=values.get("email"),
        role=values["role"],
        orgs=values["orgs"],
        username=values.get("username", sourced_id),
        identifier=values.get("identifier", sourced_id),
        date_last_modified=batch.now,
    )
    return sourced_id


def _update_user(batch: _Batch, op: dict[str, Any]) -> object:
    sourced_id = op["sourcedId"]
    if sourced_id not in batch.users:
        raise ValueError(f"unknown user {sourced_id}")
    values = _user_fields(op.get("set") or {}, batch.orgs)
    batch.users[sourced_id] = replace(batch.users[sourced_id], date_last_modified=batch.now, **values)
    return sourced_id


def _remove_user(batch: _Batch, op: dict[str, Any]) -> object:
    sourced_id = op["sourcedId"]
    if batch.users.pop(sourced_id, None) is None:
        raise ValueError(f"unknown user {sourced_id}")
    return sourced_id


def _add_school(batch: _Batch, op: dict[str, Any]) -> object:
    sourced_id = op.get("sourcedId") or batch.district.next_id("sch")
    if sourced_id in batch.orgs:
        raise ValueError(f"org {sourced_id} already exists")
    parent = batch.district.district_org()
    batch.orgs[sourced_id] = SandboxOrg(
        sourced_id=sourced_id,
        name=_text(op.get("name"), "name"),
        type="school",
        identifier=str(op.get("identifier") or sourced_id),
        parent=parent.sourced_id if parent else None,
        status="active",
        date_last_modified=batch.now,
    )
    return sourced_id


def _update_school(batch: _Batch, op: dict[str, Any]) -> object:
    sourced_id = op["sourcedId"]
    if sourced_id not in batch.orgs:
        raise ValueError(f"unknown org {sourced_id}")
    changes: dict[str, Any] = {}
    spec = op.get("set") or {}
    if "name" in spec:
        changes["name"] = _text(spec["name"], "name")
    if "status" in spec:
        changes["status"] = _status(spec["status"])
    if "identifier" in spec:
        changes["identifier"] = _text(spec["identifier"], "identifier")
    batch.orgs[sourced_id] = replace(batch.orgs[sourced_id], date_last_modified=batch.now, **changes)
    return sourced_id


def _remove_school(batch: _Batch, op: dict[str, Any]) -> object:
    sourced_id = op["sourcedId"]
    if batch.orgs.pop(sourced_id, None) is None:
        raise ValueError(f"unknown org {sourced_id}")
    return sourced_id


_OPS = {
    "add_user": _add_user,
    "add_teacher": _add_user,
    "update_user": _update_user,
    "remove_user": _remove_user,
    "add_school": _add_school,
    "update_school": _update_school,
    "remove_school": _remove_school,
}


def _apply_one(batch: _Batch, op: dict[str, Any]) -> dict[str, Any]:
    kind = op.get("op")
    apply = _OPS.get(kind) if isinstance(kind, str) else None
    if apply is None:
        raise ValueError(
            "unknown op; expected add_user, add_teacher, update_user, remove_user, add_school, "
            "update_school or remove_school"
        )
    return {"op": kind, "sourcedId": apply(batch, op)}
