"""The sandbox's HTTP surface: OneRoster per tenant, OAuth2 tokens, ClassLink SSO and partner API,
and the admin endpoints tests use to inject faults and change the district between syncs."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from services.oneroster_sandbox.faults import BAD_ROW, Fault, FaultPlan
from services.oneroster_sandbox.filters import FilterError
from services.oneroster_sandbox.model import District, MutationError, SandboxOrg, SandboxUser
from services.oneroster_sandbox.oauth1 import SignatureError, verify
from services.oneroster_sandbox.render import V1P2_ROLES, Renderer

VERSION_PATHS = {"1.1": "ims/oneroster/v1p1", "1.2": "ims/oneroster/rostering/v1p2"}
SSO_CODE_LIFETIME_SECONDS = 300
SSO_TOKEN_LIFETIME_SECONDS = 86400
ADMIN_HEADER = "x-sandbox-admin-token"


@dataclass(frozen=True)
class Settings:
    version: str = "1.1"
    auth_modes: frozenset[str] = frozenset({"oauth1", "bearer"})
    page_cap: int | None = None
    omit_total: bool = False
    quirks: bool = False
    disabled_endpoints: frozenset[str] = frozenset()
    admin_token: str | None = None
    partner_token: str = ""
    sso_client_id: str = ""
    sso_client_secret: str = ""
    token_lifetime: int = 3600


@dataclass(frozen=True)
class Login:
    login_id: str
    tenant_id: str
    role: str
    first_name: str
    last_name: str
    email: str
    sourced_id: str


@dataclass
class Sandbox:
    settings: Settings
    districts: dict[str, District]
    public_url: str = ""
    faults: FaultPlan = field(default_factory=FaultPlan)
    renderers: dict[str, Renderer] = field(default_factory=dict)
    oauth2_tokens: dict[str, tuple[str, float]] = field(default_factory=dict)
    sso_codes: dict[str, tuple[str, float]] = field(default_factory=dict)
    sso_tokens: dict[str, str] = field(default_factory=dict)

    def start(self, public_url: str) -> None:
        self.public_url = public_url.rstrip("/")
        for tenant_id, district in self.districts.items():
            href_root = self.oneroster_url(tenant_id)
            if self.settings.quirks:
                href_root = (
                    f"https://district{tenant_id}-vn-v2.oneroster.com/{VERSION_PATHS[self.settings.version]}"
                )
            renderer = Renderer(district, self.settings.version, self.settings.quirks, href_root)
            renderer.warm()
            self.renderers[tenant_id] = renderer

    def server_url(self, tenant_id: str) -> str:
        return f"{self.public_url}/districts/{tenant_id}"

    def oneroster_url(self, tenant_id: str) -> str:
        return f"{self.server_url(tenant_id)}/{VERSION_PATHS[self.settings.version]}"

    def logins(self) -> dict[str, Login]:
        logins: dict[str, Login] = {}
        for tenant_id, district in self.districts.items():
            logins[f"admin@{tenant_id}"] = Login(
                f"admin@{tenant_id}",
                tenant_id,
                "Tenant Administrator",
                "Dana",
                "Admin",
                f"admin@{tenant_id}.example.org",
                "",
            )
            teacher = next((u for u in district.users.values() if u.role == "teacher"), None)
            if teacher is not None:
                logins[f"teacher@{tenant_id}"] = Login(
                    f"teacher@{tenant_id}",
                    tenant_id,
                    "Teacher",
                    teacher.given_name,
                    teacher.family_name,
                    teacher.email or "",
                    teacher.sourced_id,
                )
        return logins


def imsx(status: int, minor: str, description: str, *, quirks: bool) -> JSONResponse:
    info = {
        "imsx_codeMajor": "failure",
        "imsx_severity": "error",
        "imsx_messageRefIdentifier": secrets.token_hex(4),
        "imsx_description": description,
        "imsx_CodeMinor": {
            "imsx_codeMinorField": [
                {"imsx_codeMinorFieldName": "TargetEndSystem", "imsx_codeMinorFieldValue": minor}
            ]
        },
    }
    return JSONResponse({"statusInfoSet": [info]} if quirks else info, status_code=status)


class _Denied(Exception):
    pass


async def _form(request: Request) -> dict[str, str]:
    """An application/x-www-form-urlencoded body (parsed here: starlette's parser needs python-multipart)."""
    return dict(parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True))


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else None


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


def create_app(sandbox: Sandbox) -> Starlette:
    settings = sandbox.settings

    def error(status: int, minor: str, description: str) -> JSONResponse:
        return imsx(status, minor, description, quirks=settings.quirks)

    def authenticate(request: Request, district: District) -> None:
        header = request.headers.get("authorization", "")
        if header.lower().startswith("oauth ") and "oauth1" in settings.auth_modes:
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
        token = _bearer(request)
        if token is not None:
            if "bearer" in settings.auth_modes and hmac.compare_digest(token, district.bearer_token):
                return
            granted = sandbox.oauth2_tokens.get(token)
            if "oauth2" in settings.auth_modes and granted and granted[0] == district.tenant_id:
                if granted[1] > time.time():
                    return
                raise _Denied("access token expired")
            raise _Denied("unknown bearer token")
        raise _Denied(f"missing credentials; this server accepts {', '.join(sorted(settings.auth_modes))}")

    async def oneroster(request: Request) -> Response:
        tenant_id = request.path_params["tenant"]
        district = sandbox.districts.get(tenant_id)
        prefix = f"/districts/{tenant_id}/{VERSION_PATHS[settings.version]}/"
        if district is None or not request.url.path.startswith(prefix):
            return error(404, "unknownobject", "No OneRoster service at this path.")
        try:
            authenticate(request, district)
        except _Denied as exc:
            return error(401, "unauthorisedrequest", str(exc))
        parts = request.url.path[len(prefix) :].strip("/").split("/")
        if parts[0] in settings.disabled_endpoints:
            return error(404, "unsupportedoperation", f"/{parts[0]} is not offered by this server.")
        fault = sandbox.faults.take(request.url.path)
        if fault is not None:
            if fault.kind == "status":
                response = error(
                    fault.status,
                    "server_busy" if fault.status == 429 else "internal_server_error",
                    f"Injected fault: HTTP {fault.status}.",
                )
                if fault.retry_after is not None:
                    response.headers["Retry-After"] = fault.retry_after
                return response
            if fault.kind == "slow":
                await asyncio.sleep(fault.delay)
            if fault.kind == "total_change":
                add_surprise_teacher(district)
        try:
            return serve(request, district, parts, fault)
        except FilterError as exc:
            return error(400, "invalid_filter_field", str(exc))
        except ValueError as exc:
            return error(400, "invaliddata", str(exc))

    def serve(request: Request, district: District, parts: list[str], fault: Fault | None) -> Response:
        renderer = sandbox.renderers[district.tenant_id]
        user_key = (
            "teachers"
            if parts[0] == "teachers" and settings.quirks and settings.version == "1.1"
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
            return error(404, "unknownobject", "Unknown OneRoster endpoint.")
        key = keys[parts[0]]
        fields = _ORG_FIELDS if key == "orgs" else _user_fields(settings.version)
        if len(parts) == 2:
            record = next((r for r in _members(district, parts[0]) if r.sourced_id == parts[1]), None)
            if record is None:
                return error(404, "unknownobject", f"No {parts[0][:-1]} with sourcedId {parts[1]}.")
            single = "org" if isinstance(record, SandboxOrg) else "user"
            return Response(
                b'{"' + single.encode() + b'":' + renderer.encoded(record) + b"}",
                media_type="application/json",
            )
        collection = parts[0]
        if len(parts) == 3:
            if parts[0] != "schools" or parts[2] != "teachers" or parts[1] not in district.orgs:
                return error(404, "unknownobject", "Unknown OneRoster endpoint.")
            key, fields, collection = "users", _user_fields(settings.version), "/".join(parts)
        limit = _int_param(request, "limit", 100, 1)
        offset = _int_param(request, "offset", 0, 0)
        filter_expression = request.query_params.get("filter", "")
        records = renderer.listing(
            collection, partial(_members, district, collection), filter_expression, fields
        )
        step = min(limit, settings.page_cap) if settings.page_cap else limit
        start = max(0, offset - 1) if fault is not None and fault.kind == "overlap" else offset
        page = records[start : start + step]
        if fault is not None and fault.kind == "short_page":
            page = page[: max(0, len(page) - fault.drop)]
        rows = [renderer.encoded(r) for r in page]
        if fault is not None and fault.kind == "bad_row" and rows:
            rows[0] = json.dumps(BAD_ROW if fault.row is None else fault.row).encode()
        body = b'{"' + key.encode() + b'":[' + b",".join(rows) + b"]}"
        if fault is not None and fault.kind == "truncate":
            body = body[: len(body) // 2]
        total = len(records)
        headers = {"X-Count": str(len(page)), "Link": links(request, offset, step, total)}
        if not settings.omit_total:
            headers["X-Total-Count"] = str(total)
        return Response(body, media_type="application/json", headers=headers)

    def links(request: Request, offset: int, step: int, total: int) -> str:
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

    def add_surprise_teacher(district: District) -> None:
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

    async def oauth2_token(request: Request) -> Response:
        header = request.headers.get("authorization", "")
        form = await _form(request)
        if form.get("grant_type") != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        if not header.lower().startswith("basic "):
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        try:
            client_id, _, client_secret = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        client_id, client_secret = unquote(client_id), unquote(client_secret)
        district = next((d for d in sandbox.districts.values() if d.client_id == client_id), None)
        if district is None or not hmac.compare_digest(client_secret, district.client_secret):
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        token = secrets.token_urlsafe(24)
        sandbox.oauth2_tokens[token] = (district.tenant_id, time.time() + settings.token_lifetime)
        return JSONResponse(
            {
                "access_token": token,
                "token_type": "bearer",
                "expires_in": settings.token_lifetime,
                "scope": str(form.get("scope") or ""),
            }
        )

    async def sso_authorize(request: Request) -> Response:
        params = request.query_params
        redirect_uri = params.get("redirect_uri")
        if params.get("client_id") != settings.sso_client_id or not redirect_uri:
            return JSONResponse(
                {"error": "invalid_request", "error_description": "unknown client_id or no redirect_uri"},
                status_code=400,
            )
        if params.get("response_type") != "code":
            return JSONResponse({"error": "unsupported_response_type"}, status_code=400)
        login_id = params.get("login_hint") or f"admin@{next(iter(sandbox.districts))}"
        separator = "&" if "?" in redirect_uri else "?"
        if login_id == "deny":
            query = urlencode({"error": "access_denied", "state": params.get("state", "")})
            return RedirectResponse(f"{redirect_uri}{separator}{query}", status_code=302)
        if login_id not in sandbox.logins():
            return JSONResponse(
                {"error": "invalid_request", "error_description": f"unknown login {login_id}"},
                status_code=400,
            )
        code = secrets.token_urlsafe(16)
        sandbox.sso_codes[code] = (login_id, time.time() + SSO_CODE_LIFETIME_SECONDS)
        query = urlencode({"code": code, "state": params.get("state", "")})
        return RedirectResponse(f"{redirect_uri}{separator}{query}", status_code=302)

    async def sso_token(request: Request) -> Response:
        form = await _form(request)
        client_id, client_secret = str(form.get("client_id") or ""), str(form.get("client_secret") or "")
        if client_id != settings.sso_client_id or not hmac.compare_digest(
            client_secret, settings.sso_client_secret
        ):
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        grant = sandbox.sso_codes.pop(str(form.get("code") or ""), None)
        if grant is None or grant[1] < time.time():
            return JSONResponse(
                {"error": "invalid_grant", "error_description": "code unknown, used or expired"},
                status_code=400,
            )
        token = secrets.token_urlsafe(24)
        sandbox.sso_tokens[token] = grant[0]
        return JSONResponse(
            {
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": SSO_TOKEN_LIFETIME_SECONDS,
                "id_token": secrets.token_urlsafe(32),
            }
        )

    async def my_info(request: Request) -> Response:
        login_id = sandbox.sso_tokens.get(_bearer(request) or "")
        login = sandbox.logins().get(login_id or "")
        if login is None:
            return JSONResponse({"error": "invalid_token"}, status_code=401)
        district = sandbox.districts[login.tenant_id]
        return JSONResponse(
            {
                "UserId": int(login.tenant_id) * 100 + (1 if login.role == "Tenant Administrator" else 2),
                "TenantId": int(login.tenant_id),
                "StateId": 0,
                "BuildingId": 0,
                "DisplayName": f"{login.first_name} {login.last_name}",
                "FirstName": login.first_name,
                "LastName": login.last_name,
                "Email": login.email,
                "LoginId": login.login_id,
                "Tenant": district.name,
                "Building": "",
                "Role": login.role,
                "Role_Level": 5 if login.role == "Tenant Administrator" else 2,
                "SourcedId": login.sourced_id,
            }
        )

    def partner_authorised(request: Request) -> bool:
        token = _bearer(request)
        return token is not None and hmac.compare_digest(token, settings.partner_token)

    async def applications(request: Request) -> Response:
        if not partner_authorised(request):
            return JSONResponse({"status": 401, "error": "invalid partner token"}, status_code=401)
        apps = [
            {
                "id": int(d.application_id) + 1000,
                "tenant_name": d.name,
                "tenant_id": int(d.tenant_id),
                "application_id": int(d.application_id),
                "bearer": d.bearer_token,
                "name": "EW Roster Sync",
                "oneroster_application_id": d.application_id,
            }
            for d in sandbox.districts.values()
        ]
        return JSONResponse({"status": 200, "applications": apps})

    async def application_server(request: Request) -> Response:
        if not partner_authorised(request):
            return JSONResponse({"status": 401, "error": "invalid partner token"}, status_code=401)
        wanted = request.path_params["application_id"]
        district = next((d for d in sandbox.districts.values() if d.application_id == wanted), None)
        if district is None:
            return JSONResponse({"status": 404, "error": "unknown application"}, status_code=404)
        return JSONResponse(
            {
                "server": {
                    "client_id": district.client_id,
                    "client_secret": district.client_secret,
                    "endpoint_url": sandbox.oneroster_url(district.tenant_id),
                }
            }
        )

    def admin_denied(request: Request) -> Response | None:
        token = request.headers.get(ADMIN_HEADER, "")
        if settings.admin_token is None or not hmac.compare_digest(token, settings.admin_token):
            return JSONResponse({"error": f"admin endpoints need the {ADMIN_HEADER} header"}, status_code=401)
        return None

    async def admin_faults(request: Request) -> Response:
        if (denied := admin_denied(request)) is not None:
            return denied
        if request.method == "POST":
            try:
                payload = json.loads(await request.body())
                sandbox.faults.replace(payload["faults"])
            except (ValueError, KeyError, TypeError) as exc:
                return JSONResponse({"error": f"bad faults payload: {exc}"}, status_code=400)
        elif request.method == "DELETE":
            sandbox.faults.replace([])
        return JSONResponse({"faults": [f.to_json() for f in sandbox.faults.faults]})

    def district_for(request: Request, payload: dict[str, Any] | None = None) -> District | None:
        tenant_id = (payload or {}).get("tenant_id") or request.query_params.get("tenant_id")
        return sandbox.districts.get(str(tenant_id)) if tenant_id else next(iter(sandbox.districts.values()))

    async def admin_roster(request: Request) -> Response:
        if (denied := admin_denied(request)) is not None:
            return denied
        if request.method == "POST":
            try:
                payload = json.loads(await request.body())
                ops = payload["ops"]
                if not isinstance(ops, list):
                    raise TypeError("'ops' must be a list")
            except (ValueError, KeyError, TypeError) as exc:
                return JSONResponse({"error": f"bad roster payload: {exc}"}, status_code=400)
            district = district_for(request, payload)
            if district is None:
                return JSONResponse({"error": "unknown tenant_id"}, status_code=404)
            try:
                results = district.apply(ops, dt.datetime.now(dt.UTC))
            except MutationError as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
            return JSONResponse(
                {"tenant_id": district.tenant_id, "revision": district.revision, "results": results}
            )
        district = district_for(request)
        if district is None:
            return JSONResponse({"error": "unknown tenant_id"}, status_code=404)
        return JSONResponse(roster_snapshot(district))

    async def admin_revoke_tokens(request: Request) -> Response:
        if (denied := admin_denied(request)) is not None:
            return denied
        revoked = len(sandbox.oauth2_tokens)
        sandbox.oauth2_tokens.clear()
        return JSONResponse({"revoked": revoked})

    routes = [
        Route("/districts/{tenant}/ims/{rest:path}", oneroster, methods=["GET"]),
        Route("/oauth/token", oauth2_token, methods=["POST"]),
        Route("/oauth2/v2/auth", sso_authorize, methods=["GET"]),
        Route("/oauth2/v2/token", sso_token, methods=["POST"]),
        Route("/v2/my/info", my_info, methods=["GET"]),
        Route("/applications", applications, methods=["GET"]),
        Route("/applications/{application_id}/server", application_server, methods=["GET"]),
    ]
    if settings.admin_token is not None:
        routes += [
            Route("/_sandbox/faults", admin_faults, methods=["GET", "POST", "DELETE"]),
            Route("/_sandbox/roster", admin_roster, methods=["GET", "POST"]),
            Route("/_sandbox/revoke-tokens", admin_revoke_tokens, methods=["POST"]),
        ]
    return Starlette(routes=routes)


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
