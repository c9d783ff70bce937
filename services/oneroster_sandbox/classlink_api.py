"""ClassLink's account side: SSO (``/oauth2/v2/auth``, ``/oauth2/v2/token``, ``/v2/my/info``) and the
partner API (``/applications``, ``/applications/{id}/server``)."""

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


def routes(sandbox: Sandbox) -> list[Route]:
    settings = sandbox.settings

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
        form = await read_form(request)
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
        login_id = sandbox.sso_tokens.get(bearer(request) or "")
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
        token = bearer(request)
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

    return [
        Route("/oauth2/v2/auth", sso_authorize, methods=["GET"]),
        Route("/oauth2/v2/token", sso_token, methods=["POST"]),
        Route("/v2/my/info", my_info, methods=["GET"]),
        Route("/applications", applications, methods=["GET"]),
        Route("/applications/{application_id}/server", application_server, methods=["GET"]),
    ]
