"""Lenient, fast reading of OneRoster JSON as real servers send it.

Pages are decoded by msgspec straight into small wire structs that keep only the fields a roster
needs (unknown fields are skipped without building Python objects for them), then normalised:
``enabledUser`` as a bool or a "true"/"TRUE"/"false" string, empty strings as missing,
``dateLastModified`` with or without a time, legacy status ``inactive`` read as ``tobedeleted``,
1.1 ``role``/``orgs`` or 1.2 ``roles[]``.

The fields that identify or place a person or school (``sourcedId``, names, ``email``, ``role``,
``orgs``/``roles``, ``enabledUser``) must have their spec's JSON type: a number where a name should
be is a broken record, not a name. A page whose rows do not all fit falls back to decoding row by
row, so that one odd row (not an object, a field of the wrong type) becomes an :class:`Unreadable`
row, reported with its position and, when it has one, its email, instead of failing the page. A row
without a ``sourcedId`` cannot be keyed and raises :class:`RowError`, which the client reports too.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec

from services.sync.oneroster.config import Version
from services.sync.oneroster.errors import MalformedResponseError, ServerError
from services.sync.oneroster.models import Org, Status, User

ORG_KEYS = ("orgs", "schools")
USER_KEYS = ("users", "teachers")

_STATUSES = {
    "active": Status.ACTIVE,
    "tobedeleted": Status.TOBEDELETED,
    "inactive": Status.TOBEDELETED,
    "deleted": Status.TOBEDELETED,
}
W = TypeVar("W", "WireUser", "WireOrg")
_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})


class RowError(ValueError):
    """A row that cannot become a record; the message says why."""


# Wire structs skip the garbage collector (gc=False): they never form reference cycles, and a
# 100,000-row pull otherwise spends much of its time in collections over them.
class WireRef(msgspec.Struct, rename="camel", gc=False):
    """A reference to another record (``{"sourcedId": ...}``)."""

    sourced_id: str | None = None


class WireRole(msgspec.Struct, rename="camel", gc=False):
    """One of a 1.2 user's ``roles[]``: the role, whether it is primary, and its org."""

    role_type: Any = None
    role: str | None = None
    org: WireRef | None = None


class WireUser(msgspec.Struct, rename="camel", gc=False):
    """The user fields a roster needs.

    Informational scalars stay untyped, so odd values there never fail a row.
    """

    sourced_id: str | None = None
    status: Any = None
    date_last_modified: Any = None
    enabled_user: bool | str | None = None
    given_name: str | None = None
    family_name: str | None = None
    email: str | None = None
    role: str | None = None
    orgs: list[WireRef] | None = None
    roles: list[WireRole] | None = None
    username: Any = None
    identifier: Any = None


class WireOrg(msgspec.Struct, rename="camel", gc=False):
    """The org fields a roster needs; informational scalars stay untyped as for users."""

    sourced_id: str | None = None
    status: Any = None
    date_last_modified: Any = None
    name: str | None = None
    type: Any = None
    identifier: Any = None
    parent: WireRef | None = None


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A row that is not an object or has a field of the wrong type; what could be read of it."""

    sourced_id: str | None
    email: str | None
    reason: str


class _UserPage(msgspec.Struct, gc=False):
    users: list[WireUser] | None = None
    teachers: list[WireUser] | None = None


class _OrgPage(msgspec.Struct, gc=False):
    orgs: list[WireOrg] | None = None
    schools: list[WireOrg] | None = None


_USER_PAGE = msgspec.json.Decoder(_UserPage)
_ORG_PAGE = msgspec.json.Decoder(_OrgPage)


def text(value: object) -> str | None:
    """A trimmed string, or None for missing, empty and non-string values."""
    if type(value) is str:
        stripped = value.strip()
        return stripped or None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def parse_bool(value: object, *, default: bool = True) -> bool:
    """A OneRoster boolean as a bool or a "true"/"TRUE"/"false" string; ``default`` for anything else."""
    if value is True or value is False:
        return value
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
    return default


def parse_status(value: object) -> Status:
    """``active`` or ``tobedeleted``; legacy ``inactive``/``deleted`` mean tobedeleted, blank means active."""
    exact = _STATUSES.get(value) if type(value) is str else None
    if exact is not None:
        return exact
    if type(value) is not str:
        return Status.ACTIVE
    return _STATUSES.get(value.strip().lower(), Status.ACTIVE)


def parse_datetime(value: object) -> dt.datetime | None:
    """ISO 8601 date-time or date, read as UTC when no offset is given; None when unreadable."""
    if type(value) is not str or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        try:
            parsed = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace(" ", "T", 1))
        except ValueError:
            return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _ref_ids(refs: list[WireRef] | None) -> tuple[str, ...]:
    if not refs:
        return ()
    ids: list[str] = []
    for ref in refs:
        value = ref.sourced_id
        sourced_id = (value.strip() or None) if type(value) is str else text(value)
        if sourced_id is not None and sourced_id not in ids:
            # Interned: a district's few thousand schools are referenced by every one of its rows.
            ids.append(sys.intern(sourced_id))
    return tuple(ids)


def org_from_wire(wire: WireOrg) -> Org:
    """An org; RowError when it has no sourcedId or no name."""
    sourced_id = text(wire.sourced_id)
    if sourced_id is None:
        raise RowError("row has no sourcedId")
    name = text(wire.name)
    if name is None:
        raise RowError(f"org {sourced_id} has no name")
    return Org(
        sourced_id=sourced_id,
        name=name,
        type=(text(wire.type) or "").lower(),
        status=parse_status(wire.status),
        identifier=text(wire.identifier),
        date_last_modified=parse_datetime(wire.date_last_modified),
        parent=text(wire.parent.sourced_id) if wire.parent is not None else None,
    )


def _role_and_orgs_v1p2(roles: list[WireRole] | None, wanted_role: str | None) -> tuple[str, tuple[str, ...]]:
    entries = [(r, name) for r in roles or () if (name := text(r.role))]
    if not entries:
        raise RowError("user has no roles")
    names = [name for _, name in entries]
    if wanted_role is not None and wanted_role in names:
        role = wanted_role
    else:
        primary = [name for r, name in entries if text(r.role_type) == "primary"]
        role = primary[0] if primary else names[0]
    return role, _ref_ids([r.org for r, name in entries if name == role and r.org is not None])


def user_from_wire(wire: WireUser, version: Version, wanted_role: str | None = None) -> User:
    """A user; for 1.2, ``wanted_role`` picks which of the user's roles (and its orgs) to report.

    This runs once per row of a 100,000-teacher pull, so the common case (a string) is inlined
    before falling back to :func:`text`.
    """
    value = wire.sourced_id
    sourced_id = (value.strip() or None) if type(value) is str else text(value)
    if sourced_id is None:
        raise RowError("row has no sourcedId")
    if version is Version.V1P2 or (wire.roles is not None and wire.role is None):
        role, orgs = _role_and_orgs_v1p2(wire.roles, wanted_role)
    else:
        value = wire.role
        named_role = (value.strip() or None) if type(value) is str else text(value)
        if named_role is None:
            raise RowError(f"user {sourced_id} has no role")
        role, orgs = named_role, _ref_ids(wire.orgs)
    given, family, email = wire.given_name, wire.family_name, wire.email
    username, identifier, enabled = wire.username, wire.identifier, wire.enabled_user
    return User(
        sourced_id=sourced_id,
        status=parse_status(wire.status),
        enabled_user=enabled if enabled is True or enabled is False else parse_bool(enabled),
        given_name=(given.strip() if type(given) is str else text(given)) or "",
        family_name=(family.strip() if type(family) is str else text(family)) or "",
        email=(email.strip() or None) if type(email) is str else text(email),
        role=role,
        org_sourced_ids=orgs,
        username=(username.strip() or None) if type(username) is str else text(username),
        identifier=(identifier.strip() or None) if type(identifier) is str else text(identifier),
        date_last_modified=parse_datetime(wire.date_last_modified),
    )


def parse_org(row: object) -> Org:
    """An org from one decoded JSON row; RowError when it cannot become one."""
    wire = read_row(row, WireOrg)
    if isinstance(wire, Unreadable):
        raise RowError(wire.reason)
    return org_from_wire(wire)


def parse_user(row: object, version: Version, *, wanted_role: str | None = None) -> User:
    """A user from one decoded JSON row; RowError when it cannot become one."""
    wire = read_row(row, WireUser)
    if isinstance(wire, Unreadable):
        raise RowError(wire.reason)
    return user_from_wire(wire, version, wanted_role)


def _string(value: object) -> str | None:
    return (value.strip() or None) if isinstance(value, str) else None


def read_row(row: object, wire: type[W]) -> W | Unreadable:
    """One decoded JSON row as a wire struct, or what can be read of it and why it cannot be used."""
    if not isinstance(row, dict):
        return Unreadable(None, None, "row is not a JSON object")
    try:
        return msgspec.convert(row, wire)
    except msgspec.ValidationError as exc:
        return Unreadable(
            _string(row.get("sourcedId")), _string(row.get("email")), f"a field has the wrong type: {exc}"
        )


def _generic_rows(body: bytes, keys: Sequence[str], path: str, wire: type[W]) -> list[W | Unreadable]:
    """Rows of a page the typed decoder refused, read one by one."""
    payload = msgspec.json.decode(body)
    if isinstance(payload, dict):
        for key in keys:
            rows = payload.get(key)
            if isinstance(rows, list):
                return [read_row(row, wire) for row in rows]
        if is_failure_payload(payload):
            description = imsx_description(payload) or "no description"
            raise ServerError(
                f"{path} returned a failure status: {description}.", status_code=200, description=description
            )
    raise MalformedResponseError(f"{path} returned HTTP 200 without a '{keys[0]}' collection.")


def decode_user_rows(body: bytes, path: str) -> list[WireUser | Unreadable]:
    """The rows of a users page (key ``users`` or ``teachers``); raises for a 200 without them."""
    try:
        page = _USER_PAGE.decode(body)
    except msgspec.ValidationError:
        return _generic_rows(body, USER_KEYS, path, WireUser)
    rows = page.users if page.users is not None else page.teachers
    return list(rows) if rows is not None else _generic_rows(body, USER_KEYS, path, WireUser)


def decode_org_rows(body: bytes, path: str) -> list[WireOrg | Unreadable]:
    """The rows of an orgs page (key ``orgs`` or ``schools``); raises for a 200 without them."""
    try:
        page = _ORG_PAGE.decode(body)
    except msgspec.ValidationError:
        return _generic_rows(body, ORG_KEYS, path, WireOrg)
    rows = page.orgs if page.orgs is not None else page.schools
    return list(rows) if rows is not None else _generic_rows(body, ORG_KEYS, path, WireOrg)


def imsx_description(payload: object) -> str | None:
    """The server's ``imsx_description`` from an error body, with or without a ``statusInfoSet``.

    Key casing varies between servers (``imsx_CodeMinor`` / ``imsx_codeMinor``), so keys are
    compared case-insensitively.
    """
    if not isinstance(payload, Mapping):
        return None
    lowered = {str(k).lower(): v for k, v in payload.items()}
    infos = lowered.get("statusinfoset") or lowered.get("imsx_statusinfo")
    if isinstance(infos, Mapping):
        infos = [infos]
    candidates = infos if isinstance(infos, list) else [payload]
    for info in candidates:
        if isinstance(info, Mapping):
            fields = {str(k).lower(): v for k, v in info.items()}
            description = text(fields.get("imsx_description"))
            if description:
                return description
            minor = fields.get("imsx_codeminor")
            if isinstance(minor, Mapping):
                minor_fields = {str(k).lower(): v for k, v in minor.items()}.get("imsx_codeminorfield")
                for entry in minor_fields if isinstance(minor_fields, list) else []:
                    if isinstance(entry, Mapping) and (value := text(entry.get("imsx_codeMinorFieldValue"))):
                        return value
    return None


def is_failure_payload(payload: object) -> bool:
    """True when a body is an imsx status reporting failure, even one served with HTTP 200."""
    if not isinstance(payload, Mapping):
        return False
    for key, value in payload.items():
        if str(key).lower() in {"statusinfoset", "imsx_statusinfo", "imsx_codemajor"}:
            return "failure" in str(value).lower() or "unsupported" in str(value).lower()
    return False
