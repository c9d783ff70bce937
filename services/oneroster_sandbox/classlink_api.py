"""ClassLink's account side: SSO and the partner API.

SSO is ``/oauth2/v2/auth``, ``/oauth2/v2/token`` and ``/v2/my/info``; the partner API is
``/applications`` and ``/applications/{id}/server``.
"""

from __future__ import annotations

import hmac
import secrets
import time
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from services.oneroster_sandbox.state import Sandbox, bearer, read_form

SSO_CODE_LIFETIME_SECONDS = 300
SSO_TOKEN_LIFETIME_SECONDS = 86400


class _ClassLinkApi:
    """ClassLink's SSO and partner endpoints of one sandbox."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.settings = sandbox.settings

    async def sso_authorize(self, request: Request) -> Response:
        params = request.query_params
        redirect_uri = params.get("redirect_uri")
        if params.get("client_id") != self.settings.sso_client_id or not redirect_uri:
            return JSONResponse(
                {"error": "invalid_request", "error_description": "unknown client_id or no redirect_uri"},
                status_code=400,
            )
        if params.get("response_type") != "code":
            return JSONResponse({"error": "unsupported_response_type"}, status_code=400)
        login_id = params.get("login_hint") or f"admin@{next(iter(self.sandbox.districts))}"
        separator = "&" if "?" in redirect_uri else "?"
        if login_id == "deny":
            query = urlencode({"error": "access_denied", "state": params.get("state", "")})
            return RedirectResponse(f"{redirect_uri}{separator}{query}", status_code=302)
        if login_id not in self.sandbox.logins():
            return JSONResponse(
                {"error": "invalid_request", "error_description": f"unknown login {login_id}"},
                status_code=400,
            )
        code = secrets.token_urlsafe(16)
        self.sandbox.sso_codes[code] = (login_id, time.time() + SSO_CODE_LIFETIME_SECONDS)
        query = urlencode({"code": code, "state": params.get("state", "")})
        return RedirectResponse(f"{redirect_uri}{separator}{query}", status_code=302)

    async def sso_token(self, request: Request) -> Response:
        form = await read_form(request)
        client_id, client_secret = str(form.get("client_id") or ""), str(form.get("client_secret") or "")
        if client_id != self.settings.sso_client_id or not hmac.compare_digest(
            client_secret, self.settings.sso_client_secret
        ):
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        grant = self.sandbox.sso_codes.pop(str(form.get("code") or ""), None)
        if grant is None or grant[1] < time.time():
            return JSONResponse(
                {"error": "invalid_grant", "error_description": "code unknown, used or expired"},
                status_code=400,
            )
        token = secrets.token_urlsafe(24)
        self.sandbox.sso_tokens[token] = grant[0]
        return JSONResponse(
            {
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": SSO_TOKEN_LIFETIME_SECONDS,
                "id_token": secrets.token_urlsafe(32),
            }
        )

    async def my_info(self, request: Request) -> Response:
        login_id = self.sandbox.sso_tokens.get(bearer(request) or "")
        login = self.sandbox.logins().get(login_id or "")
        if login is None:
            return JSONResponse({"error": "invalid_token"}, status_code=401)
        district = self.sandbox.districts[login.tenant_id]
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

    def partner_authorised(self, request: Request) -> bool:
        token = bearer(request)
        return token is not None and hmac.compare_digest(token, self.settings.partner_token)

    async def applications(self, request: Request) -> Response:
        if not self.partner_authorised(request):
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
            for d in self.sandbox.districts.values()
        ]
        return JSONResponse({"status": 200, "applications": apps})

    async def application_server(self, request: Request) -> Response:
        if not self.partner_authorised(request):
            return JSONResponse({"status": 401, "error": "invalid partner token"}, status_code=401)
        wanted = request.path_params["application_id"]
        district = next((d for d in self.sandbox.districts.values() if d.application_id == wanted), None)
        if district is None:
            return JSONResponse({"status": 404, "error": "unknown application"}, status_code=404)
        return JSONResponse(
            {
                "server": {
                    "client_id": district.client_id,
                    "client_secret": district.client_secret,
                    "endpoint_url": self.sandbox.oneroster_url(district.tenant_id),
                }
            }
        )


def routes(sandbox: Sandbox) -> list[Route]:
    """The routes, served by one _ClassLinkApi."""
    api = _ClassLinkApi(sandbox)
    return [
        Route("/oauth2/v2/auth", api.sso_authorize, methods=["GET"]),
        Route("/oauth2/v2/token", api.sso_token, methods=["POST"]),
        Route("/v2/my/info", api.my_info, methods=["GET"]),
        Route("/applications", api.applications, methods=["GET"]),
        Route("/applications/{application_id}/server", api.application_server, methods=["GET"]),
    ]
