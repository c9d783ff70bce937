"""Fixtures every suite shares: a fresh database per test, on SQLite or on PostgreSQL.

``make test`` runs on SQLite files under pytest's tmp_path. ``make test-integration`` sets
``EW_TEST_DATABASE_URL`` (PostgreSQL) and ``EW_TEST_BROKER_URL`` (Redis): each database the tests
ask for is then created fresh on that server and dropped afterwards. An unreachable server fails
the test; it is never skipped.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from services.common.db import make_engine, normalise_url
from services.sync.migrate import upgrade

DatabaseFactory = Callable[[str], str]


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[DatabaseFactory]:
    """Return a function that makes a new, empty database and gives its URL.

    The argument names the database's purpose ("roster", "sync"); each call makes a new one.
    """
    server_url = os.environ.get("EW_TEST_DATABASE_URL")
    created: list[str] = []

    def make(purpose: str) -> str:
        if not server_url:
            return f"sqlite:///{tmp_path / f'{purpose}-{uuid.uuid4().hex[:8]}.db'}"
        name = f"ew_test_{purpose}_{uuid.uuid4().hex[:12]}"
        admin = create_engine(normalise_url(server_url), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        created.append(name)
        return make_url(normalise_url(server_url)).set(database=name).render_as_string(hide_password=False)

    yield make

    if created:
        admin = create_engine(normalise_url(server_url or ""), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            for name in created:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def sync_engine(database_url: DatabaseFactory) -> Iterator[Engine]:
    """A fresh sync database with every migration applied."""
    engine = make_engine(database_url("sync"))
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def sync_sessions(sync_engine: Engine) -> sessionmaker[Session]:
    """Sessions on ``sync_engine``."""
    return sessionmaker(sync_engine, expire_on_commit=False)


@pytest.fixture(autouse=True)
def hermetic_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Security settings come from each test alone, never from the developer's shell."""
    for name in list(os.environ):
        if name.startswith(("EW_JWT_", "EW_SECRET_", "EW_TLS_")):
            monkeypatch.delenv(name)
