"""Fresh databases for tests: SQLite files in a directory, or databases on ``EW_TEST_DATABASE_URL``.

``make test`` runs on SQLite; ``make test-integration`` sets ``EW_TEST_DATABASE_URL`` (PostgreSQL),
and each database asked for is then created fresh on that server and dropped by ``drop_all``.
An unreachable server fails the test; it is never skipped.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from services.common.db import normalise_url


class FreshDatabases:
    """Makes new, empty databases and drops the server ones it made."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._server_url = os.environ.get("EW_TEST_DATABASE_URL")
        self._created: list[str] = []

    def make(self, purpose: str) -> str:
        """The URL of a new, empty database; ``purpose`` ("roster", "sync") is part of its name."""
        if not self._server_url:
            return f"sqlite:///{self._directory / f'{purpose}-{uuid.uuid4().hex[:8]}.db'}"
        name = f"ew_test_{purpose}_{uuid.uuid4().hex[:12]}"
        admin = create_engine(normalise_url(self._server_url), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        self._created.append(name)
        return (
            make_url(normalise_url(self._server_url)).set(database=name).render_as_string(hide_password=False)
        )

    def drop_all(self) -> None:
        """Drop every server database this made."""
        if not self._created:
            return
        admin = create_engine(normalise_url(self._server_url or ""), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            for name in self._created:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
        self._created.clear()
