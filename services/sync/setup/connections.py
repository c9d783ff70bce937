"""Connect ClassLink: by single sign-on or by typed credentials; read and remove the connection.

Either way the service proves the connection by reading one page of schools before it stores
anything; on any failure nothing is stored (a sign-in state is spent, though: it is single use, as
ClassLink's code is). Reconnecting replaces the district's connection; mappings, links and history
are kept. Secrets are encrypted before they reach the database and never appear in an error.

Decisions:
- A wrong, reused, expired or unknown sign-in state, and a state issued for another district, are
  FAILED_PRECONDITION ("start Connect ClassLink again"): the request is well formed, the sign-in it
  refers to is not usable. Another district's state reads as unknown, revealing nothing.
- Rejected credentials are FAILED_PRECONDITION too (ClassLink's answer, not the request's shape,
  makes them wrong); an unreachable server is UNAVAILABLE.
- Only a ClassLink "Tenant Administrator" (or "District Administrator") may connect by sign-in;
  anyone else gets PERMISSION_DENIED.
- The partner API's server credentials are stored as OAuth 1.0a (ClassLink's Roster Server); an
  endpoint speaking OneRoster 1.2 is stored as OAuth 2 client credentials.
- A token URL the administrator gives (OAuth 2) is validated like the server URL; how a stored
  connection becomes a OneRoster client is ``services.sync.setup.oneroster_adapter``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import unicodedata
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
from pydantic import SecretStr
from sqlalchemy.orm import Session

from services.common.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unavailable,
    bad_field,
)
from services.common.secrets import mask_hint
from services.sync.app import App
from services.sync.autosync import usecases as autosync
from services.sync.oneroster import (
    RetryPolicy,
    ServerConfig,
    Timeouts,
    Version,
)
from services.sync.oneroster.classlink_account import (
    Application,
    ClassLinkEndpoints,
    MyInfo,
    build_authorization_url,
    exchange_code,
    get_application_server,
    get_my_info,
    list_applications,
)
from services.sync.oneroster.config import strip_base_path
from services.sync.oneroster.errors import (
    AuthenticationError,
    OneRosterError,
)
from services.sync.settings import InsecureUrl
from services.sync.setup.oneroster_adapter import (
    VERSIONS,
    client_credentials,
    oneroster_failure,
    redaction_owner,
)
from services.sync.store import connections as store
from services.sync.store import sign_in
from services.sync.store.models import Connection
from services.sync.vocabulary import AuthMethod, ConnectMethod, OneRosterVersion

ADMIN_ROLES = frozenset({"tenant administrator", "district administrator"})
MAX_SECRET_LENGTH = 4096
# Shorter than any ClassLink secret; a stored secret is redacted from every log line, so a short
# one would blank out ordinary words.
MIN_SECRET_LENGTH = 8
MAX_ID_LENGTH = 512
MAX_URL_LENGTH = 2048
MAX_CODE_LENGTH = 2048
STATE_BYTES = 32
# How long a used or expired sign-in state is kept, so a late retry still hears "expired" or "used".
STATE_RETENTION = dt.timedelta(days=1)
# Proving a connection is interactive: fail within seconds, not after the sync's long retry budget.
PROBE_RETRY = RetryPolicy(
    attempts_per_request=2, initial_delay=0.2, max_delay=1.0, jitter=0.1, budget_seconds=5
)
PROBE_TIMEOUTS = Timeouts(connect=5.0, read=30.0, pool=10.0)
CLASSLINK_TIMEOUT = httpx.Timeout(15.0)
COPY_URL_ADVICE = "copy the server URL again from ClassLink, without spaces or line breaks"
# ASCII characters RFC 3986 allows nowhere in a URL (besides spaces and control characters).
_NOT_IN_URLS = frozenset('<>"{}|\\^`')


@dataclass(frozen=True)
class SignInStart:
    """Where to send the administrator, and the state that comes back."""

    authorization_url: str
    state: str
    expire_time: dt.datetime


@dataclass(frozen=True)
class ManualInput:
    """Credentials typed in by an administrator (validated by ``connect_manually``)."""

    server_url: str
    auth_method: AuthMethod | None
    client_id: str
    client_secret: SecretStr
    oneroster_version: OneRosterVersion
    token_url: str = ""


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be used as a URL (a character no URL may hold, a broken host or port), or None.

    Characters outside RFC 3986 (spaces, control characters, ``<>"{}|^``, backslash and backquote) are
    refused rather than percent-encoded: in a server URL they are a copy-and-paste accident.
    Non-ASCII letters stay allowed, for internationalised host names.
    """
    for position, character in enumerate(url, start=1):
        if character in _NOT_IN_URLS or unicodedata.category(character)[0] in "CZ":
            return f"contains {_describe(character)} at position {position}, which a URL cannot contain"
    try:
        urlsplit(url).port  # noqa: B018 - parsing the port is the check
        httpx.URL(url)
    except (ValueError, httpx.InvalidURL) as error:
        return f"is not a valid URL ({error})"
    return None


def _describe(character: str) -> str:
    if character == " ":
        return "a space"
    if unicodedata.category(character)[0] in "CZ":
        name = unicodedata.name(character, "")
        return f"an invisible character (U+{ord(character):04X}{f' {name}' if name else ''})"
    return f"the character {character!r}"


def state_hash(state: str) -> str:
    """What is stored of a sign-in state: its SHA-256, so a database reader cannot complete a sign-in."""
    return hashlib.sha256(state.encode()).hexdigest()


class Connections:
    """The connection use cases of one sync service."""

    def __init__(self, app: App) -> None:
        self._app = app
        settings = app.settings
        self._endpoints = ClassLinkEndpoints(
            launchpad_url=settings.classlink_signin_url,
            nodeapi_url=settings.classlink_myinfo_url,
            proxy_url=settings.classlink_partner_url,
        )

    async def get(self, district_id: str) -> Connection:
        """The district's connection; NOT_FOUND before the first connect."""
        connection = await self._app.transaction(lambda session: store.get_connection(session, district_id))
        if connection is None:
            raise _not_connected(district_id)
        return connection

    async def disconnect(self, district_id: str, requested_by: str) -> None:
        """Remove the connection and its secret, and turn AutoSync off; mappings, links and history stay."""

        def delete(session: Session) -> bool:
            if not store.delete_connection(session, district_id):
                return False
            autosync.turn_off(session, district_id, by=requested_by, now=self._app.clock())
            return True

        deleted = await self._app.transaction(delete)
        if not deleted:
            raise _not_connected(district_id)
        self._app.redactor.release(redaction_owner(self._app, district_id))

    async def start_sign_in(self, district_id: str, redirect_uri: str, requested_by: str) -> SignInStart:
        """A ClassLink sign-in URL whose state is bound to the district and expires soon."""
        settings = self._app.settings
        if not redirect_uri:
            raise bad_field("redirect_uri", "required: where ClassLink sends the administrator back")
        malformed = url_problem(redirect_uri)
        if malformed is not None:
            raise bad_field("redirect_uri", f"{malformed}; send the redirect URI exactly as configured")
        if not settings.sso_configured:
            raise FailedPrecondition(
                "Sign in with ClassLink is not set up on this server; connect with the OneRoster "
                "credentials instead (operators: set EW_SYNC_CLASSLINK_CLIENT_ID, _CLIENT_SECRET, "
                "_PARTNER_TOKEN and _REDIRECT_URIS).",
                reason="SSO_NOT_CONFIGURED",
            )
        if redirect_uri not in settings.classlink_redirect_uris:
            raise bad_field("redirect_uri", "not one of the redirect URIs this server is configured with")
        state = secrets.token_urlsafe(STATE_BYTES)
        now = self._app.clock()
        expire_time = now + settings.sign_in_state_ttl

        def remember(session: Session) -> None:
            sign_in.purge_states(session, now - STATE_RETENTION)
            sign_in.add_state(
                session,
                state_hash=state_hash(state),
                district_id=district_id,
                redirect_uri=redirect_uri,
                requested_by=requested_by,
                now=now,
                expire_time=expire_time,
            )

        await self._app.transaction(remember)
        url = build_authorization_url(
            self._endpoints,
            client_id=settings.classlink_client_id,
            redirect_uri=redirect_uri,
            state=state,
            scope=settings.classlink_scope,
        )
        return SignInStart(url, state, expire_time)

    async def connect_with_sign_in(self, district_id: str, code: str, state: str) -> Connection:
        """Finish a sign-in: spend the state, learn the tenant, fetch its server, prove it, store it."""
        violations = []
        if not code or len(code) > MAX_CODE_LENGTH:
            violations.append(FieldViolation("sign_in.code", "required: the code ClassLink returned"))
        if not state or len(state) > MAX_CODE_LENGTH:
            violations.append(FieldViolation("sign_in.state", "required: the state ClassLink returned"))
        if violations:
            raise InvalidArgument.for_fields(violations)
        await self._spend_state(district_id, state)
        settings = self._app.settings
        async with httpx.AsyncClient(timeout=CLASSLINK_TIMEOUT) as http:
            try:
                token = await exchange_code(
                    http,
                    self._endpoints,
                    client_id=settings.classlink_client_id,
                    client_secret=settings.classlink_client_secret,
                    code=code,
                )
                info = await get_my_info(http, self._endpoints, token)
            except AuthenticationError:
                raise FailedPrecondition(
                    "ClassLink did not accept the sign-in (the code expires after a few minutes and works "
                    "once). Start Connect ClassLink again.",
                    reason="SIGN_IN_CODE_REJECTED",
                ) from None
            except OneRosterError as error:
                raise _classlink_unavailable(error) from None
            _require_tenant_admin(info)
            application = await self._application(http, info)
            try:
                server = await get_application_server(
                    http,
                    self._endpoints,
                    settings.classlink_partner_token,
                    application.oneroster_application_id,
                )
            except OneRosterError as error:
                raise _classlink_unavailable(error) from None
        version = (
            OneRosterVersion.V1P2
            if server.endpoint_url.rstrip("/").endswith(Version.V1P2.base_path)
            else OneRosterVersion.V1P1
        )
        method = AuthMethod.OAUTH2 if version is OneRosterVersion.V1P2 else AuthMethod.OAUTH1
        server_url = strip_base_path(server.endpoint_url)
        try:
            settings.require_secure(server_url, "ClassLink's OneRoster server URL")
        except InsecureUrl as error:
            raise FailedPrecondition(str(error), reason="INSECURE_URL") from None
        return await self._prove_and_store(
            store.ConnectionValues(
                district_id=district_id,
                server_url=server_url,
                auth_method=method,
                oneroster_version=version,
                client_id=server.client_id,
                secret_ciphertext=self._app.secrets.encrypt(server.client_secret),
                secret_hint=mask_hint(server.client_secret),
                tenant_id=info.tenant_id,
                connect_method=ConnectMethod.SIGN_IN,
            ),
            server.client_secret,
        )

    async def connect_manually(self, district_id: str, manual: ManualInput) -> Connection:
        """Validate typed credentials, prove them with one page of schools, store them."""
        server_url, given_token_url = self._valid_manual(manual)
        return await self._prove_and_store(
            store.ConnectionValues(
                district_id=district_id,
                server_url=server_url,
                auth_method=manual.auth_method or AuthMethod.OAUTH1,
                oneroster_version=manual.oneroster_version,
                client_id=manual.client_id.strip(),
                secret_ciphertext=self._app.secrets.encrypt(manual.client_secret),
                secret_hint=mask_hint(manual.client_secret),
                tenant_id=None,
                connect_method=ConnectMethod.MANUAL,
                token_url=given_token_url,
            ),
            manual.client_secret,
        )

    def _valid_url(self, url: str, field: str, violations: list[FieldViolation]) -> None:
        malformed = url_problem(url)
        parts = urlsplit(url) if malformed is None else None
        if len(url) > MAX_URL_LENGTH:
            violations.append(FieldViolation(field, f"longer than {MAX_URL_LENGTH} characters"))
        elif parts is None:
            violations.append(FieldViolation(field, f"{malformed}; {COPY_URL_ADVICE}"))
        elif parts.scheme not in ("https", "http") or not parts.hostname:
            violations.append(
                FieldViolation(field, "must be an https:// URL like https://district.oneroster.com")
            )
        elif parts.username or parts.password or parts.query or parts.fragment:
            violations.append(FieldViolation(field, "must not carry credentials, a query or a fragment"))
        else:
            try:
                self._app.settings.require_secure(url, field)
            except InsecureUrl as error:
                violations.append(FieldViolation(field, str(error)))

    def _valid_manual(self, manual: ManualInput) -> tuple[str, str | None]:
        """The server URL (base path trimmed) and the token URL (None when not given)."""
        violations: list[FieldViolation] = []
        url = manual.server_url.strip()
        if not url:
            violations.append(FieldViolation("manual.server_url", "required: the OneRoster server's URL"))
        else:
            self._valid_url(url, "manual.server_url", violations)
        given_token_url = manual.token_url.strip() or None
        if given_token_url is not None:
            if manual.auth_method is not AuthMethod.OAUTH2:
                violations.append(FieldViolation("manual.token_url", "only for OAuth 2 (AUTH_METHOD_OAUTH2)"))
            else:
                self._valid_url(given_token_url, "manual.token_url", violations)
        if manual.auth_method is None:
            violations.append(FieldViolation("manual.auth_method", "required: OAUTH1, BEARER or OAUTH2"))
        needs_id = manual.auth_method in (AuthMethod.OAUTH1, AuthMethod.OAUTH2)
        client_id = manual.client_id.strip()
        if needs_id and not client_id:
            violations.append(FieldViolation("manual.client_id", "required for OAuth 1.0a and OAuth 2"))
        elif len(client_id) > MAX_ID_LENGTH:
            violations.append(FieldViolation("manual.client_id", f"longer than {MAX_ID_LENGTH} characters"))
        secret = manual.client_secret.get_secret_value()
        if not secret.strip():
            violations.append(FieldViolation("manual.client_secret", "required: the secret or bearer token"))
        elif len(secret) < MIN_SECRET_LENGTH:
            violations.append(
                FieldViolation(
                    "manual.client_secret",
                    f"The secret is too short ({len(secret)} characters; ClassLink's have at least "
                    f"{MIN_SECRET_LENGTH}). Copy the whole secret from ClassLink.",
                )
            )
        elif len(secret) > MAX_SECRET_LENGTH:
            violations.append(
                FieldViolation("manual.client_secret", f"longer than {MAX_SECRET_LENGTH} characters")
            )
        if violations:
            raise InvalidArgument.for_fields(violations)
        return strip_base_path(url), given_token_url

    async def _prove_and_store(self, values: store.ConnectionValues, secret: SecretStr) -> Connection:
        """Read one page of schools with the credentials, then store them and redact the secret.

        Only a proven, stored secret is redacted from the process's logs (replacing the district's
        previous one): a refused attempt must not let a caller hide words from every log line.
        """
        credentials = client_credentials(
            values.auth_method, values.client_id, secret, values.server_url, values.token_url
        )
        config = ServerConfig(
            values.server_url,
            credentials,
            version=VERSIONS[values.oneroster_version],
            page_size=1,
            concurrency=1,
            timeouts=PROBE_TIMEOUTS,
            retry=PROBE_RETRY,
        )
        try:
            async with self._app.oneroster_client(config) as client:
                await client.check_connection()
        except OneRosterError as error:
            raise oneroster_failure(error, values.server_url) from None
        now = self._app.clock()
        connection = await self._app.transaction(lambda session: store.save_connection(session, values, now))
        self._app.redactor.register(
            secret.get_secret_value(), owner=redaction_owner(self._app, values.district_id)
        )
        return connection

    async def _spend_state(self, district_id: str, state: str) -> None:
        hashed = state_hash(state)
        now = self._app.clock()

        def spend(session: Session) -> FailedPrecondition | None:
            pending = sign_in.get_state(session, hashed)
            if pending is None or pending.district_id != district_id:
                return FailedPrecondition(
                    "This ClassLink sign-in is not one this server started for the district. "
                    "Start Connect ClassLink again.",
                    reason="SIGN_IN_STATE_UNKNOWN",
                )
            if pending.used_time is not None:
                return _state_used()
            if pending.expire_time <= now:
                return FailedPrecondition(
                    "This ClassLink sign-in expired (sign-ins are valid for "
                    f"{int(self._app.settings.sign_in_state_ttl.total_seconds() // 60)} minutes). "
                    "Start Connect ClassLink again.",
                    reason="SIGN_IN_STATE_EXPIRED",
                )
            if not sign_in.use_state(session, hashed, now):
                return _state_used()
            return None

        refused = await self._app.transaction(spend)
        if refused is not None:
            raise refused

    async def _application(self, http: httpx.AsyncClient, info: MyInfo) -> Application:
        try:
            applications = await list_applications(
                http, self._endpoints, self._app.settings.classlink_partner_token
            )
        except AuthenticationError:
            raise FailedPrecondition(
                "ClassLink refused this server's partner token; the operator must check "
                "EW_SYNC_CLASSLINK_PARTNER_TOKEN. Meanwhile, connect with the OneRoster credentials.",
                reason="PARTNER_TOKEN_REJECTED",
            ) from None
        except OneRosterError as error:
            raise _classlink_unavailable(error) from None
        for application in applications:
            if application.tenant_id == info.tenant_id:
                return application
        tenant = info.tenant_name or f"tenant {info.tenant_id}"
        raise FailedPrecondition(
            f"ClassLink district {tenant} has not added the app. A ClassLink administrator must add "
            "it in the ClassLink Management Console (Roster Server → Add App), then connect again.",
            reason="CLASSLINK_APP_NOT_ADDED",
        )


def _require_tenant_admin(info: MyInfo) -> None:
    if info.role.strip().lower() not in ADMIN_ROLES:
        shown = info.role or "no role"
        raise PermissionDenied(
            "Sign in with a ClassLink district administrator account; "
            f"this account's ClassLink role is {shown}.",
            reason="CLASSLINK_ADMIN_REQUIRED",
        )


def _state_used() -> FailedPrecondition:
    return FailedPrecondition(
        "This ClassLink sign-in was already used. Start Connect ClassLink again.",
        reason="SIGN_IN_STATE_USED",
    )


def _classlink_unavailable(error: OneRosterError) -> Unavailable:
    return Unavailable(
        f"ClassLink could not complete the sign-in: {error} Try again.", reason="CLASSLINK_UNAVAILABLE"
    )


def _not_connected(district_id: str) -> NotFound:
    return NotFound(
        f"District {district_id} has no ClassLink connection. Connect ClassLink first.",
        reason="CONNECTION_NOT_FOUND",
    )
