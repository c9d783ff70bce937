"""Every part of the product as a real process, with the gateway serving the ClassLink Settings page.

Sandbox, roster service, sync service, worker (a separate process when ``EW_TEST_BROKER_URL`` names a
Redis broker; inside the sync service on the stub broker) and gateway, each on a free port. The sync
service accepts the gateway's ``/settings/`` page as a sign-in redirect URI, so single sign-on goes
to the sandbox's ClassLink sign-in and back to the page in the browser.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from ew.client.roster import RosterClient
from ew.client.sync import SyncClient

from services.common.auth import AuthSettings, Role, ServiceTokenProvider
from services.common.devtoken import mint_dev_token
from services.common.processes import (
    Child,
    ProcessFailed,
    ProcessGroup,
    base_environment,
    free_address,
    wait_serving,
)
from tests.support.deployment import DISTRICT, Deployment
from tests.support.sandbox import start_sandbox

READY_DEADLINE = 60.0


@dataclass
class Stack:
    """A running deployment plus its gateway; ``page_url`` opens the page signed in as the admin."""

    deployment: Deployment
    gateway: Child
    base_url: str
    token: str

    @property
    def page_url(self) -> str:
        """The development sign-in URL ``make run`` prints: the token rides in the fragment."""
        return f"{self.base_url}/settings/#token={self.token}"

    def stop(self) -> None:
        """Stop every process and close the clients."""
        self.deployment.sync.close()
        self.deployment.roster.close()
        self.deployment.group.stop()
        self.deployment.sandbox.stop()


def wait_ready(child: Child, base_url: str) -> None:
    """Poll the gateway's readiness endpoint until both backends serve; ProcessFailed otherwise."""
    end = time.monotonic() + READY_DEADLINE
    with httpx.Client(base_url=base_url, timeout=2) as client:
        while True:
            if not child.running:
                raise ProcessFailed(f"gateway exited with {child.process.returncode}:\n{child.log_tail()}")
            try:
                if client.get("/readyz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > end:
                raise ProcessFailed(
                    f"gateway was not ready within {READY_DEADLINE:.0f} s:\n{child.log_tail()}"
                )
            time.sleep(0.1)


def sign_in_environment(
    sandbox_info: dict[str, Any], partner_token: str, redirect_uri: str
) -> dict[str, str]:
    """The sync service's ClassLink sign-in settings pointing at the sandbox."""
    sso = sandbox_info["sso"]
    return {
        "EW_SYNC_CLASSLINK_CLIENT_ID": sso["client_id"],
        "EW_SYNC_CLASSLINK_CLIENT_SECRET": sso["client_secret"],
        "EW_SYNC_CLASSLINK_SIGNIN_URL": sso["launchpad_url"],
        "EW_SYNC_CLASSLINK_MYINFO_URL": sso["nodeapi_url"],
        "EW_SYNC_CLASSLINK_PARTNER_URL": sandbox_info["proxy_url"],
        "EW_SYNC_CLASSLINK_PARTNER_TOKEN": partner_token,
        "EW_SYNC_CLASSLINK_REDIRECT_URIS": redirect_uri,
    }


def start_stack(database_url: Callable[[str], str], workdir: Path, **sandbox_flags: Any) -> Stack:
    """Start sandbox, roster, sync, worker and gateway; the district exists, nothing is connected."""
    sandbox = start_sandbox(**sandbox_flags)
    gateway_address = free_address()
    base_url = f"http://{gateway_address}"
    broker_url = os.environ.get("EW_TEST_BROKER_URL", "")
    environment = base_environment(
        {
            "EW_JWT_ALLOW_DEV_KEY": "true",
            "EW_SECRET_ALLOW_DEV_KEY": "true",
            "EW_SYNC_ALLOW_INSECURE_HTTP": "true",
            "EW_ROSTER_DATABASE_URL": database_url("roster"),
            "EW_SYNC_DATABASE_URL": database_url("sync"),
            "EW_ROSTER_AUTO_MIGRATE": "true",
            "EW_SYNC_AUTO_MIGRATE": "true",
            "EW_BROKER_URL": broker_url,
            "EW_BROKER_NAMESPACE": f"ew-browser-{uuid.uuid4().hex[:12]}",
            "EW_SYNC_PAGE_TOKEN_KEY": "browser-page-token-key",
            **sign_in_environment(sandbox.info, sandbox.partner_token, f"{base_url}/settings/"),
        }
    )
    for name in list(environment):
        if name.startswith(("EW_JWT_SECRET", "EW_SECRET_KEYS", "EW_TLS_")):
            del environment[name]
    roster_target, sync_target = free_address(), free_address()
    environment |= {"EW_ROSTER_LISTEN_ADDRESS": roster_target, "EW_SYNC_ROSTER_TARGET": roster_target}
    group = ProcessGroup(workdir, environment)
    auth = AuthSettings(allow_dev_key=True)
    token = mint_dev_token(auth, district_id=DISTRICT, role=Role.DISTRICT_ADMIN, plan="district_premium")
    deployment = Deployment(
        group,
        sandbox,
        roster_target,
        sync_target,
        RosterClient(roster_target, timeout=60, metadata=ServiceTokenProvider(auth).metadata),
        SyncClient(sync_target, token=lambda: token, timeout=60),
        DISTRICT,
        bool(broker_url),
    )
    try:
        deployment.children["roster"] = group.start("roster", "services.roster")
        wait_serving(deployment.children["roster"], roster_target)
        deployment.start_sync()
        if deployment.redis:
            deployment.start_worker()
        gateway = group.start(
            "gateway",
            "services.gateway",
            env={
                "EW_GATEWAY_LISTEN_ADDRESS": gateway_address,
                "EW_GATEWAY_SYNC_TARGET": sync_target,
                "EW_GATEWAY_ROSTER_TARGET": roster_target,
                "EW_GATEWAY_HEARTBEAT_SECONDS": "1",
            },
        )
        wait_ready(gateway, base_url)
        deployment.roster.create_district(DISTRICT, "Browser District")
    except BaseException:
        group.stop()
        sandbox.stop()
        raise
    return Stack(deployment, gateway, base_url, token)
