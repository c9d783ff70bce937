"""Admin endpoints (``/_sandbox/...``): faults, roster mutations and ground truth, token revocation.

Every request needs the ``X-Sandbox-Admin-Token`` header.
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.oneroster_sandbox.model import District, MutationError, SandboxOrg, SandboxUser
from services.oneroster_sandbox.state import Sandbox

ADMIN_HEADER = "x-sandbox-admin-token"


class _AdminApi:
    """The admin endpoints of one sandbox."""

    def __init__(self, sandbox: Sandbox, admin_token: str) -> None:
        self.sandbox = sandbox
        self.admin_token = admin_token

    def admin_denied(self, request: Request) -> Response | None:
        token = request.headers.get(ADMIN_HEADER, "")
        if not hmac.compare_digest(token, self.admin_token):
            return JSONResponse({"error": f"admin endpoints need the {ADMIN_HEADER} header"}, status_code=401)
        return None

    async def admin_faults(self, request: Request) -> Response:
        if (denied := self.admin_denied(request)) is not None:
            return denied
        if request.method == "POST":
            try:
                payload = json.loads(await request.body())
                self.sandbox.faults.replace(payload["faults"])
            except (ValueError, KeyError, TypeError) as exc:
                return JSONResponse({"error": f"bad faults payload: {exc}"}, status_code=400)
        elif request.method == "DELETE":
            self.sandbox.faults.replace([])
        return JSONResponse({"faults": [f.to_json() for f in self.sandbox.faults.faults]})

    def district_for(self, request: Request, payload: dict[str, Any] | None = None) -> District | None:
        tenant_id = (payload or {}).get("tenant_id") or request.query_params.get("tenant_id")
        return (
            self.sandbox.districts.get(str(tenant_id))
            if tenant_id
            else next(iter(self.sandbox.districts.values()))
        )

    async def admin_roster(self, request: Request) -> Response:
        if (denied := self.admin_denied(request)) is not None:
            return denied
        if request.method == "POST":
            try:
                payload = json.loads(await request.body())
                ops = payload["ops"]
                if not isinstance(ops, list):
                    raise TypeError("'ops' must be a list")
            except (ValueError, KeyError, TypeError) as exc:
                return JSONResponse({"error": f"bad roster payload: {exc}"}, status_code=400)
            district = self.district_for(request, payload)
            if district is None:
                return JSONResponse({"error": "unknown tenant_id"}, status_code=404)
            try:
                results = district.apply(ops, dt.datetime.now(dt.UTC))
            except MutationError as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
            return JSONResponse(
                {"tenant_id": district.tenant_id, "revision": district.revision, "results": results}
            )
        district = self.district_for(request)
        if district is None:
            return JSONResponse({"error": "unknown tenant_id"}, status_code=404)
        return JSONResponse(roster_snapshot(district))

    async def admin_revoke_tokens(self, request: Request) -> Response:
        if (denied := self.admin_denied(request)) is not None:
            return denied
        revoked = len(self.sandbox.oauth2_tokens)
        self.sandbox.oauth2_tokens.clear()
        return JSONResponse({"revoked": revoked})


def routes(sandbox: Sandbox, admin_token: str) -> list[Route]:
    """The routes, served by one _AdminApi."""
    api = _AdminApi(sandbox, admin_token)
    return [
        Route("/_sandbox/faults", api.admin_faults, methods=["GET", "POST", "DELETE"]),
        Route("/_sandbox/roster", api.admin_roster, methods=["GET", "POST"]),
        Route("/_sandbox/revoke-tokens", api.admin_revoke_tokens, methods=["POST"]),
    ]


def roster_snapshot(district: District) -> dict[str, Any]:
    """The district's ground truth, for tests comparing it with what a client pulled."""

    def org(o: SandboxOrg) -> dict[str, Any]:
        return {
            "sourcedId": o.sourced_id,
            "name": o.name,
            "type": o.type,
            "status": o.status,
            "identifier": o.identifier,
            "parent": o.parent,
        }

    def user(u: SandboxUser) -> dict[str, Any]:
        return {
            "sourcedId": u.sourced_id,
            "status": u.status,
            "enabledUser": u.enabled_user,
            "givenName": u.given_name,
            "familyName": u.family_name,
            "email": u.email,
            "role": u.role,
            "orgs": list(u.orgs),
            "username": u.username,
            "identifier": u.identifier,
        }

    return {
        "tenant_id": district.tenant_id,
        "revision": district.revision,
        "orgs": [org(o) for o in district.orgs.values()],
        "users": [user(u) for u in district.users.values()],
    }
