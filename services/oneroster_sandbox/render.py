"""Records as OneRoster JSON, pre-serialised once per district revision so pages are byte joins.

Spec mode follows the IMS 1.1 OpenAPI (1.2: the 1EdTech rostering schema): booleans, absent fields
omitted, ``href``s on this server. Quirks mode sends what ClassLink Roster Servers send:
``enabledUser`` as the strings "true"/"TRUE"/"false", empty strings for absent fields, legacy
``inactive`` for some deleted rows, date-only ``dateLastModified`` on some rows, and absolute
``href``s on the district's ClassLink host (which clients must not follow).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from services.oneroster_sandbox.filters import compile_filter
from services.oneroster_sandbox.model import District, SandboxOrg, SandboxUser

# 1.1 role -> 1.2 role (1.2 dropped "administrator").
V1P2_ROLES = {"administrator": "districtAdministrator"}

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _timestamp(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


@dataclass
class Renderer:
    """Serialises one district's records for one (version, quirks) combination."""

    district: District
    version: str
    quirks: bool
    href_root: str
    _cache: dict[str, bytes] = field(default_factory=dict)
    _lists: dict[tuple[str, str], list[Any]] = field(default_factory=dict)
    _revision: int = -1

    def _fresh(self) -> None:
        if self._revision != self.district.revision:
            self._cache.clear()
            self._lists.clear()
            self._revision = self.district.revision

    def _ref(self, kind: str, sourced_id: str) -> dict[str, str]:
        return {"href": f"{self.href_root}/{kind}s/{sourced_id}", "sourcedId": sourced_id, "type": kind}

    def org(self, org: SandboxOrg) -> dict[str, Any]:
        """An org as OneRoster JSON."""
        body: dict[str, Any] = {
            "sourcedId": org.sourced_id,
            "status": org.status,
            "dateLastModified": _timestamp(org.date_last_modified),
            "name": org.name,
            "type": org.type,
            "identifier": org.identifier,
        }
        if org.parent:
            body["parent"] = self._ref("org", org.parent)
        body["children"] = []
        return body

    def user(self, user: SandboxUser) -> dict[str, Any]:
        """A user as OneRoster JSON; in quirks mode some rows carry a ClassLink server's oddities."""
        quirky = self.quirks and sum(map(ord, user.sourced_id)) % 3 == 0
        status = user.status
        if quirky and status == "tobedeleted":
            status = "inactive"
        modified = _timestamp(user.date_last_modified)
        if quirky:
            modified = modified[:10]
        body: dict[str, Any] = {"sourcedId": user.sourced_id, "status": status, "dateLastModified": modified}
        body["username"] = user.username
        body["userIds"] = [{"type": "LDAP", "identifier": user.username}]
        if self.quirks:
            body["enabledUser"] = ("TRUE" if quirky else "true") if user.enabled_user else "false"
        elif self.version == "1.2":
            body["enabledUser"] = "true" if user.enabled_user else "false"
        else:
            body["enabledUser"] = user.enabled_user
        body["givenName"] = user.given_name
        body["familyName"] = user.family_name
        if self.quirks:
            body["middleName"] = ""
        if self.version == "1.2":
            role = V1P2_ROLES.get(user.role, user.role)
            body["roles"] = [
                {
                    "roleType": "primary" if index == 0 else "secondary",
                    "role": role,
                    "org": self._ref("org", org),
                }
                for index, org in enumerate(user.orgs)
            ]
            if user.orgs:
                body["primaryOrg"] = self._ref("org", user.orgs[0])
        else:
            body["role"] = user.role
            body["orgs"] = [self._ref("org", org) for org in user.orgs]
        body["identifier"] = user.identifier
        if user.email is not None or self.quirks:
            body["email"] = user.email or ""
        if self.quirks:
            body.update({"sms": "", "phone": "", "password": ""})
        body["agents"] = []
        body["grades"] = list(user.grades)
        return body

    def encoded(self, record: SandboxOrg | SandboxUser) -> bytes:
        """A record's serialised JSON, cached until the district's next revision."""
        self._fresh()
        cached = self._cache.get(record.sourced_id)
        if cached is None:
            body = self.org(record) if isinstance(record, SandboxOrg) else self.user(record)
            cached = _dumps(body).encode()
            self._cache[record.sourced_id] = cached
        return cached

    def listing(
        self,
        collection: str,
        base: Callable[[], list[Any]],
        filter_expression: str,
        fields: dict[str, Callable[[Any], object]],
    ) -> list[Any]:
        """The records of a collection after its filter, cached until the district changes."""
        self._fresh()
        key = (collection, filter_expression)
        cached = self._lists.get(key)
        if cached is None:
            records = base()
            if filter_expression:
                test = compile_filter(filter_expression, fields)
                records = [r for r in records if test(r)]
            cached = self._lists[key] = records
        return cached

    def warm(self) -> None:
        """Serialises every record once, so the first pull is served as fast as later ones."""
        for org in self.district.orgs.values():
            self.encoded(org)
        for user in self.district.users.values():
            self.encoded(user)
