"""TLS and mutual TLS for both gRPC servers and the sync service's roster client.

Off unless ``EW_TLS_CERT_FILE`` is set. ``EW_TLS_REQUIRE_CLIENT_CERT=true`` makes it mutual: a
server then accepts only clients presenting a certificate signed by ``EW_TLS_CA_FILE``. A client
reads its own settings under another prefix through a subclass, e.g.
``class RosterTlsSettings(TlsSettings): model_config = SettingsConfigDict(env_prefix="EW_ROSTER_TLS_")``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Self

import grpc
from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class TlsSettings(BaseSettings):
    """Certificate files, from ``EW_TLS_*`` variables."""

    model_config = SettingsConfigDict(env_prefix="EW_TLS_", extra="ignore")

    cert_file: Path | None = None
    key_file: Path | None = None
    ca_file: Path | None = None
    require_client_cert: bool = False

    @model_validator(mode="after")
    def _check_consistent(self) -> Self:
        prefix = self.model_config.get("env_prefix", "EW_TLS_")
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError(f"set both {prefix}CERT_FILE and {prefix}KEY_FILE, or neither")
        if self.require_client_cert and self.ca_file is None:
            raise ValueError(
                f"{prefix}REQUIRE_CLIENT_CERT needs {prefix}CA_FILE to check client certificates"
            )
        for name in ("cert_file", "key_file", "ca_file"):
            path = getattr(self, name)
            if path is not None and not path.is_file():
                raise ValueError(f"{prefix}{name.upper()} {path} is not a readable file")
        return self

    @property
    def enabled(self) -> bool:
        """True when the server serves TLS (or the client presents a certificate)."""
        return self.cert_file is not None

    @property
    def client_enabled(self) -> bool:
        """True when a client should connect with TLS: it trusts a CA or presents a certificate."""
        return self.ca_file is not None or self.cert_file is not None

    def server_credentials(self) -> grpc.ServerCredentials:
        """Credentials for ``add_secure_port``; client certificates required when configured."""
        if self.cert_file is None or self.key_file is None:
            raise ValueError("server TLS needs a certificate and key (EW_TLS_CERT_FILE, EW_TLS_KEY_FILE)")
        return grpc.ssl_server_credentials(
            [(self.key_file.read_bytes(), self.cert_file.read_bytes())],
            root_certificates=self.ca_file.read_bytes() if self.ca_file else None,
            require_client_auth=self.require_client_cert,
        )

    def channel_credentials(self) -> grpc.ChannelCredentials:
        """Client credentials: trust ``ca_file`` (else the system roots), present the cert when set."""
        return grpc.ssl_channel_credentials(
            root_certificates=self.ca_file.read_bytes() if self.ca_file else None,
            private_key=self.key_file.read_bytes() if self.key_file else None,
            certificate_chain=self.cert_file.read_bytes() if self.cert_file else None,
        )


def add_server_port(server: grpc.Server | grpc.aio.Server, address: str, settings: TlsSettings) -> int:
    """Bind ``address`` with TLS when configured, in the clear otherwise; returns the port."""
    if settings.enabled:
        return server.add_secure_port(address, settings.server_credentials())
    return server.add_insecure_port(address)
