"""Fixtures of the end-to-end suite (see ``tests.support.deployment``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from ew.client.roster import RosterClient
from ew.client.sync import SyncClient

from services.common.auth import AuthSettings, Role, ServiceTokenProvider
from services.common.devtoken import mint_dev_token
from services.common.processes import ProcessGroup, base_environment, free_address, wait_serving
from tests.support.deployment import DISTRICT, Deployment
from tests.support.sandbox import SandboxHandle, start_sandbox

NODE_EXAMPLES = Path(__file__).resolve().parents[2] / "clients" / "node"


@pytest.fixture(scope="session")
def node_examples() -> Path:
    """``clients/node`` with its packages installed (once per session)."""
    for tool in ("node", "npm"):
        assert shutil.which(tool), f"{tool} is not installed; the Node client tests need Node.js 18 or newer"
    subprocess.run(
        ["npm", "install", "--prefix", str(NODE_EXAMPLES), "--no-audit", "--no-fund", "--silent"],
        check=True,
        timeout=240,
    )
    return NODE_EXAMPLES


@pytest.fixture
def deploy(database_url: Callable[[str], str], tmp_path: Path) -> Iterator[Callable[..., Deployment]]:
    """Start a deployment with sandbox flags and sync settings; everything stops after the test.

    ``broker_url`` overrides ``EW_TEST_BROKER_URL`` (a RabbitMQ URL, say); with a broker URL the runs
    execute in a separate worker process.
    """
    started: list[tuple[ProcessGroup, SandboxHandle, RosterClient, SyncClient]] = []

    def make(
        *, sync_env: dict[str, str] | None = None, broker_url: str | None = None, **sandbox_flags: Any
    ) -> Deployment:
        if broker_url is None:
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
                "EW_BROKER_NAMESPACE": f"ew-e2e-{uuid.uuid4().hex[:12]}",
                "EW_SYNC_PAGE_TOKEN_KEY": "e2e-page-token-key",
                "EW_SYNC_RUN_STALE_SECONDS": "3",
                "EW_SYNC_RECOVERY_INTERVAL_SECONDS": "0.5",
                **(sync_env or {}),
            }
        )
        for name in list(environment):
            if name.startswith(("EW_JWT_SECRET", "EW_SECRET_KEYS", "EW_TLS_")):
                del environment[name]
        group = ProcessGroup(tmp_path, environment)
        sandbox = start_sandbox(**sandbox_flags)
        roster_target = free_address()
        sync_target = free_address()
        environment["EW_ROSTER_LISTEN_ADDRESS"] = roster_target
        environment["EW_SYNC_ROSTER_TARGET"] = roster_target
        auth = AuthSettings(allow_dev_key=True)
        roster = RosterClient(roster_target, timeout=60, metadata=ServiceTokenProvider(auth).metadata)
        token = mint_dev_token(auth, district_id=DISTRICT, role=Role.DISTRICT_ADMIN, plan="district_premium")
        sync = SyncClient(sync_target, token=lambda: token, timeout=60)
        started.append((group, sandbox, roster, sync))
        deployment = Deployment(
            group, sandbox, roster_target, sync_target, roster, sync, DISTRICT, bool(broker_url)
        )
        roster_child = group.start("roster", "services.roster")
        wait_serving(roster_child, roster_target)
        deployment.children["roster"] = roster_child
        deployment.start_sync()
        if deployment.redis:
            deployment.start_worker()
        roster.create_district(DISTRICT, "End-to-end District")
        return deployment

    yield make

    for group, sandbox, roster, sync in started:
        sync.close()
        roster.close()
        group.stop()
        sandbox.stop()
