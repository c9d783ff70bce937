"""The gateway's settings, read from EW_GATEWAY_* environment variables."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from services.common.settings import valid_address
from services.common.tls import TlsSettings

STATIC_DIR = Path(__file__).parent / "static"


class GatewaySettings(BaseSettings):
    """Typed settings; every field maps to ``EW_GATEWAY_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="EW_GATEWAY_", extra="ignore")

    listen_address: str = Field(default="127.0.0.1:8080", description="host:port the HTTP server binds.")
    sync_target: str = Field(default="127.0.0.1:50052", description="host:port of the sync service.")
    roster_target: str = Field(default="127.0.0.1:50051", description="host:port of the roster service.")
    call_timeout: float = Field(default=30.0, gt=0, description="Seconds a unary call may take.")
    ready_timeout: float = Field(default=2.0, gt=0, description="Seconds a readiness health check may take.")
    max_body_bytes: int = Field(default=1_048_576, ge=1, description="Largest request body accepted.")
    heartbeat_seconds: float = Field(
        default=15.0, gt=0, description="Seconds between SSE keep-alive comments on an idle stream."
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Origins allowed to call the API from a browser (comma-separated)."
    )
    static_dir: Path = Field(default=STATIC_DIR, description="Folder served at /settings/.")

    @field_validator("listen_address", "sync_target", "roster_target")
    @classmethod
    def _valid_address(cls, value: str) -> str:
        return valid_address(value)

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value


class GatewayTlsSettings(TlsSettings):
    """How the gateway reaches the services over TLS (``EW_GATEWAY_TLS_*``).

    ``CA_FILE`` to trust their certificates; ``CERT_FILE`` and ``KEY_FILE`` when they require
    client certificates.
    """

    model_config = SettingsConfigDict(env_prefix="EW_GATEWAY_TLS_", extra="ignore")


def load_settings() -> GatewaySettings:
    """Read the settings, or exit with a message naming each bad variable."""
    try:
        return GatewaySettings()
    except ValidationError as error:
        lines = [
            f"  EW_GATEWAY_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in error.errors()
        ]
        sys.exit("Invalid gateway settings:\n" + "\n".join(lines))
