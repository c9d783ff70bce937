"""Fixtures of the end-to-end suite (see ``tests.support.deployment``)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.deployment import Deployment, start_deployment

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
    started: list[Deployment] = []

    def make(
        *, sync_env: dict[str, str] | None = None, broker_url: str | None = None, **sandbox_flags: Any
    ) -> Deployment:
        deployment = start_deployment(
            tmp_path,
            roster_url=database_url("roster"),
            sync_url=database_url("sync"),
            broker_url=os.environ.get("EW_TEST_BROKER_URL", "") if broker_url is None else broker_url,
            sync_env=sync_env,
            **sandbox_flags,
        )
        started.append(deployment)
        return deployment

    yield make

    for deployment in started:
        deployment.stop()
