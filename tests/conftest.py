"""Fixtures every suite shares: a fresh database per test, on SQLite or on PostgreSQL.

``make test`` runs on SQLite files under pytest's tmp_path. ``make test-integration`` sets
``EW_TEST_DATABASE_URL`` (PostgreSQL) and ``EW_TEST_BROKER_URL`` (Redis): each database the tests
ask for is then created fresh on that server and dropped afterwards. An unreachable server fails
the test; it is never skipped.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from services.common.db import make_engine
from services.sync.migrate import upgrade
from tests.support.databases import FreshDatabases

DatabaseFactory = Callable[[str], str]


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[DatabaseFactory]:
    """Return a function that makes a new, empty database and gives its URL.

    The argument names the database's purpose ("roster", "sync"); each call makes a new one.
    """
    databases = FreshDatabases(tmp_path)
    yield databases.make
    databases.drop_all()


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
