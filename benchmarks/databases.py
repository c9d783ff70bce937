"""Fresh databases for one benchmark: SQLite files in a temporary folder, or new PostgreSQL databases.

Every measurement starts from empty databases that are dropped afterwards, so runs never see each
other's rows and a benchmark never touches the databases of tests running beside it.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from services.common.db import make_engine, normalise_url
from services.roster import migrate

POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
BACKENDS = ("sqlite", "postgresql")


def postgres_server() -> str:
    """The PostgreSQL server the benchmarks create their databases on (``EW_BENCH_DATABASE_URL``)."""
    return os.environ.get("EW_BENCH_DATABASE_URL", POSTGRES)


@contextmanager
def empty_databases(backend: str, *purposes: str) -> Iterator[list[str]]:
    """One new, empty database URL per purpose on ``backend``; all removed afterwards."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}")
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="ew-bench-db-") as folder:
            yield [f"sqlite:///{Path(folder) / f'{purpose}.db'}" for purpose in purposes]
        return
    names = [f"ew_bench_{purpose}_{uuid.uuid4().hex[:8]}" for purpose in purposes]
    admin = create_engine(normalise_url(postgres_server()), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for name in names:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    base = make_url(normalise_url(postgres_server()))
    try:
        yield [base.set(database=name).render_as_string(hide_password=False) for name in names]
    finally:
        with admin.connect() as conn:
            for name in names:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def fresh_roster_database(backend: str) -> Iterator[str]:
    """A new, empty database with the roster schema migrated in, for the bare floors."""
    with empty_databases(backend, "floor") as (url,):
        engine = make_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
        yield url
