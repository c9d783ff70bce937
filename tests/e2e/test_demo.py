"""`make run` works: the demo runs the whole job with real processes on a small district and exits 0."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.e2e


def demo_environment() -> dict[str, str]:
    """This environment without any service settings: the demo brings its own."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(
            ("EW_JWT_", "EW_SECRET_", "EW_TLS_", "EW_SYNC_", "EW_ROSTER_", "EW_BROKER_", "EW_GATEWAY_")
        )
    }
    environment["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "clients" / "src")])
    return environment


def test_the_demo_connects_maps_previews_syncs_twice_and_leaves_no_process_behind(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"

    demo = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "services.demo",
            "--schools",
            "6",
            "--teachers",
            "80",
            "--workdir",
            str(workdir),
        ],
        cwd=REPO_ROOT,
        env=demo_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        output, _ = demo.communicate(timeout=240)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()

    assert demo.returncode == 0, output
    assert "Connected Successfully! Your ClassLink account is connected." in output
    assert "Mapped by hand" in output
    assert "AutoSync" in output and "Next run (UTC)" in output
    assert "Second sync" in output and "Demo finished" in output
    assert "through the gateway: 2 succeeded runs" in output
    assert "/settings/#token=" in output
    assert started_by(workdir) == []


def started_by(workdir: Path) -> list[int]:
    """Processes still running with the demo's environment (it points their databases at workdir)."""
    pids = []
    for process in psutil.process_iter():
        try:
            if str(workdir) in process.environ().get("EW_SYNC_DATABASE_URL", ""):
                pids.append(process.pid)
        except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
    return pids


def test_ctrl_c_while_serving_stops_every_process(tmp_path: Path) -> None:
    workdir = tmp_path / "serve"
    demo = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "services.demo",
            "--schools",
            "3",
            "--teachers",
            "20",
            "--workdir",
            str(workdir),
        ]
        + ["--serve"],
        cwd=REPO_ROOT,
        env=demo_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # Python keeps SIGINT ignored if its parent ignored it; a terminal's Ctrl-C never is.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        assert demo.stdout is not None
        lines = []
        for line in demo.stdout:
            lines.append(line)
            if "Ctrl-C stops everything" in line:
                break
        assert started_by(workdir), "".join(lines)

        demo.send_signal(signal.SIGINT)
        demo.wait(timeout=60)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()

    assert demo.returncode == 130
    assert started_by(workdir) == []


def test_a_service_that_cannot_start_fails_the_demo_with_its_reason_and_stops_the_others(
    tmp_path: Path,
) -> None:
    workdir = tmp_path / "broken"
    environment = demo_environment() | {"EW_SYNC_GUARD_FRACTION": "5"}

    demo = subprocess.run(
        [
            sys.executable,
            "-m",
            "services.demo",
            "--schools",
            "3",
            "--teachers",
            "20",
            "--workdir",
            str(workdir),
        ],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert demo.returncode == 1, demo.stdout
    assert "Demo failed: sync exited" in demo.stdout and "EW_SYNC_GUARD_FRACTION" in demo.stdout
    assert started_by(workdir) == []
