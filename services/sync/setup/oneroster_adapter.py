"""A stored connection as a OneRoster client configuration, and OneRoster failures as domain errors.

The connect use case (``services.sync.setup.connections``) writes connections; mapping, preview
and the run executor only read them, through this adapter: ``server_config`` decrypts the secret in
memory (and registers it with the log redaction), ``oneroster_failure`` turns a failed read into
the error an administrator can act on.

OAuth 2 (OneRoster 1.2) tokens are requested from the token URL the administrator gave, else from
``{scheme}://{host}/oauth/token`` of the server URL (real servers differ: Ed-Fi's redirects, so a
token URL cannot always be derived).
"""

from __future__ import annotations

import dataclasses
from urllib.parse import urlsplit

from pydantic import SecretStr

from services.common.errors import FailedPrecondition, Unavailable
from services.sync.app import App
from services.sync.oneroster import (
    BearerToken,
    Credentials,
    OAuth1Credentials,
    OAuth2ClientCredentials,
    RetryPolicy,
    ServerConfig,
    Timeouts,
    Version,
)
from services.sync.oneroster.errors import (
    AuthenticationError,
    IncompletePullError,
    MalformedResponseError,
    NotFoundError,
    OneRosterError,
    RateLimitedError,
    ServerError,
    UnreachableError,
    WaitTooLongError,
)
from services.sync.store import connections as store
from services.sync.store.models import Connection
from services.sync.vocabulary import AuthMethod, OneRosterVersion

SYNC_RETRY = RetryPolicy()

VERSIONS = {OneRosterVersion.V1P1: Version.V1P1, OneRosterVersion.V1P2: Version.V1P2}


def token_url(server_url: str, given: str | None = None) -> str:
    """The OAuth 2 token endpoint of a OneRoster 1.2 server (see the module notes)."""
    if given:
        return given
    parts = urlsplit(server_url)
    return f"{parts.scheme}://{parts.netloc}/oauth/token"


def server_config(app: App, connection: Connection, *, retry: RetryPolicy | None = None) -> ServerConfig:
    """The OneRoster client configuration of a stored connection (the secret decrypted in memory only).

    ``retry`` defaults to :data:`SYNC_RETRY` with the settings' ``oneroster_retry_delay``.

    The secret is registered with the process's log redaction, so no log line can carry it; this
    is how a process that started after the connect learns the stored secrets it uses.
    """
    secret = app.secrets.decrypt(connection.secret_ciphertext)
    app.redactor.register(secret.get_secret_value(), owner=redaction_owner(app, connection.district_id))
    credentials = client_credentials(
        connection.auth_method, connection.client_id, secret, connection.server_url, connection.token_url
    )
    return ServerConfig(
        connection.server_url,
        credentials,
        version=VERSIONS[connection.oneroster_version],
        page_size=app.settings.oneroster_page_size,
        concurrency=app.settings.oneroster_concurrency,
        timeouts=Timeouts(read=app.settings.oneroster_read_timeout),
        retry=retry or sync_retry(app),
    )


def sync_retry(app: App) -> RetryPolicy:
    """:data:`SYNC_RETRY` waiting ``oneroster_retry_delay`` first (jitter of the same size)."""
    delay = app.settings.oneroster_retry_delay
    return dataclasses.replace(SYNC_RETRY, initial_delay=delay, jitter=delay)


def redaction_owner(app: App, district_id: str) -> str:
    """Whose secret a log redaction entry is: this sync database's connection of ``district_id``."""
    return f"{app.settings.database_url}#{district_id}"


def client_credentials(
    method: AuthMethod, client_id: str, secret: SecretStr, server_url: str, given_token_url: str | None
) -> Credentials:
    """The OneRoster credentials of a connection's auth method (OAuth 1.0a unless BEARER or OAUTH2)."""
    if method is AuthMethod.BEARER:
        return BearerToken(secret)
    if method is AuthMethod.OAUTH2:
        return OAuth2ClientCredentials(client_id, secret, token_url(server_url, given_token_url))
    return OAuth1Credentials(client_id, secret)


def oneroster_failure(error: OneRosterError, server_url: str) -> FailedPrecondition | Unavailable:
    """The domain error an administrator can act on, for a failed OneRoster read (no secret in it)."""
    if isinstance(error, AuthenticationError):
        return FailedPrecondition(
            f"ClassLink rejected the client id or secret for the OneRoster server at {server_url}. "
            "Check them in ClassLink and connect again.",
            reason="CLASSLINK_CREDENTIALS_REJECTED",
        )
    if isinstance(error, UnreachableError):
        return Unavailable(
            f"Could not reach the OneRoster server at {server_url}. Check the server URL, then try again.",
            reason="ONEROSTER_UNREACHABLE",
        )
    if isinstance(error, WaitTooLongError):
        return Unavailable(f"{error} Try again later.", reason="ONEROSTER_WAIT_TOO_LONG")
    if isinstance(error, RateLimitedError):
        return Unavailable(
            f"The OneRoster server at {server_url} is limiting requests; try again in a few minutes.",
            reason="ONEROSTER_RATE_LIMITED",
        )
    if isinstance(error, IncompletePullError):
        return Unavailable(
            f"The roster at {server_url} changed while it was being read; try again. ({error})",
            reason="ONEROSTER_INCONSISTENT",
        )
    if isinstance(error, NotFoundError):
        return FailedPrecondition(
            f"There is no OneRoster API at {server_url}. Check the server URL and the OneRoster version.",
            reason="ONEROSTER_NOT_FOUND",
        )
    if isinstance(error, ServerError | MalformedResponseError):
        return FailedPrecondition(
            f"The OneRoster server at {server_url} did not answer as a OneRoster server should: {error}",
            reason="ONEROSTER_BAD_RESPONSE",
        )
    return FailedPrecondition(
        f"Reading from the OneRoster server at {server_url} failed: {error}", reason="ONEROSTER_FAILED"
    )


async def require_connection(app: App, district_id: str) -> Connection:
    """The district's connection, or FAILED_PRECONDITION telling the administrator to connect first."""
    connection = await app.transaction(lambda session: store.get_connection(session, district_id))
    if connection is None:
        raise FailedPrecondition(
            f"District {district_id} is not connected to ClassLink. Connect ClassLink first.",
            reason="NOT_CONNECTED",
        )
    return connection
