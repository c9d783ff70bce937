"""Fixtures of the fault suite (``make test-faults``): real processes on this machine's PostgreSQL and Redis.

Every case starts its own deployment (``tests.support.deployment``): the OneRoster sandbox, the
roster and sync services and a Dramatiq worker on Redis, on fresh databases. A case that needs to
restart Redis or PostgreSQL starts one of its own. Without ``EW_TEST_DATABASE_URL`` and
``EW_TEST_BROKER_URL`` every case fails: the suite is never skipped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from services.common.db import normalise_url
from services.common.processes import free_port
from tests.faults.report import OUTCOMES, Outcome, table
from tests.support.deployment import Deployment, start_deployment

REQUIRED = ("EW_TEST_DATABASE_URL", "EW_TEST_BROKER_URL")

Launch = Callable[..., Deployment]


@pytest.fixture(scope="module", autouse=True)
def services_named() -> None:
    """Fail (never skip) when the suite is not pointed at PostgreSQL and Redis."""
    missing = [name for name in REQUIRED if not os.environ.get(name)]
    if missing:
        pytest.fail(f"the fault suite needs {', '.join(missing)}: run it with `make test-faults`")


def _new_database(server_url: str, purpose: str) -> tuple[str, str]:
    """A fresh database on the machine's PostgreSQL: (name, URL)."""
    name = f"ew_faults_{purpose}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(normalise_url(server_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return name, make_url(normalise_url(server_url)).set(database=name).render_as_string(hide_password=False)


def _drop_databases(server_url: str, names: list[str]) -> None:
    admin = create_engine(normalise_url(server_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for name in names:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="module")
def launch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Launch]:
    """Start deployments that live for the module (a case leaves its deployment whole for the next).

    ``roster_url``, ``sync_url`` and ``broker_url`` default to fresh databases on this machine's
    PostgreSQL and to its Redis.
    """
    server_url = os.environ.get("EW_TEST_DATABASE_URL", "")
    started: list[Deployment] = []
    created: list[str] = []

    def database(purpose: str) -> str:
        name, url = _new_database(server_url, purpose)
        created.append(name)
        return url

    def make(
        *,
        roster_url: str | None = None,
        sync_url: str | None = None,
        broker_url: str | None = None,
        sync_env: dict[str, str] | None = None,
        **sandbox_flags: Any,
    ) -> Deployment:
        deployment = start_deployment(
            tmp_path_factory.mktemp("deployment"),
            roster_url=roster_url or database("roster"),
            sync_url=sync_url or database("sync"),
            broker_url=broker_url or os.environ["EW_TEST_BROKER_URL"],
            sync_env=sync_env,
            **sandbox_flags,
        )
        started.append(deployment)
        return deployment

    yield make

    for deployment in started:
        deployment.stop()
    if created:
        _drop_databases(server_url, created)


@pytest.fixture
def record(request: pytest.FixtureRequest) -> Callable[[str, float, str, str], None]:
    """Record this case's outcome for the session's table (the case is the test's id)."""
    name = request.node.name.removeprefix("test_")

    def add(state: str, seconds: float, roster: str, message: str) -> None:
        OUTCOMES.append(Outcome(name, state, seconds, roster, message))

    return add


class OwnRedis:
    """A redis-server of the test's own on a spare port, which the test may restart."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start it and wait until it answers PING (redis-py retries the connection meanwhile)."""
        server = shutil.which("redis-server")
        assert server, "redis-server is not installed; the fault suite restarts a Redis of its own"
        self.process = subprocess.Popen(
            [server, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            cwd=self.folder,
            stdout=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=1)
        deadline = time.monotonic() + 30
        try:
            while True:
                try:
                    if client.ping():
                        return
                except redis.ConnectionError:
                    assert self.process.poll() is None, "redis-server exited at start"
                    assert time.monotonic() < deadline, "redis-server did not answer within 30 s"
                    time.sleep(0.05)  # polling pace only: PING answering is what is waited for
        finally:
            client.close()

    def stop(self) -> None:
        """SIGKILL: nothing is saved, every client is cut off."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="module")
def own_redis() -> Iterator[OwnRedis]:
    """A Redis of the test's own, stopped afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="ew-redis-"))
    server = OwnRedis(folder)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Each case: how its run ended, after how long, with which message, and the roster's verdict."""
    if OUTCOMES:
        terminalreporter.section("fault cases")
        for line in table():
            terminalreporter.write_line(line)
