"""How to reach one district's OneRoster server: URL, version, credentials, paging and retry limits."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from pydantic import SecretStr


class Version(StrEnum):
    """The OneRoster REST binding the server speaks."""

    V1P1 = "1.1"
    V1P2 = "1.2"

    @property
    def base_path(self) -> str:
        """The path of the version's REST binding under the server root."""
        return "/ims/oneroster/v1p1" if self is Version.V1P1 else "/ims/oneroster/rostering/v1p2"


@dataclass(frozen=True)
class OAuth1Credentials:
    """OAuth 1.0a HMAC-SHA256 request signing, as a ClassLink Roster Server requires."""

    client_id: str
    client_secret: SecretStr


@dataclass(frozen=True)
class BearerToken:
    """A static bearer token, as ClassLink's OneRoster proxy hands out per district."""

    token: SecretStr


@dataclass(frozen=True)
class OAuth2ClientCredentials:
    """OAuth 2 client credentials (OneRoster 1.2): the client id and secret go in HTTP Basic auth."""

    client_id: str
    client_secret: SecretStr
    token_url: str
    scope: str = "https://purl.imsglobal.org/spec/or/v1p2/scope/roster-core.readonly"


Credentials = OAuth1Credentials | BearerToken | OAuth2ClientCredentials


@dataclass(frozen=True)
class RetryPolicy:
    """Back-off for 429/500/502/503/504 and connection errors, bounded per request and per pull.

    ``budget_seconds`` caps the total time one pull may spend waiting between retries (including
    ``Retry-After`` waits); a wait that would overrun it fails the pull at once instead.
    """

    attempts_per_request: int = 6
    initial_delay: float = 0.5
    max_delay: float = 30.0
    jitter: float = 0.5
    budget_seconds: float = 180.0


@dataclass(frozen=True)
class Timeouts:
    """Seconds to wait to connect, for each read or write, and for a free pooled connection."""

    connect: float = 10.0
    read: float = 60.0
    pool: float = 30.0


def strip_base_path(url: str) -> str:
    """``url`` without a trailing OneRoster base path (``/ims/oneroster/...``) or slash."""
    url = url.rstrip("/")
    for version in Version:
        if url.endswith(version.base_path):
            return url[: -len(version.base_path)]
    return url


@dataclass(frozen=True)
class ServerConfig:
    """One district's OneRoster server.

    ``server_url`` is the server root (``https://district.oneroster.com``); a URL that already ends in
    the OneRoster base path (as ClassLink's ``endpoint_url`` does) is accepted and trimmed.
    ``concurrency`` is the number of pages fetched at once when the server reports a total; 1 fetches
    pages strictly one after another. ``max_restarts`` bounds how often an inconsistent pull (total
    changed, overlapping or missing rows) starts over before it fails.
    """

    server_url: str
    credentials: Credentials
    version: Version = Version.V1P1
    page_size: int = 1000
    concurrency: int = 4
    max_restarts: int = 3
    timeouts: Timeouts = field(default_factory=Timeouts)
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def __post_init__(self) -> None:
        if self.page_size < 1:
            raise ValueError("page_size must be at least 1")
        if self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if self.max_restarts < 0:
            raise ValueError("max_restarts must not be negative")
        object.__setattr__(self, "server_url", strip_base_path(self.server_url))

    @property
    def base_url(self) -> str:
        """The URL the OneRoster collection paths are appended to."""
        return self.server_url + self.version.base_path
