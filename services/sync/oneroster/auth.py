"""httpx authentication for the three ways a OneRoster server accepts a vendor.

The ``Authorization`` header is built here and nowhere else; nothing in this module logs it, and
errors raised here name the endpoint and status, never the credentials or signature.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import AsyncGenerator, Generator
from urllib.parse import quote

import httpx
from oauthlib.oauth1 import SIGNATURE_HMAC_SHA256, SIGNATURE_TYPE_AUTH_HEADER
from oauthlib.oauth1 import Client as OAuth1Signer

from services.sync.oneroster.config import (
    BearerToken,
    Credentials,
    OAuth1Credentials,
    OAuth2ClientCredentials,
)
from services.sync.oneroster.errors import AuthenticationError, ServerError, excerpt


def _drop_debug(record: logging.LogRecord) -> bool:
    return record.levelno > logging.DEBUG


# oauthlib's signer logs base strings and finished signatures at DEBUG; a signature is replayable
# until its timestamp expires, so those records never leave the process.
logging.getLogger("oauthlib.oauth1.rfc5849").addFilter(_drop_debug)

# Refresh a cached OAuth2 token this many seconds before the server says it expires.
_EXPIRY_MARGIN_SECONDS = 30.0


class OAuth1Auth(httpx.Auth):
    """Signs every request with OAuth 1.0a HMAC-SHA256 (RFC 5849), query parameters included.

    oauthlib decodes the query of the exact URL httpx will send and re-encodes each parameter once
    for the base string, so ``filter=role='teacher'`` is signed the way the server will read it.
    """

    def __init__(self, credentials: OAuth1Credentials) -> None:
        self._signer = OAuth1Signer(
            credentials.client_id,
            client_secret=credentials.client_secret.get_secret_value(),
            signature_method=SIGNATURE_HMAC_SHA256,
            signature_type=SIGNATURE_TYPE_AUTH_HEADER,
        )

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Adds the OAuth 1.0a ``Authorization`` header to the request."""
        _, headers, _ = self._signer.sign(str(request.url), http_method=request.method)
        request.headers["Authorization"] = headers["Authorization"]
        yield request


class BearerAuth(httpx.Auth):
    """Sends a static :class:`BearerToken` on every request."""

    def __init__(self, credentials: BearerToken) -> None:
        self._header = f"Bearer {credentials.token.get_secret_value()}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Adds the bearer ``Authorization`` header to the request."""
        request.headers["Authorization"] = self._header
        yield request


class OAuth2ClientCredentialsAuth(httpx.Auth):
    """Client-credentials grant with HTTP Basic client auth.

    Caches the token until shortly before expiry, and fetches a new one once when the server answers
    401 to a cached token.
    """

    def __init__(self, credentials: OAuth2ClientCredentials) -> None:
        self._credentials = credentials
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()

    def _basic_header(self) -> str:
        pair = (
            f"{quote(self._credentials.client_id, safe='')}:"
            f"{quote(self._credentials.client_secret.get_secret_value(), safe='')}"
        )
        return "Basic " + base64.b64encode(pair.encode()).decode()

    def _token_request(self) -> httpx.Request:
        return httpx.Request(
            "POST",
            self._credentials.token_url,
            data={"grant_type": "client_credentials", "scope": self._credentials.scope},
            headers={"Authorization": self._basic_header(), "Accept": "application/json"},
        )

    def _store(self, response: httpx.Response) -> str:
        status = response.status_code
        if status in (400, 401, 403):
            raise AuthenticationError(
                f"The OAuth2 token endpoint refused the client credentials (HTTP {status}).",
                status_code=status,
            )
        if response.is_redirect:
            # Ed-Fi's /oauth/token answers 307 to its real issuer; following it would resend the
            # client secret to an address nobody configured.
            location = response.headers.get("location", "")
            target = response.request.url.join(location) if location else "an address it does not give"
            raise ServerError(
                f"The OAuth2 token endpoint {response.request.url} answered HTTP {status}: "
                f"the token endpoint redirects to {target}; use that address as the token URL.",
                status_code=status,
            )
        if status != 200:
            shown = excerpt(response.content, secrets_of(self._credentials))
            raise ServerError(
                f"The OAuth2 token endpoint {response.request.url} answered HTTP {status}"
                + (f": {shown}" if shown else "."),
                status_code=status,
            )
        try:
            body = response.json()
            token = str(body["access_token"])
        except (ValueError, KeyError, TypeError) as exc:
            raise AuthenticationError("The OAuth2 token endpoint returned no access_token.") from exc
        expires_in = body.get("expires_in")
        lifetime = float(expires_in) if isinstance(expires_in, int | float) else 3600.0
        self._token = token
        self._expires_at = time.monotonic() + lifetime - _EXPIRY_MARGIN_SECONDS
        return token

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """Sends the request with the cached token, fetching one first when there is none or it expired."""
        fetched_now = False
        async with self._lock:
            token = self._token if time.monotonic() < self._expires_at else None
            if token is None:
                token_response = yield self._token_request()
                await token_response.aread()
                token = self._store(token_response)
                fetched_now = True
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401 and not fetched_now:
            async with self._lock:
                if self._token == token:
                    token_response = yield self._token_request()
                    await token_response.aread()
                    self._store(token_response)
                token = self._token or ""
            request.headers["Authorization"] = f"Bearer {token}"
            yield request


def secrets_of(credentials: Credentials) -> tuple[str, ...]:
    """What must never be quoted back from a server's answer."""
    if isinstance(credentials, BearerToken):
        return (credentials.token.get_secret_value(),)
    return (credentials.client_secret.get_secret_value(),)


def build_auth(credentials: Credentials) -> httpx.Auth:
    """The httpx authentication for the kind of credentials the server takes."""
    if isinstance(credentials, OAuth1Credentials):
        return OAuth1Auth(credentials)
    if isinstance(credentials, BearerToken):
        return BearerAuth(credentials)
    return OAuth2ClientCredentialsAuth(credentials)
