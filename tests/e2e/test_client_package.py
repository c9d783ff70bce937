"""The client package installs from the repository, without ``make``, into a fresh virtualenv.

``pip install ./clients`` builds the wheel (its build hook generates the gRPC stubs from
``protos/``) from a local wheelhouse only (``--no-index``), into a virtualenv that has nothing of
this repository; the installed ``ew-sync`` then runs a sync against real servers.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.sync_stack import SyncStack, sync_stack

pytestmark = pytest.mark.timeout(600)

ROOT = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9_.-]+)==([^\s\\;]+)")
# What building and running the package needs; versions come from the project's pins.
PACKAGES = ("setuptools", "grpcio-tools", "grpcio", "grpcio-status", "googleapis-common-protos", "protobuf")
PACKAGES_UNPINNED_HERE = ("rich", "typer")


def run(*command: str | Path, env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    done = subprocess.run(
        [str(part) for part in command], capture_output=True, text=True, timeout=500, env=env, cwd=cwd
    )
    assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Wheels of the package's build and runtime dependencies, at the versions the project pins."""
    folder = tmp_path_factory.mktemp("wheelhouse")
    pins = [
        f"{match[1]}=={match[2]}"
        for requirements in ("runtime.txt", "dev.txt")
        for line in (ROOT / "requirements" / requirements).read_text().splitlines()
        if (match := PIN.match(line))
    ]
    constraints = folder / "constraints.txt"
    constraints.write_text("\n".join(pins) + "\n")
    run(
        sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:", "--dest", folder,
        "-c", constraints, *PACKAGES, *PACKAGES_UNPINNED_HERE,
    )  # fmt: skip
    return folder


@pytest.fixture
def stack(database_url: Callable[[str], str]) -> Iterator[SyncStack]:
    with sync_stack(database_url("roster"), database_url("sync"), schools=3, teachers=20) as running:
        yield running


def test_pip_install_clients_in_a_fresh_virtualenv_gives_typed_stubs_and_a_working_ew_sync(
    tmp_path: Path, wheelhouse: Path, stack: SyncStack
) -> None:
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv)
    python = venv / "bin" / "python"
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    run(
        python, "-m", "pip", "install", "--quiet", "--no-index", "--find-links", wheelhouse, ROOT / "clients",
        env=environment,
    )  # fmt: skip

    where = run(
        python,
        "-c",
        "import ew.client.sync, ew.sync.v1.sync_service_pb2 as stubs, pathlib;"
        "print(stubs.__file__);"
        "print(all((pathlib.Path(m.__file__).parent / 'py.typed').exists() for m in (ew.client.sync,)))",
        env=environment,
        cwd=tmp_path,
    ).split()
    assert where[0].startswith(str(venv)) and where[1] == "True"

    synced = subprocess.run(
        [venv / "bin" / "ew-sync", "--target", stack.server.target, "sync"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=environment | {"EW_TOKEN": stack.token(), "COLUMNS": "200"},
    )
    assert synced.returncode == 0, synced.stdout + synced.stderr
    assert "Teachers added" in synced.stdout
