"""The sync service's settings, read from EW_SYNC_* environment variables (and EW_BROKER_URL)."""

from __future__ import annotations

import datetime as dt
import secrets
import sys
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from services.common.settings import migrates_by_default, positive_duration, valid_address, valid_database_url

ENV_PREFIX = "EW_SYNC_"
BROKER_URL_VARIABLE = "EW_BROKER_URL"
BROKER_NAMESPACE_VARIABLE = "EW_BROKER_NAMESPACE"
AUDIT_RETENTION_VARIABLE = "EW_AUDIT_RETENTION_DAYS"


class InsecureUrl(ValueError):
    """A plain-http URL while ``EW_SYNC_ALLOW_INSECURE_HTTP`` is off."""


class SyncSettings(BaseSettings):
    """Typed settings: ``EW_SYNC_<FIELD>``, except ``EW_BROKER_URL`` and ``EW_BROKER_NAMESPACE``."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", populate_by_name=True)

    database_url: str = Field(default="sqlite:///var/sync.db", description="SQLAlchemy URL of the sync DB.")
    listen_address: str = Field(default="127.0.0.1:50052", description="host:port the gRPC server binds.")
    roster_target: str = Field(default="127.0.0.1:50051", description="host:port of RosterService.")
    roster_deadline: float = Field(default=30.0, gt=0, description="Seconds one RosterService call may take.")
    grace_period: float = Field(default=10.0, ge=0, description="Seconds in-flight RPCs get on shutdown.")
    auto_migrate: bool | None = Field(
        default=None, description="Apply migrations at startup; defaults to true for SQLite URLs only."
    )
    broker_url: str = Field(
        default="",
        validation_alias=AliasChoices(BROKER_URL_VARIABLE, "broker_url"),
        description="Dramatiq broker (redis://…); empty = in-process stub broker.",
    )
    broker_namespace: str = Field(
        default="ew-rostersync",
        validation_alias=AliasChoices(BROKER_NAMESPACE_VARIABLE, "broker_namespace"),
        description="Redis key prefix of the broker and the run wake-up channels.",
    )
    run_stale_seconds: float = Field(
        default=60.0, gt=0, description="A RUNNING run whose heartbeat is older than this is recovered."
    )
    recovery_interval_seconds: float = Field(
        default=15.0, gt=0, description="Seconds between checks for stale runs."
    )
    worker_threads: int = Field(default=4, ge=1, le=64, description="Threads of the in-process worker.")
    health_interval: float = Field(
        default=5.0, gt=0, description="Seconds between probes of the database, broker and roster."
    )
    allow_insecure_http: bool = Field(
        default=False, description="Accept http:// OneRoster and ClassLink URLs (local sandboxes only)."
    )
    page_token_key: SecretStr = Field(
        default_factory=lambda: SecretStr(secrets.token_hex(32)),
        description="HMAC key signing page tokens; replicas behind one address must share it.",
    )
    preview_ttl: dt.timedelta = Field(
        default=dt.timedelta(hours=1), description="How long a preview can be paged."
    )

    classlink_client_id: str = Field(default="", description="ClassLink SSO app client id.")
    classlink_client_secret: SecretStr = Field(
        default=SecretStr(""), description="ClassLink SSO app client secret."
    )
    classlink_signin_url: str = Field(
        default="https://launchpad.classlink.com", description="Base of /oauth2/v2/auth and /oauth2/v2/token."
    )
    classlink_myinfo_url: str = Field(
        default="https://nodeapi.classlink.com", description="Base of /v2/my/info."
    )
    classlink_partner_url: str = Field(
        default="https://oneroster-proxy.classlink.io", description="Base of the partner API's /applications."
    )
    classlink_partner_token: SecretStr = Field(
        default=SecretStr(""), description="The partner API bearer token."
    )
    classlink_redirect_uris: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Comma-separated redirect URIs sign-in may return to."
    )
    classlink_scope: str = Field(default="profile oneroster", description="Scopes asked for at sign-in.")
    sign_in_state_ttl: dt.timedelta = Field(
        default=dt.timedelta(minutes=10), description="How long a sign-in state is accepted."
    )

    oneroster_page_size: int = Field(default=1000, ge=1, le=10000, description="Rows per OneRoster page.")
    oneroster_concurrency: int = Field(default=4, ge=1, le=32, description="OneRoster pages fetched at once.")
    oneroster_retry_delay: float = Field(
        default=0.5,
        gt=0,
        le=30,
        description="A sync's first wait before retrying a OneRoster request; each later wait doubles, "
        "with up to as much again of jitter.",
    )
    oneroster_read_timeout: float = Field(
        default=60.0, gt=0, description="Seconds one OneRoster response may keep us waiting before a retry."
    )

    guard_fraction: float = Field(
        default=0.10,
        gt=0,
        le=1,
        description="A run may archive at most this share of active teachers unreviewed.",
    )
    guard_minimum: int = Field(default=5, ge=0, description="…but always at least this many.")
    audit_retention_days: int = Field(
        default=400,
        ge=1,
        validation_alias=AliasChoices(AUDIT_RETENTION_VARIABLE, "audit_retention_days"),
        description="Audit events older than this many days are pruned by the periodic recovery pass.",
    )

    autosync_spread: dt.timedelta = Field(
        default=dt.timedelta(hours=1),
        ge=dt.timedelta(0),
        le=dt.timedelta(hours=6),
        description="Districts due at the same time start spread over this window (a fixed offset each).",
    )
    autosync_max_runs_per_server: int = Field(
        default=5, ge=1, description="At most this many AutoSync runs per ClassLink server at once."
    )
    scheduler_interval: dt.timedelta = Field(
        default=dt.timedelta(seconds=30),
        description="How often the AutoSync scheduler looks for due districts.",
    )
    scheduler_batch: int = Field(
        default=100, ge=1, le=1000, description="Districts the scheduler claims per transaction."
    )
    scheduler_embedded: bool | None = Field(
        default=None,
        description="Run the AutoSync scheduler in the sync server; defaults to true with the stub broker.",
    )

    @field_validator("database_url")
    @classmethod
    def _valid_url(cls, value: str) -> str:
        return valid_database_url(value)

    @field_validator("listen_address", "roster_target")
    @classmethod
    def _valid_address(cls, value: str) -> str:
        return valid_address(value)

    @field_validator("classlink_redirect_uris", mode="before")
    @classmethod
    def _split_uris(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [uri.strip() for uri in value.split(",") if uri.strip()]
        return value

    @field_validator("preview_ttl", "sign_in_state_ttl", "scheduler_interval")
    @classmethod
    def _positive_ttl(cls, value: dt.timedelta) -> dt.timedelta:
        return positive_duration(value)

    @field_validator("classlink_signin_url", "classlink_myinfo_url", "classlink_partner_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"expected an https:// URL, got {value!r}")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _checks(self) -> SyncSettings:
        if self.auto_migrate is None:
            self.auto_migrate = migrates_by_default(self.database_url)
        if self.scheduler_embedded is None:
            self.scheduler_embedded = not self.broker_url.strip()
        for name in ("classlink_signin_url", "classlink_myinfo_url", "classlink_partner_url"):
            try:
                self.require_secure(getattr(self, name), f"{ENV_PREFIX}{name.upper()}")
            except InsecureUrl as error:
                raise ValueError(str(error)) from None
        return self

    @property
    def sso_configured(self) -> bool:
        """True when single sign-on with ClassLink can be offered."""
        return bool(
            self.classlink_client_id
            and self.classlink_client_secret.get_secret_value()
            and self.classlink_partner_token.get_secret_value()
            and self.classlink_redirect_uris
        )

    def require_secure(self, url: str, what: str) -> None:
        """Refuse a plain-http ``url`` unless insecure HTTP is explicitly allowed."""
        if urlsplit(url).scheme == "http" and not self.allow_insecure_http:
            raise InsecureUrl(
                f"{what} uses plain http ({url}); use https, or set {ENV_PREFIX}ALLOW_INSECURE_HTTP=true "
                "for a local test server"
            )


def _variable(location: tuple[int | str, ...]) -> str:
    field = "_".join(str(part) for part in location)
    if field in ("broker_url", BROKER_URL_VARIABLE):
        return BROKER_URL_VARIABLE
    if field in ("broker_namespace", BROKER_NAMESPACE_VARIABLE):
        return BROKER_NAMESPACE_VARIABLE
    return f"{ENV_PREFIX}{field.upper()}" if field else "EW_SYNC_* settings"


def load_settings() -> SyncSettings:
    """Read the settings, or exit with a message naming each bad variable."""
    try:
        return SyncSettings()
    except ValidationError as error:
        lines = [f"  {_variable(tuple(e['loc']))}: {e['msg']}" for e in error.errors()]
        sys.exit("Invalid sync settings:\n" + "\n".join(lines))
