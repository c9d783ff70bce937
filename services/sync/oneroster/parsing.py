"""Lenient reading of OneRoster JSON as real servers send it.

Tolerated: ``enabledUser`` as a bool or a "true"/"TRUE"/"false" string, empty strings for absent
fields, ``dateLastModified`` with or without a time, unknown fields, legacy status ``inactive``
(read as ``tobedeleted``), 1.1 ``role``/``orgs`` or 1.2 ``roles[]``. A row without a ``sourcedId``
cannot be keyed and raises :class:`RowError`, which the client reports as a problem.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from services.sync.oneroster.config import Version
from services.sync.oneroster.models import Org, Status, User


class RowError(ValueError):
    """A row that cannot become a record; the message says why."""


def text(value: object) -> str | None:
    """A trimmed string, or None for missing, empty and non-string values."""
    if isinstance(value, str):
        stripped = value.strip()
        return stripped or None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def parse_bool(value: object, *, default: bool = True) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in {"true", "1", "yes"}:
            return True
        if lowered in {"false", "0", "no"}:
            return False
    return default


def parse_status(value: object) -> Status:
    """``active`` or ``tobedeleted``; legacy ``inactive``/``deleted`` mean tobedeleted, blank means active."""
    lowered = (text(value) or "active").lower()
    if lowered in {"tobedeleted", "inactive", "deleted"}:
        return Status.TOBEDELETED
    return Status.ACTIVE


def parse_datetime(value: object) -> dt.datetime | None:
    """ISO 8601 date-time or date, read as UTC when no offset is given; None when unreadable."""
    raw = text(value)
    if raw is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(raw.replace("Z", "+00:00").replace(" ", "T", 1))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _sourced_id(row: Mapping[str, Any]) -> str:
    sourced_id = text(row.get("sourcedId"))
    if sourced_id is None:
        raise RowError("row has no sourcedId")
    return sourced_id


def _ref_id(ref: object) -> str | None:
    return text(ref.get("sourcedId")) if isinstance(ref, Mapping) else None


def parse_org(row: object) -> Org:
    if not isinstance(row, Mapping):
        raise RowError("row is not a JSON object")
    sourced_id = _sourced_id(row)
    name = text(row.get("name"))
    if name is None:
        raise RowError(f"org {sourced_id} has no name")
    return Org(
        sourced_id=sourced_id,
        name=name,
        type=(text(row.get("type")) or "").lower(),
        status=parse_status(row.get("status")),
        identifier=text(row.get("identifier")),
        date_last_modified=parse_datetime(row.get("dateLastModified")),
        parent=_ref_id(row.get("parent")),
    )


def _role_and_orgs_v1p2(row: Mapping[str, Any], wanted_role: str | None) -> tuple[str, tuple[str, ...]]:
    roles = [r for r in row.get("roles") or [] if isinstance(r, Mapping) and text(r.get("role"))]
    if not roles:
        raise RowError("user has no roles")
    names = [str(text(r.get("role"))) for r in roles]
    if wanted_role is not None and wanted_role in names:
        role = wanted_role
    else:
        primary = [n for r, n in zip(roles, names, strict=True) if text(r.get("roleType")) == "primary"]
        role = primary[0] if primary else names[0]
    orgs = [_ref_id(r.get("org")) for r, n in zip(roles, names, strict=True) if n == role]
    return role, tuple(dict.fromkeys(o for o in orgs if o))


def parse_user(row: object, version: Version, *, wanted_role: str | None = None) -> User:
    """A user; for 1.2, ``wanted_role`` picks which of the user's roles (and its orgs) to report."""
    if not isinstance(row, Mapping):
        raise RowError("row is not a JSON object")
    sourced_id = _sourced_id(row)
    if version is Version.V1P2 or "roles" in row and "role" not in row:
        role, orgs = _role_and_orgs_v1p2(row, wanted_role)
    else:
        role = (text(row.get("role")) or "").strip()
        if not role:
            raise RowError(f"user {sourced_id} has no role")
        orgs = tuple(dict.fromkeys(o for o in (_ref_id(r) for r in row.get("orgs") or []) if o))
    return User(
        sourced_id=sourced_id,
        status=parse_status(row.get("status")),
        enabled_user=parse_bool(row.get("enabledUser")),
        given_name=text(row.get("givenName")) or "",
        family_name=text(row.get("familyName")) or "",
        email=text(row.get("email")),
        role=role,
        org_sourced_ids=orgs,
        username=text(row.get("username")),
        identifier=text(row.get("identifier")),
        date_last_modified=parse_datetime(row.get("dateLastModified")),
    )


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
    if not isinstance(payload, Mapping):
        return False
    for key, value in payload.items():
        if str(key).lower() in {"statusinfoset", "imsx_statusinfo", "imsx_codemajor"}:
            return "failure" in str(value).lower() or "unsupported" in str(value).lower()
    return False
