"""ClassLink's account side: "Sign in with ClassLink" (OAuth2 authorization code) and the partner API.

The partner API lists the districts which added the app and hands out their OneRoster server credentials.

Hosts are configurable (:class:`ClassLinkEndpoints`) so the sandbox can stand in for ClassLink.
Errors carry the endpoint and status only, never a code, token or secret.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
from pydantic import SecretStr

from services.sync.oneroster.errors import (
    AuthenticationError,
    MalformedResponseError,
    OneRosterError,
    UnreachableError,
)


@dataclass(frozen=True)
class ClassLinkEndpoints:
    """Roots of ClassLink's SSO (launchpad), user-info (nodeapi) and OneRoster proxy hosts."""

    launchpad_url: str = "https://launchpad.classlink.com"
    nodeapi_url: str = "https://nodeapi.classlink.com"
    proxy_url: str = "https://oneroster-proxy.classlink.io"


@dataclass(frozen=True)
class SsoToken:
    """The SSO access token from a sign-in code; ``expires_in`` seconds when ClassLink says."""

    access_token: SecretStr
    expires_in: int | None


@dataclass(frozen=True)
class MyInfo:
    """The signed-in ClassLink user (``/v2/my/info``); ``role`` is e.g. "Tenant Administrator"."""

    user_id: str
    tenant_id: str
    tenant_name: str
    role: str
    display_name: str
    email: str | None
    sourced_id: str | None


@dataclass(frozen=True)
class Application:
    """A district that added the app, as the partner API lists it."""

    tenant_id: str
    tenant_name: str
    application_id: str
    oneroster_application_id: str
    bearer: SecretStr


@dataclass(frozen=True)
class ServerCredentials:
    """A district's OneRoster server: ``endpoint_url`` may already include ``/ims/oneroster/v1p1``."""

    endpoint_url: str
    client_id: str
    client_secret: SecretStr


def build_authorization_url(
    endpoints: ClassLinkEndpoints,
    *,
    client_id: str,
    redirect_uri: str,
    state: str,
    scope: str = "profile oneroster",
) -> str:
    """The launchpad URL of "Sign in with ClassLink"; it comes back to ``redirect_uri`` with ``state``."""
    query = urlencode(
        {
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "response_type": "code",
            "scope": scope,
            "state": state,
        }
    )
    return f"{endpoints.launchpad_url.rstrip('/')}/oauth2/v2/auth?{query}"


def _json(response: httpx.Response, what: str) -> dict[str, Any]:
    if response.status_code in (400, 401, 403):
        raise AuthenticationError(
            f"ClassLink refused the {what} request (HTTP {response.status_code}).",
            status_code=response.status_code,
        )
    if response.status_code != 200:
        raise UnreachableError(f"ClassLink answered the {what} request with HTTP {response.status_code}.")
    try:
        body = response.json()
    except ValueError:
        raise MalformedResponseError(f"ClassLink's {what} response is not JSON.") from None
    if not isinstance(body, dict):
        raise MalformedResponseError(f"ClassLink's {what} response is not a JSON object.")
    return body


async def _send(http: httpx.AsyncClient, request: httpx.Request, what: str) -> dict[str, Any]:
    try:
        response = await http.send(request)
    except httpx.TransportError as exc:
        raise UnreachableError(f"Could not reach ClassLink for {what} ({type(exc).__name__}).") from None
    return _json(response, what)


def _text(value: object) -> str | None:
    if value is None:
        return None
    result = str(value).strip()
    return result or None


async def exchange_code(
    http: httpx.AsyncClient,
    endpoints: ClassLinkEndpoints,
    *,
    client_id: str,
    client_secret: SecretStr,
    code: str,
) -> SsoToken:
    """The SSO token ClassLink issues for a sign-in ``code``."""
    request = http.build_request(
        "POST",
        f"{endpoints.launchpad_url.rstrip('/')}/oauth2/v2/token",
        data={"client_id": client_id, "client_secret": client_secret.get_secret_value(), "code": code},
    )
    body = await _send(http, request, "token")
    token = _text(body.get("access_token"))
    if token is None:
        raise MalformedResponseError("ClassLink's token response has no access_token.")
    expires_in = body.get("expires_in")
    return SsoToken(SecretStr(token), expires_in if isinstance(expires_in, int) else None)


async def get_my_info(http: httpx.AsyncClient, endpoints: ClassLinkEndpoints, token: SsoToken) -> MyInfo:
    """The signed-in user and their district (``TenantId``) from ``/v2/my/info``."""
    request = http.build_request(
        "GET",
        f"{endpoints.nodeapi_url.rstrip('/')}/v2/my/info",
        headers={"Authorization": f"Bearer {token.access_token.get_secret_value()}"},
    )
    body = await _send(http, request, "user info")
    lowered = {k.lower(): v for k, v in body.items()}
    tenant_id = _text(lowered.get("tenantid"))
    if tenant_id is None:
        raise MalformedResponseError("ClassLink's user info has no TenantId.")
    return MyInfo(
        user_id=_text(lowered.get("userid")) or "",
        tenant_id=tenant_id,
        tenant_name=_text(lowered.get("tenant")) or "",
        role=_text(lowered.get("role")) or "",
        display_name=_text(lowered.get("displayname")) or "",
        email=_text(lowered.get("email")),
        sourced_id=_text(lowered.get("sourcedid")),
    )


def _partner_request(
    http: httpx.AsyncClient, endpoints: ClassLinkEndpoints, path: str, token: SecretStr
) -> httpx.Request:
    return http.build_request(
        "GET",
        f"{endpoints.proxy_url.rstrip('/')}{path}",
        headers={"Authorization": f"Bearer {token.get_secret_value()}"},
    )


async def list_applications(
    http: httpx.AsyncClient, endpoints: ClassLinkEndpoints, partner_token: SecretStr
) -> list[Application]:
    """The districts that added the app, with their partner bearer; entries missing an id are skipped."""
    body = await _send(
        http, _partner_request(http, endpoints, "/applications", partner_token), "applications"
    )
    raw = body.get("applications")
    entries = [raw] if isinstance(raw, dict) else raw
    if not isinstance(entries, list):
        raise MalformedResponseError("ClassLink's applications response has no applications list.")
    applications = []
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        tenant_id = _text(entry.get("tenant_id"))
        app_id = _text(entry.get("oneroster_application_id"))
        if tenant_id is None or app_id is None:
            continue
        applications.append(
            Application(
                tenant_id=tenant_id,
                tenant_name=_text(entry.get("tenant_name")) or "",
                application_id=_text(entry.get("application_id")) or "",
                oneroster_application_id=app_id,
                bearer=SecretStr(_text(entry.get("bearer")) or ""),
            )
        )
    return applications


async def get_application_server(
    http: httpx.AsyncClient,
    endpoints: ClassLinkEndpoints,
    partner_token: SecretStr,
    oneroster_application_id: str,
) -> ServerCredentials:
    """The OneRoster server URL and credentials ClassLink holds for one district's application."""
    path = f"/applications/{oneroster_application_id}/server"
    try:
        body = await _send(http, _partner_request(http, endpoints, path, partner_token), "server")
    except UnreachableError as exc:
        raise OneRosterError(
            f"ClassLink has no OneRoster server for application {oneroster_application_id}: {exc}"
        ) from None
    server = body.get("server")
    if not isinstance(server, dict):
        raise MalformedResponseError("ClassLink's server response has no server object.")
    endpoint_url, client_id = _text(server.get("endpoint_url")), _text(server.get("client_id"))
    secret = _text(server.get("client_secret"))
    if endpoint_url is None or client_id is None or secret is None:
        raise MalformedResponseError(
            "ClassLink's server response lacks endpoint_url, client_id or client_secret."
        )
    return ServerCredentials(endpoint_url, client_id, SecretStr(secret))
