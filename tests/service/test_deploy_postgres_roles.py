"""deploy/postgres-init.sql on a PostgreSQL cluster of the test's own: one role per service database."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from services.common.db import normalise_url
from tests.support.postgres import own_postgres

pytestmark = pytest.mark.timeout(120)

INIT_SQL = Path(__file__).resolve().parents[2] / "deploy" / "postgres-init.sql"


def connects(url: str) -> bool:
    engine = create_engine(normalise_url(url))
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return True
    except OperationalError:
        return False
    finally:
        engine.dispose()


def test_each_service_role_reaches_its_own_database_only() -> None:
    with own_postgres() as postgres:
        script = postgres.folder / "init.sql"
        script.write_text(INIT_SQL.read_text())
        passwords = ("-v", "roster_password=r-pw", "-v", "sync_password=s-pw")
        postgres.run(
            "psql", "-h", "127.0.0.1", "-p", str(postgres.port), "-U", "postgres", "-d", "postgres",
            "-v", "ON_ERROR_STOP=1", *passwords, "-f", str(script),
        )  # fmt: skip
        base = f"127.0.0.1:{postgres.port}"
        assert connects(f"postgresql://ew_roster:r-pw@{base}/ew_roster")
        assert connects(f"postgresql://ew_sync:s-pw@{base}/ew_sync")
        assert not connects(f"postgresql://ew_sync:s-pw@{base}/ew_roster")
        assert not connects(f"postgresql://ew_roster:r-pw@{base}/ew_sync")
