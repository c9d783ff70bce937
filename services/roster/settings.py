"""The roster service's settings, read from EW_ROSTER_* environment variables."""

from __future__ import annotations

import datetime as dt
import secrets
import sys

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.common.settings import migrates_by_default, positive_duration, valid_address, valid_database_url


class RosterSettings(BaseSettings):
    """Typed settings; every field maps to ``EW_ROSTER_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="EW_ROSTER_", extra="ignore")

    database_url: str = Field(default="sqlite:///var/roster.db", description="SQLAlchemy URL.")
    listen_address: str = Field(default="127.0.0.1:50051", description="host:port the gRPC server binds.")
    max_workers: int = Field(default=16, ge=1, le=256, description="Threads serving RPCs.")
    change_set_ttl: dt.timedelta = Field(
        default=dt.timedelta(hours=1),
        description="Open change sets idle this long expire.",
    )
    grace_period: float = Field(default=10.0, ge=0, description="Seconds in-flight RPCs get on shutdown.")
    cleanup_interval: float = Field(default=60.0, gt=0, description="Seconds between purges.")
    health_interval: float = Field(
        default=5.0, gt=0, description="Seconds between probes of the database for the health service."
    )
    auto_migrate: bool | None = Field(
        default=None, description="Apply migrations at startup; defaults to true for SQLite URLs only."
    )
    page_token_key: SecretStr = Field(
        default_factory=lambda: SecretStr(secrets.token_hex(32)),
        description="HMAC key signing page tokens; replicas behind one address must share it.",
    )
    audit_retention_days: int = Field(
        default=400,
        ge=1,
        validation_alias=AliasChoices("EW_AUDIT_RETENTION_DAYS", "audit_retention_days"),
        description="Audit events older than this many days are pruned by the clean-up sweep.",
    )

    @field_validator("database_url")
    @classmethod
    def _valid_url(cls, value: str) -> str:
        return valid_database_url(value)

    @field_validator("listen_address")
    @classmethod
    def _valid_address(cls, value: str) -> str:
        return valid_address(value)

    @field_validator("change_set_ttl", mode="before")
    @classmethod
    def _seconds_or_iso(cls, value: object) -> object:
        """Plain numbers are seconds ("3600"); ISO 8601 durations ("PT1H") are read as such."""
        if isinstance(value, str) and value.strip().replace(".", "", 1).isdigit():
            return float(value)
        return value

    @field_validator("change_set_ttl")
    @classmethod
    def _positive_ttl(cls, value: dt.timedelta) -> dt.timedelta:
        return positive_duration(value)

    @model_validator(mode="after")
    def _default_auto_migrate(self) -> RosterSettings:
        if self.auto_migrate is None:
            self.auto_migrate = migrates_by_default(self.database_url)
        return self


def load_settings() -> RosterSettings:
    """Read the settings, or exit with a message naming each bad variable."""
    try:
        return RosterSettings()
    except ValidationError as error:
        lines = [
            f"  EW_ROSTER_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in error.errors()
        ]
        sys.exit("Invalid roster settings:\n" + "\n".join(lines))
