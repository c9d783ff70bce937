"""The sandbox's state: settings, districts, issued codes and tokens, and shared HTTP helpers."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse

from services.oneroster_sandbox.faults import FaultPlan
from services.oneroster_sandbox.model import District
from services.oneroster_sandbox.rate_limit import RateLimiter
from services.oneroster_sandbox.render import Renderer

VERSION_PATHS = {"1.1": "ims/oneroster/v1p1", "1.2": "ims/oneroster/rostering/v1p2"}


@dataclass(frozen=True)
class Settings:
    """How the sandbox behaves as a server: version, accepted auth, paging quirks, admin API."""

    version: str = "1.1"
    auth_modes: frozenset[str] = frozenset({"oauth1", "bearer"})
    page_cap: int | None = None
    omit_total: bool = False
    omit_links: bool = False
    token_redirect: bool = False
    quirks: bool = False
    disabled_endpoints: frozenset[str] = frozenset()
    admin_token: str | None = None
    partner_token: str = ""
    sso_client_id: str = ""
    sso_client_secret: str = ""
    token_lifetime: int = 3600
    # The slow-server profile: server time added to every OneRoster request, and the most
    # requests per second answered before 429 with Retry-After.
    request_delay: float = 0.0
    rate_limit: int | None = None


@dataclass(frozen=True)
class Login:
    """An account the sandbox's "Sign in with ClassLink" accepts, and the user info it reports."""

    login_id: str
    tenant_id: str
    role: str
    first_name: str
    last_name: str
    email: str
    sourced_id: str


@dataclass
class Sandbox:
    """The running sandbox: its settings, districts, active faults, and the codes and tokens it issued."""

    settings: Settings
    districts: dict[str, District]
    public_url: str = ""
    faults: FaultPlan = field(default_factory=FaultPlan)
    renderers: dict[str, Renderer] = field(default_factory=dict)
    oauth2_tokens: dict[str, tuple[str, float]] = field(default_factory=dict)
    sso_codes: dict[str, tuple[str, float]] = field(default_factory=dict)
    sso_tokens: dict[str, str] = field(default_factory=dict)
    limiter: RateLimiter | None = None

    def __post_init__(self) -> None:
        if self.limiter is None and self.settings.rate_limit is not None:
            self.limiter = RateLimiter(self.settings.rate_limit)

    def start(self, public_url: str) -> None:
        """Records the URL the sandbox is reachable at and pre-serialises every district's records."""
        self.public_url = public_url.rstrip("/")
        for tenant_id, district in self.districts.items():
            href_root = self.oneroster_url(tenant_id)
            if self.settings.quirks:
                href_root = (
                    f"https://district{tenant_id}-vn-v2.oneroster.com/{VERSION_PATHS[self.settings.version]}"
                )
            renderer = Renderer(district, self.settings.version, self.settings.quirks, href_root)
            renderer.warm()
            self.renderers[tenant_id] = renderer

    def server_url(self, tenant_id: str) -> str:
        """The root of a district's OneRoster server, as ClassLink's ``endpoint_url`` names it."""
        return f"{self.public_url}/districts/{tenant_id}"

    def oneroster_url(self, tenant_id: str) -> str:
        """The OneRoster base URL of a district for the sandbox's version."""
        return f"{self.server_url(tenant_id)}/{VERSION_PATHS[self.settings.version]}"

    def logins(self) -> dict[str, Login]:
        """The accounts that can sign in, by login id: each district's administrator and first teacher."""
        logins: dict[str, Login] = {}
        for tenant_id, district in self.districts.items():
            logins[f"admin@{tenant_id}"] = Login(
                f"admin@{tenant_id}",
                tenant_id,
                "Tenant Administrator",
                "Dana",
                "Admin",
                f"admin@{tenant_id}.example.org",
                "",
            )
            teacher = next((u for u in district.users.values() if u.role == "teacher"), None)
            if teacher is not None:
                logins[f"teacher@{tenant_id}"] = Login(
                    f"teacher@{tenant_id}",
                    tenant_id,
                    "Teacher",
                    teacher.given_name,
                    teacher.family_name,
                    teacher.email or "",
                    teacher.sourced_id,
                )
        return logins


def imsx(status: int, minor: str, description: str, *, quirks: bool) -> JSONResponse:
    """An imsx error response; quirks mode wraps it in ``statusInfoSet`` as ClassLink servers do."""
    info = {
        "imsx_codeMajor": "failure",
        "imsx_severity": "error",
        "imsx_messageRefIdentifier": secrets.token_hex(4),
        "imsx_description": description,
        "imsx_CodeMinor": {
            "imsx_codeMinorField": [
                {"imsx_codeMinorFieldName": "TargetEndSystem", "imsx_codeMinorFieldValue": minor}
            ]
        },
    }
    return JSONResponse({"statusInfoSet": [info]} if quirks else info, status_code=status)


async def read_form(request: Request) -> dict[str, str]:
    """An application/x-www-form-urlencoded body (parsed here: starlette's parser needs python-multipart)."""
    return dict(parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True))


def bearer(request: Request) -> str | None:
    """The bearer token of the ``Authorization`` header, if it carries one."""
    header = request.headers.get("authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else None
