"""Running a service's in-package Alembic migrations, and checking them against its models.

Each service owns its database and its migrations; what they share is how Alembic is driven (no
alembic.ini: the config is built here), the drift check CI runs, and the command line of
``python -m services.<service>.migrate [--check]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command, context
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, Engine, MetaData
from sqlalchemy.engine import make_url

from services.common.db import make_engine
from services.common.secret_files import apply_secret_files


def ensure_sqlite_folder(url: str) -> None:
    """Create the folder of a SQLite file database (the embedded defaults live in ./var/)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)


def run_migrations_online(metadata: MetaData, **options: Any) -> None:
    """Run an Alembic ``env.py``: on the caller's connection when given (tests, checks), else the URL.

    ``options`` go to ``context.configure`` beside the ones every service uses (e.g. ``render_item``).
    """
    config = context.config

    def run(connection: Connection) -> None:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
            **options,
        )
        with context.begin_transaction():
            context.run_migrations()

    connection = config.attributes.get("connection")
    if connection is not None:
        run(connection)
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
    try:
        with engine.connect() as conn:
            run(conn)
    finally:
        engine.dispose()


@dataclass(frozen=True)
class Migrations:
    """One service's migrations: where they live, the models they must match, how to connect.

    ``database_url`` reads the configured database (from the service's settings) and ``description``
    is the help of its ``migrate`` command line.
    """

    label: str
    directory: Path
    metadata: MetaData
    engine: Callable[[str], Engine]
    database_url: Callable[[], str]
    description: str = ""

    def alembic_config(self, url: str) -> Config:
        """An Alembic config for these migrations."""
        config = Config()
        config.set_main_option("script_location", str(self.directory))
        config.set_main_option("file_template", "%%(year)d_%%(month).2d_%%(day).2d_%%(slug)s")
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
        return config

    def upgrade(self, engine: Engine) -> None:
        """Bring the database behind ``engine`` to the newest revision."""
        with engine.begin() as connection:
            config = self.alembic_config(engine.url.render_as_string(hide_password=False))
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def drift(self, engine: Engine) -> list[object]:
        """Differences between the models and the migrated schema behind ``engine`` (empty when none)."""
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return list(compare_metadata(context, self.metadata))

    def check(self) -> int:
        """Migrate a scratch SQLite database and report any drift from the models."""
        with tempfile.TemporaryDirectory() as scratch:
            engine = self.engine(f"sqlite:///{Path(scratch) / 'check.db'}")
            try:
                self.upgrade(engine)
                differences = self.drift(engine)
            finally:
                engine.dispose()
        if differences:
            print(f"{self.label} models and migrations differ; add a migration for:", file=sys.stderr)
            for difference in differences:
                print(f"  {difference}", file=sys.stderr)
            return 1
        print(f"{self.label} migrations match the models.")
        return 0

    def main(self, argv: list[str] | None = None) -> int:
        """The command line: upgrade the configured database, or ``--check`` for drift."""
        parser = argparse.ArgumentParser(
            description=self.description, formatter_class=argparse.RawTextHelpFormatter
        )
        parser.add_argument("--check", action="store_true", help="fail when models and migrations drift")
        args = parser.parse_args(argv)
        if args.check:
            return self.check()
        apply_secret_files()
        url = self.database_url()
        ensure_sqlite_folder(url)
        engine = self.engine(url)
        try:
            self.upgrade(engine)
        finally:
            engine.dispose()
        print(f"{self.label} database migrated: {engine.url.render_as_string(hide_password=True)}")
        return 0
