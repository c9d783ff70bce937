"""``python -m services.roster`` as a real process: migrations, bound address, health, SIGTERM."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from ew.client.errors import UnauthenticatedError
from ew.client.roster import RosterClient
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common.auth import AuthSettings, ServiceTokenProvider

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def environment(database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EW_ROSTER_", "EW_JWT_", "EW_TLS_"))}
    env.update(
        PYTHONPATH=f"{ROOT}{os.pathsep}{ROOT / 'clients' / 'src'}",
        EW_ROSTER_DATABASE_URL=database_url,
        EW_ROSTER_LISTEN_ADDRESS="127.0.0.1:0",
        EW_ROSTER_GRACE_PERIOD="5",
        EW_JWT_ALLOW_DEV_KEY="true",
    )
    return env


def test_the_service_migrates_serves_and_stops_on_sigterm(database_url: Callable[[str], str]) -> None:
    env = environment(database_url("roster"))
    migrated = subprocess.run(
        [sys.executable, "-m", "services.roster.migrate"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert migrated.returncode == 0, migrated.stderr
    process = subprocess.Popen(
        [sys.executable, "-m", "services.roster"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        for line in process.stdout or ():
            lines.put(line)

    threading.Thread(target=read, daemon=True).start()
    try:
        line = lines.get(timeout=60)
        assert line.startswith("Roster service listening on 127.0.0.1:")
        address = line.rsplit(" ", 1)[1].strip()
        with grpc.insecure_channel(address) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            assert health.Check(health_pb2.HealthCheckRequest(), timeout=30).status == (
                health_pb2.HealthCheckResponse.SERVING
            )
        service = ServiceTokenProvider(AuthSettings(allow_dev_key=True))
        with RosterClient(address, timeout=30, metadata=service.metadata) as client:
            assert client.create_district("d1", "District One").name == "districts/d1"
        with RosterClient(address, timeout=30) as anonymous, pytest.raises(UnauthenticatedError):
            anonymous.get_district("d1")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_bad_settings_fail_fast_with_the_variable_named(tmp_path: Path) -> None:
    env = environment(f"sqlite:///{tmp_path / 'roster.db'}")
    env["EW_ROSTER_MAX_WORKERS"] = "0"
    env["EW_ROSTER_DATABASE_URL"] = "mysql://nope"
    result = subprocess.run(
        [sys.executable, "-m", "services.roster"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "EW_ROSTER_MAX_WORKERS" in result.stderr and "EW_ROSTER_DATABASE_URL" in result.stderr


def test_missing_token_keys_fail_fast_naming_the_variable(tmp_path: Path) -> None:
    env = environment(f"sqlite:///{tmp_path / 'roster.db'}")
    del env["EW_JWT_ALLOW_DEV_KEY"]
    result = subprocess.run(
        [sys.executable, "-m", "services.roster"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "Invalid roster security settings" in result.stderr and "EW_JWT_SECRET" in result.stderr
