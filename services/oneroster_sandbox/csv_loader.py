"""Loads a OneRoster CSV bundle (``orgs.csv``, ``users.csv``, optional 1.2 ``roles.csv``) into a district.

Real bundles are messy, so the loader tolerates: header typos seen in the wild
(``dataLastModified``, ``prefferedGivenName``), extra columns (``metadata.*``, ``ext_*``), empty
header cells and trailing commas, blank or legacy ``inactive`` status, ``TRUE``/``true`` booleans,
and dates as ISO 8601, ``YYYY-MM-DD HH:MM:SS`` or ``D/M/YYYY``. A row that cannot become a record
(no sourcedId, duplicate sourcedId, no name, unknown role) is skipped and reported with its file, row
number and reason; a row loaded with a repaired value is reported too, marked ``skipped: false``.
"""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from services.oneroster_sandbox.model import ORG_TYPES, ROLES, District, SandboxOrg, SandboxUser

_HEADER_FIXES = {"datalastmodified": "dateLastModified"}
# 1.2 role names -> the 1.1 role the sandbox stores.
_ROLE_ALIASES = {
    "districtadministrator": "administrator",
    "siteadministrator": "administrator",
    "systemadministrator": "administrator",
    "principal": "administrator",
    "counselor": "aide",
}
_EPOCH = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class CsvProblem:
    """A row skipped, or loaded with a repaired value (``skipped`` false), with its file and row number."""

    file: str
    row: int
    reason: str
    skipped: bool

    def to_json(self) -> dict[str, object]:
        """The problem as the sandbox reports it in its startup JSON."""
        return {"file": self.file, "row": self.row, "reason": self.reason, "skipped": self.skipped}


@dataclass(frozen=True)
class CsvLoad:
    """The orgs and users a bundle yielded, and the problems met reading it."""

    orgs: dict[str, SandboxOrg]
    users: dict[str, SandboxUser]
    problems: list[CsvProblem]


def _canonical(header: str) -> str:
    cleaned = header.strip().lstrip("\ufeff")
    return _HEADER_FIXES.get(cleaned.lower(), cleaned)


def _read(path: Path) -> list[tuple[int, dict[str, str]]]:
    """Rows as (line number, {canonical header: stripped value}); extra trailing cells are ignored."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        try:
            headers = [_canonical(h) for h in next(reader)]
        except StopIteration:
            return []
        rows = []
        for values in reader:
            if not any(v.strip() for v in values):
                continue
            row = {h: v.strip() for h, v in zip(headers, values, strict=False) if h}
            rows.append((reader.line_num, row))
        return rows


def parse_csv_date(value: str) -> dt.datetime | None:
    """A CSV date as ISO 8601, ``YYYY-MM-DD HH:MM:SS`` or ``D/M/YYYY`` (UTC when zoneless); None otherwise."""
    if not value:
        return None
    for candidate in (value.replace("Z", "+00:00"), value.replace(" ", "T", 1)):
        try:
            parsed = dt.datetime.fromisoformat(candidate)
        except ValueError:
            continue
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    try:
        return dt.datetime.strptime(value, "%d/%m/%Y").replace(tzinfo=dt.UTC)
    except ValueError:
        return None


def _status(value: str) -> str:
    return "tobedeleted" if value.lower() in {"tobedeleted", "inactive", "deleted"} else "active"


def _ids(value: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(part.strip() for part in value.split(",") if part.strip()))


class _Loader:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.problems: list[CsvProblem] = []

    def problem(self, file: str, row: int, reason: str, *, skipped: bool = True) -> None:
        self.problems.append(CsvProblem(file, row, reason, skipped))

    def date(self, file: str, line: int, raw: str) -> dt.datetime:
        parsed = parse_csv_date(raw)
        if parsed is None:
            if raw:
                self.problem(
                    file, line, f"unreadable dateLastModified {raw!r}; using {_EPOCH.date()}", skipped=False
                )
            return _EPOCH
        return parsed

    def orgs(self) -> dict[str, SandboxOrg]:
        orgs: dict[str, SandboxOrg] = {}
        path = self.folder / "orgs.csv"
        if not path.exists():
            self.problem("orgs.csv", 0, "file missing; the bundle has no orgs")
            return orgs
        for line, row in _read(path):
            sourced_id = row.get("sourcedId", "")
            org_type = row.get("type", "").lower()
            if not sourced_id:
                self.problem("orgs.csv", line, "no sourcedId")
            elif sourced_id in orgs:
                self.problem("orgs.csv", line, f"duplicate sourcedId {sourced_id}")
            elif not row.get("name"):
                self.problem("orgs.csv", line, f"org {sourced_id} has no name")
            elif org_type not in ORG_TYPES:
                self.problem("orgs.csv", line, f"org {sourced_id} has unknown type {org_type!r}")
            else:
                orgs[sourced_id] = SandboxOrg(
                    sourced_id=sourced_id,
                    name=row["name"],
                    type=org_type,
                    identifier=row.get("identifier") or sourced_id,
                    parent=row.get("parentSourcedId") or None,
                    status=_status(row.get("status", "")),
                    date_last_modified=self.date("orgs.csv", line, row.get("dateLastModified", "")),
                )
        for org in orgs.values():
            if org.parent and org.parent not in orgs:
                self.problem(
                    "orgs.csv", 0, f"org {org.sourced_id} names unknown parent {org.parent}", skipped=False
                )
        return orgs

    def roles(self) -> dict[str, list[tuple[str, str, str]]]:
        """1.2 roles.csv: user sourcedId -> [(roleType, role, org)]."""
        roles: dict[str, list[tuple[str, str, str]]] = {}
        path = self.folder / "roles.csv"
        if not path.exists():
            return roles
        for line, row in _read(path):
            user, role, org = row.get("userSourcedId", ""), row.get("role", ""), row.get("orgSourcedId", "")
            if not user or not role or not org:
                self.problem("roles.csv", line, "role row needs userSourcedId, role and orgSourcedId")
                continue
            roles.setdefault(user, []).append((row.get("roleType", "primary").lower(), role, org))
        return roles

    def users(self, orgs: dict[str, SandboxOrg]) -> dict[str, SandboxUser]:
        users: dict[str, SandboxUser] = {}
        path = self.folder / "users.csv"
        if not path.exists():
            self.problem("users.csv", 0, "file missing; the bundle has no users")
            return users
        roles = self.roles()
        for line, row in _read(path):
            sourced_id = row.get("sourcedId", "")
            if not sourced_id:
                self.problem("users.csv", line, "no sourcedId")
                continue
            if sourced_id in users:
                self.problem("users.csv", line, f"duplicate sourcedId {sourced_id}")
                continue
            role, org_ids = self.role_and_orgs(row, roles.get(sourced_id, []))
            if role not in ROLES:
                self.problem("users.csv", line, f"user {sourced_id} has no known role ({role or 'none'})")
                continue
            if not row.get("givenName") or not row.get("familyName"):
                self.problem("users.csv", line, f"user {sourced_id} lacks givenName or familyName")
                continue
            unknown = [o for o in org_ids if o not in orgs]
            if unknown:
                self.problem(
                    "users.csv", line, f"user {sourced_id} names unknown orgs {unknown}", skipped=False
                )
            users[sourced_id] = SandboxUser(
                sourced_id=sourced_id,
                status=_status(row.get("status", "")),
                enabled_user=row.get("enabledUser", "true").lower() not in {"false", "0", "no"},
                given_name=row["givenName"],
                family_name=row["familyName"],
                email=row.get("email") or None,
                role=role,
                orgs=org_ids,
                username=row.get("username") or sourced_id,
                identifier=row.get("identifier") or sourced_id,
                date_last_modified=self.date("users.csv", line, row.get("dateLastModified", "")),
                grades=_ids(row.get("grades", "")),
            )
        return users

    @staticmethod
    def role_and_orgs(row: dict[str, str], roles: list[tuple[str, str, str]]) -> tuple[str, tuple[str, ...]]:
        if row.get("role"):
            role = row["role"].strip()
            org_ids = row.get("orgSourcedIds") or row.get("orgSourcedId", "")
            return _ROLE_ALIASES.get(role.lower(), role.lower()), _ids(org_ids)
        if not roles:
            return "", _ids(row.get("primaryOrgSourcedId", ""))
        names = [_ROLE_ALIASES.get(r.lower(), r.lower()) for _, r, _ in roles]
        primaries = [name for (kind, _, _), name in zip(roles, names, strict=True) if kind == "primary"]
        chosen = "teacher" if "teacher" in names else (primaries or names)[0]
        return chosen, tuple(
            dict.fromkeys(org for (_, _, org), name in zip(roles, names, strict=True) if name == chosen)
        )


def load_csv_bundle(folder: Path) -> CsvLoad:
    """The orgs and users of the bundle in ``folder``, and the problems met reading them."""
    loader = _Loader(folder)
    orgs = loader.orgs()
    users = loader.users(orgs)
    return CsvLoad(orgs=orgs, users=users, problems=loader.problems)


def district_from_csv(folder: Path, template: District) -> tuple[District, list[CsvProblem]]:
    """``template``'s tenant id and credentials with the bundle's orgs and users."""
    loaded = load_csv_bundle(folder)
    district = District(
        tenant_id=template.tenant_id,
        name=template.name,
        orgs=loaded.orgs,
        users=loaded.users,
        client_id=template.client_id,
        client_secret=template.client_secret,
        bearer_token=template.bearer_token,
        application_id=template.application_id,
    )
    return district, loaded.problems
