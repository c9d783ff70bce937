"""OneRoster endpoints per district (``/districts/{tenant}/ims/oneroster/...``) and the token endpoint.

The OAuth2 client-credentials token endpoint sits beside them; every endpoint applies authentication,
paging, filters and injected faults.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hmac
import json
import secrets
import time
from functools import partial
from typing import Any
from urllib.parse import unquote, urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.oneroster_sandbox.faults import BAD_ROW, Fault
from services.oneroster_sandbox.filters import FilterError
from services.oneroster_sandbox.model import District, SandboxOrg
from services.oneroster_sandbox.oauth1 import SignatureError, verify
from services.oneroster_sandbox.render import V1P2_ROLES
from services.oneroster_sandbox.resets import mark_reset
from services.oneroster_sandbox.state import VERSION_PATHS, Sandbox, bearer, imsx, read_form


class _Denied(Exception):
    pass


def _int_param(request: Request, name: str, default: int, minimum: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    value = int(raw)
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}")
    return value


def _user_fields(version: str) -> dict[str, Any]:
    role_field = "roles.role" if version == "1.2" else "role"
    role_getter = (lambda u: V1P2_ROLES.get(u.role, u.role)) if version == "1.2" else (lambda u: u.role)
    return {
        role_field: role_getter,
        "status": lambda u: u.status,
        "dateLastModified": lambda u: u.date_last_modified,
        "sourcedId": lambda u: u.sourced_id,
        "email": lambda u: u.email,
        "givenName": lambda u: u.given_name,
        "familyName": lambda u: u.family_name,
        "username": lambda u: u.username,
        "identifier": lambda u: u.identifier,
        "enabledUser": lambda u: "true" if u.enabled_user else "false",
        "orgs.sourcedId" if version == "1.1" else "roles.org.sourcedId": lambda u: list(u.orgs),
    }


_ORG_FIELDS: dict[str, Any] = {
    "type": lambda o: o.type,
    "status": lambda o: o.status,
    "dateLastModified": lambda o: o.date_last_modified,
    "sourcedId": lambda o: o.sourced_id,
    "name": lambda o: o.name,
    "identifier": lambda o: o.identifier,
}


def _members(district: District, collection: str) -> list[Any]:
    """The records a collection path lists before any filter (``schools/{id}/teachers`` included)."""
    if collection == "orgs":
        return list(district.orgs.values())
    if collection == "schools":
        return [o for o in district.orgs.values() if o.type == "school"]
    if collection == "users":
        return list(district.users.values())
    if collection.startswith("schools/"):
        school_id = collection.split("/")[1]
        return [u for u in district.users.values() if u.role == "teacher" and school_id in u.orgs]
    role = {"teachers": "teacher", "students": "student"}[collection]
    return [u for u in district.users.values() if u.role == role]


def _page_body(key: str, rows: list[bytes], fault: Fault | None) -> bytes:
    """A listing's JSON body, bent by a fault that corrupts bodies."""
    if fault is not None and fault.kind == "bad_row":
        bad = fault.rows if fault.rows is not None else [BAD_ROW if fault.row is None else fault.row]
        rows[: len(bad)] = [json.dumps(row).encode() for row in bad[: len(rows)]]
    body = b'{"' + key.encode() + b'":[' + b",".join(rows) + b"]}"
    if fault is not None and fault.kind == "truncate":
        body = body[: len(body) // 2]
    if fault is not None and fault.kind == "invalid_utf8":
        body = b'{"' + key.encode() + b'":[{"sourcedId":"\xff\xfe"}]}'
    if fault is not None and fault.kind == "deep_nesting":
        body = b'{"' + key.encode() + b'":' + b"[" * fault.depth + b"]" * fault.depth + b"}"
    return body


class _OneRosterApi:
    """The OneRoster endpoints and OAuth 2 token issuer of one sandbox."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.settings = sandbox.settings

    def error(self, status: int, minor: str, description: str) -> JSONResponse:
        return imsx(status, minor, description, quirks=self.settings.quirks)

    def authenticate(self, request: Request, district: District) -> None:
        header = request.headers.get("authorization", "")
        if header.lower().startswith("oauth ") and "oauth1" in self.settings.auth_modes:
            try:
                verify(
                    request.method,
                    str(request.url.replace(query="")),
                    request.url.query,
                    header,
                    {district.client_id: district.client_secret},
                )
            except SignatureError as exc:
                raise _Denied(f"OAuth 1.0a signature refused: {exc}") from None
            return
        token = bearer(request)
        if token is not None:
            if "bearer" in self.settings.auth_modes and hmac.compare_digest(token, district.bearer_token):
                return
            granted = self.sandbox.oauth2_tokens.get(token)
            if "oauth2" in self.settings.auth_modes and granted and granted[0] == district.tenant_id:
                if granted[1] > time.time():
                    return
                raise _Denied("access token expired")
            raise _Denied("unknown bearer token")
        raise _Denied(
            f"missing credentials; this server accepts {', '.join(sorted(self.settings.auth_modes))}"
        )

    async def oneroster(self, request: Request) -> Response:
        tenant_id = request.path_params["tenant"]
        district = self.sandbox.districts.get(tenant_id)
        prefix = f"/districts/{tenant_id}/{VERSION_PATHS[self.settings.version]}/"
        if district is None or not request.url.path.startswith(prefix):
            return self.error(404, "unknownobject", "No OneRoster service at this path.")
        if (refused := await self.throttle()) is not None:
            return refused
        try:
            self.authenticate(request, district)
        except _Denied as exc:
            return self.error(401, "unauthorisedrequest", str(exc))
        parts = request.url.path[len(prefix) :].strip("/").split("/")
        if parts[0] in self.settings.disabled_endpoints:
            return self.error(404, "unsupportedoperation", f"/{parts[0]} is not offered by this server.")
        fault = self.sandbox.faults.take(request.url.path)
        answered = None if fault is None else await self.before_serving(request, district, fault)
        if answered is not None:
            return answered
        try:
            return self.serve(request, district, parts, fault)
        except FilterError as exc:
            return self.error(400, "invalid_filter_field", str(exc))
        except ValueError as exc:
            return self.error(400, "invaliddata", str(exc))

    async def before_serving(self, request: Request, district: District, fault: Fault) -> Response | None:
        """Apply the part of ``fault`` that acts before the page is built; a response ends the request."""
        if fault.kind == "status":
            response = self.error(
                fault.status,
                "server_busy" if fault.status == 429 else "internal_server_error",
                f"Injected fault: HTTP {fault.status}.",
            )
            if fault.retry_after is not None:
                response.headers["Retry-After"] = fault.retry_after
            return response
        if fault.kind == "reset":
            mark_reset(request)
            return Response(b"")
        if fault.kind == "slow":
            await asyncio.sleep(fault.delay)
        if fault.kind == "total_change":
            self.add_surprise_teacher(district)
        return None

    async def throttle(self) -> Response | None:
        """The slow-server profile: 429 with ``Retry-After`` above the rate limit, else the added delay."""
        if self.sandbox.limiter is not None and (wait := self.sandbox.limiter.admit()) is not None:
            response = self.error(429, "server_busy", "Too many requests: over the rate limit per second.")
            response.headers["Retry-After"] = str(wait)
            return response
        if self.settings.request_delay:
            await asyncio.sleep(self.settings.request_delay)
        return None

    def serve(self, request: Request, district: District, parts: list[str], fault: Fault | None) -> Response:
        renderer = self.sandbox.renderers[district.tenant_id]
        user_key = (
            "teachers"
            if parts[0] == "teachers" and self.settings.quirks and self.settings.version == "1.1"
            else "users"
        )
        keys = {
            "orgs": "orgs",
            "schools": "orgs",
            "users": "users",
            "teachers": user_key,
            "students": "users",
        }
        if parts[0] not in keys or len(parts) > 3:
            return self.error(404, "unknownobject", "Unknown OneRoster endpoint.")
        key = keys[parts[0]]
        fields = _ORG_FIELDS if key == "orgs" else _user_fields(self.settings.version)
        if len(parts) == 2:
            record = next((r for r in _members(district, parts[0]) if r.sourced_id == parts[1]), None)
            if record is None:
                return self.error(404, "unknownobject", f"No {parts[0][:-1]} with sourcedId {parts[1]}.")
            single = "org" if isinstance(record, SandboxOrg) else "user"
            return Response(
                b'{"' + single.encode() + b'":' + renderer.encoded(record) + b"}",
                media_type="application/json",
            )
        collection = parts[0]
        if len(parts) == 3:
            if parts[0] != "schools" or parts[2] != "teachers" or parts[1] not in district.orgs:
                return self.error(404, "unknownobject", "Unknown OneRoster endpoint.")
            key, fields, collection = "users", _user_fields(self.settings.version), "/".join(parts)
        limit = _int_param(request, "limit", 100, 1)
        offset = _int_param(request, "offset", 0, 0)
        filter_expression = request.query_params.get("filter", "")
        records = renderer.listing(
            collection, partial(_members, district, collection), filter_expression, fields
        )
        step = min(limit, self.settings.page_cap) if self.settings.page_cap else limit
        start = max(0, offset - 1) if fault is not None and fault.kind == "overlap" else offset
        page = records[start : start + step]
        if fault is not None and fault.kind == "short_page":
            page = page[: max(0, len(page) - fault.drop)]
        body = _page_body(key, [renderer.encoded(r) for r in page], fault)
        total = len(records)
        headers = {"X-Count": str(len(page))}
        if not self.settings.omit_links:
            headers["Link"] = self.links(request, offset, step, total)
        if not self.settings.omit_total:
            headers["X-Total-Count"] = str(total)
        return Response(body, media_type="application/json", headers=headers)

    def links(self, request: Request, offset: int, step: int, total: int) -> str:
        def at(new_offset: int) -> str:
            params = dict(request.query_params) | {"offset": str(new_offset), "limit": str(step)}
            return str(request.url.replace(query=urlencode(params)))

        last = max(0, (total - 1) // step * step) if total else 0
        rels = [f'<{at(0)}>; rel="first"', f'<{at(last)}>; rel="last"']
        if offset + step < total:
            rels.append(f'<{at(offset + step)}>; rel="next"')
        if offset > 0:
            rels.append(f'<{at(max(0, offset - step))}>; rel="prev"')
        return ", ".join(rels)

    def add_surprise_teacher(self, district: District) -> None:
        school = next((o.sourced_id for o in district.orgs.values() if o.type == "school"), None)
        orgs = [school] if school else list(district.orgs)[:1]
        district.apply(
            [
                {
                    "op": "add_teacher",
                    "givenName": "Late",
                    "familyName": "Arrival",
                    "orgs": orgs,
                    "email": f"late.arrival.{district.revision}@example.org",
                }
            ],
            dt.datetime.now(dt.UTC),
        )

    async def oauth2_token(self, request: Request) -> Response:
        if self.settings.token_redirect:
            return Response(status_code=307, headers={"Location": "/oauth/issuer/token"})
        return await self.issue_token(request)

    async def issue_token(self, request: Request) -> Response:
        header = request.headers.get("authorization", "")
        form = await read_form(request)
        if form.get("grant_type") != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        if not header.lower().startswith("basic "):
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        try:
            client_id, _, client_secret = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        client_id, client_secret = unquote(client_id), unquote(client_secret)
        district = next((d for d in self.sandbox.districts.values() if d.client_id == client_id), None)
        if district is None or not hmac.compare_digest(client_secret, district.client_secret):
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        token = secrets.token_urlsafe(24)
        self.sandbox.oauth2_tokens[token] = (district.tenant_id, time.time() + self.settings.token_lifetime)
        return JSONResponse(
            {
                "access_token": token,
                "token_type": "bearer",
                "expires_in": self.settings.token_lifetime,
                "scope": str(form.get("scope") or ""),
            }
        )


def routes(sandbox: Sandbox) -> list[Route]:
    """The routes, served by one _OneRosterApi."""
    api = _OneRosterApi(sandbox)
    return [
        Route("/districts/{tenant}/ims/{rest:path}", api.oneroster, methods=["GET"]),
        Route("/oauth/token", api.oauth2_token, methods=["POST"]),
        Route("/oauth/issuer/token", api.issue_token, methods=["POST"]),
    ]
