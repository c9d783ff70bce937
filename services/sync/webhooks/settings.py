"""The webhook sender's settings, read from ``EW_WEBHOOK_*`` environment variables."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class WebhookSettings(BaseSettings):
    """Where events go, the signing secret, and the retry schedule (``EW_WEBHOOK_<FIELD>``)."""

    model_config = SettingsConfigDict(env_prefix="EW_WEBHOOK_", extra="ignore")

    url: str = Field(default="", description="The EW product's webhook endpoint; empty = not sent.")
    secret: SecretStr = Field(default=SecretStr(""), description="HMAC-SHA256 key of EW-Signature.")
    secret_file: Path | None = Field(default=None, description="A file holding the secret (instead).")
    timeout_seconds: float = Field(default=10.0, gt=0, description="Seconds one delivery may take.")
    backoff_base_seconds: float = Field(default=5.0, gt=0, description="Wait after the first failure.")
    backoff_max_seconds: float = Field(default=900.0, gt=0, description="Longest wait between attempts.")
    poll_interval_seconds: float = Field(default=1.0, gt=0, description="Outbox polling when idle.")
    lease_seconds: float = Field(
        default=60.0, gt=0, description="A claimed event goes to another sender after this long."
    )
    batch_size: int = Field(default=20, ge=1, le=500, description="Districts delivered to at once.")
    retention_days: int = Field(
        default=30, ge=1, description="Delivered events older than this many days are pruned."
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if value and (parts.scheme not in ("http", "https") or not parts.netloc):
            raise ValueError(f"expected an http(s):// URL, got {value!r}")
        return value

    @model_validator(mode="after")
    def _checks(self) -> WebhookSettings:
        if self.secret_file is not None:
            self.secret = SecretStr(self.secret_file.read_text().strip())
        if self.url and not self.secret.get_secret_value():
            raise ValueError("EW_WEBHOOK_URL needs EW_WEBHOOK_SECRET (or EW_WEBHOOK_SECRET_FILE)")
        if self.lease_seconds <= self.timeout_seconds:
            raise ValueError("EW_WEBHOOK_LEASE_SECONDS must exceed EW_WEBHOOK_TIMEOUT_SECONDS")
        return self

    @property
    def configured(self) -> bool:
        """True when events are to be delivered."""
        return bool(self.url)
