"""Start the OneRoster sandbox as a subprocess and drive its admin API.

    with start_sandbox(teachers=50, schools=5) as sandbox:
        config = sandbox.server_config()            # OAuth 1.0a against the first district
        sandbox.set_faults([{"kind": "status", "status": 503, "times": 2}])
        sandbox.mutate([{"op": "remove_user", "sourcedId": "..."}])
        truth = sandbox.roster()                     # the district as the sandbox holds it

Keyword arguments become command-line flags (``page_cap=7`` -> ``--page-cap 7``; ``True`` -> a bare
flag; lists repeat the flag; ``faults`` is JSON-encoded).
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from services.sync.oneroster import (
    BearerToken,
    OAuth1Credentials,
    OAuth2ClientCredentials,
    RetryPolicy,
    ServerConfig,
    Version,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED_ONEROSTER = REPO_ROOT.parent / "shared" / "oneroster"
ADMIN_HEADER = "X-Sandbox-Admin-Token"
# The one redirect URI the sign-in suites configure (``sso_settings``) and send.
REDIRECT_URI = "https://ew.example.test/classlink/callback"

# Retry delays short enough for tests; the behaviour (back-off, budget) is the production one.
FAST_RETRY = RetryPolicy(
    attempts_per_request=6, initial_delay=0.01, max_delay=0.05, jitter=0.01, budget_seconds=10
)


@dataclass(frozen=True)
class Tenant:
    tenant_id: str
    name: str
    server_url: str
    oneroster_url: str
    client_id: str
    client_secret: str
    bearer_token: str
    application_id: str
    logins: dict[str, str]


class SandboxHandle:
    """A running sandbox process; ``info`` is its first JSON line."""

    def __init__(self, process: subprocess.Popen[str], info: dict[str, Any]) -> None:
        self.process = process
        self.info = info
        self.base_url: str = info["base_url"]
        self.server_url: str = info["server_url"]
        self.oneroster_url: str = info["oneroster_url"]
        self.version = Version(info["version"])
        self.client_id: str = info["client_id"]
        self.client_secret: str = info["client_secret"]
        self.bearer_token: str = info["bearer_token"]
        self.token_url: str = info["token_url"]
        # Where POST /oauth/token redirects with --token-redirect (it also issues tokens without it).
        self.issuer_token_url: str = info["issuer_token_url"]
        self.partner_token: str = info["partner_token"]
        self.sso: dict[str, str] = info["sso"]
        self.admin_token: str | None = info["admin_token"]
        self.tenants = [Tenant(**t) for t in info["tenants"]]
        self.csv_problems: list[dict[str, Any]] = info["csv_problems"]
        self._http = httpx.Client(base_url=self.base_url, timeout=30)

    def tenant(self, tenant_id: str | None = None) -> Tenant:
        return (
            self.tenants[0]
            if tenant_id is None
            else next(t for t in self.tenants if t.tenant_id == tenant_id)
        )

    def server_config(
        self,
        *,
        auth: str = "oauth1",
        tenant_id: str | None = None,
        retry: RetryPolicy = FAST_RETRY,
        token_url: str | None = None,
        **options: Any,
    ) -> ServerConfig:
        """A client configuration for one district.

        ``auth`` is oauth1, bearer or oauth2; ``token_url`` defaults to the sandbox's ``/oauth/token``.
        """
        tenant = self.tenant(tenant_id)
        credentials: OAuth1Credentials | BearerToken | OAuth2ClientCredentials
        if auth == "oauth1":
            credentials = OAuth1Credentials(tenant.client_id, SecretStr(tenant.client_secret))
        elif auth == "bearer":
            credentials = BearerToken(SecretStr(tenant.bearer_token))
        else:
            credentials = OAuth2ClientCredentials(
                tenant.client_id, SecretStr(tenant.client_secret), token_url or self.token_url
            )
        return ServerConfig(tenant.server_url, credentials, version=self.version, retry=retry, **options)

    def _admin(self, method: str, path: str, **kwargs: Any) -> Any:
        if self.admin_token is None:
            raise RuntimeError("this sandbox runs without the admin API")
        response = self._http.request(
            method, f"/_sandbox/{path}", headers={ADMIN_HEADER: self.admin_token}, **kwargs
        )
        if response.status_code != 200:
            raise RuntimeError(f"sandbox admin {method} {path}: HTTP {response.status_code} {response.text}")
        return response.json()

    def set_faults(self, faults: list[dict[str, Any]]) -> None:
        self._admin("POST", "faults", json={"faults": faults})

    def clear_faults(self) -> None:
        self._admin("DELETE", "faults")

    def pending_faults(self) -> list[dict[str, Any]]:
        return list(self._admin("GET", "faults")["faults"])

    def mutate(self, ops: list[dict[str, Any]], tenant_id: str | None = None) -> list[dict[str, Any]]:
        """Applies roster mutations atomically; returns one result (with sourcedId) per op."""
        payload: dict[str, Any] = {"ops": ops}
        if tenant_id is not None:
            payload["tenant_id"] = tenant_id
        return list(self._admin("POST", "roster", json=payload)["results"])

    def roster(self, tenant_id: str | None = None) -> dict[str, Any]:
        """The district as the sandbox holds it: {"orgs": [...], "users": [...]} (all roles and types)."""
        params = {"tenant_id": tenant_id} if tenant_id else {}
        return dict(self._admin("GET", "roster", params=params))

    def revoke_tokens(self) -> None:
        self._admin("POST", "revoke-tokens")

    def stop(self) -> int:
        self._http.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def __enter__(self) -> SandboxHandle:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def sso_settings(sandbox: SandboxHandle, partner: SandboxHandle | None = None) -> dict[str, Any]:
    """Sign-in settings pointing at the sandbox (and its partner API, or another sandbox's)."""
    partner = partner or sandbox
    return {
        "classlink_client_id": sandbox.sso["client_id"],
        "classlink_client_secret": SecretStr(sandbox.sso["client_secret"]),
        "classlink_signin_url": sandbox.sso["launchpad_url"],
        "classlink_myinfo_url": sandbox.sso["nodeapi_url"],
        "classlink_partner_url": partner.info["proxy_url"],
        "classlink_partner_token": SecretStr(partner.partner_token),
        "classlink_redirect_uris": [REDIRECT_URI],
    }


def sandbox_args(flags: dict[str, Any]) -> list[str]:
    args: list[str] = []
    for name, value in flags.items():
        flag = "--" + name.replace("_", "-")
        if value is None or value is False:
            continue
        if value is True:
            args.append(flag)
        elif name == "faults":
            args += [flag, json.dumps(value)]
        elif isinstance(value, list | tuple):
            for item in value:
                args += [flag, str(item)]
        else:
            args += [flag, str(value)]
    return args


def start_sandbox(*, startup_timeout: float = 60.0, **flags: Any) -> SandboxHandle:
    """Starts ``python -m services.oneroster_sandbox`` with ``flags`` and waits for its first line."""
    flags = {"seed": 7, "schools": 6, "teachers": 60} | flags
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    process = subprocess.Popen(
        [sys.executable, "-m", "services.oneroster_sandbox", "--port", "0", *sandbox_args(flags)],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + startup_timeout
    line = ""
    while not line:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or process.poll() is not None:
            process.kill()
            raise RuntimeError(f"sandbox did not start (exit code {process.poll()})")
        if selector.select(timeout=remaining):
            line = process.stdout.readline()
    selector.close()
    return SandboxHandle(process, json.loads(line))
