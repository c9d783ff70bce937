"""Apply the roster's Alembic migrations, or check that models and migrations agree.

``python -m services.roster.migrate`` upgrades EW_ROSTER_DATABASE_URL to head;
``python -m services.roster.migrate --check`` migrates a scratch SQLite database and fails when the
models describe anything the migrations do not create.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from services.roster.db import roster_engine
from services.roster.models import Base
from services.roster.settings import load_settings

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    """An Alembic config for this package's migrations (no alembic.ini needed)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("file_template", "%%(year)d_%%(month).2d_%%(day).2d_%%(slug)s")
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def ensure_sqlite_folder(url: str) -> None:
    """Create the folder of a SQLite file database (the embedded default lives in ./var/)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)


def upgrade(engine: Engine) -> None:
    """Bring the database behind ``engine`` to the newest revision."""
    with engine.begin() as connection:
        config = alembic_config(engine.url.render_as_string(hide_password=False))
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def drift(engine: Engine) -> list[object]:
    """Differences between the models and the migrated schema behind ``engine`` (empty when none)."""
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))


def check() -> int:
    """Migrate a scratch SQLite database and report any drift from the models."""
    with tempfile.TemporaryDirectory() as scratch:
        engine = roster_engine(f"sqlite:///{Path(scratch) / 'check.db'}")
        try:
            upgrade(engine)
            differences = drift(engine)
        finally:
            engine.dispose()
    if differences:
        print("Roster models and migrations differ; add a migration for:", file=sys.stderr)
        for difference in differences:
            print(f"  {difference}", file=sys.stderr)
        return 1
    print("Roster migrations match the models.")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m services.roster.migrate``."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--check", action="store_true", help="fail when models and migrations drift")
    args = parser.parse_args(argv)
    if args.check:
        return check()
    settings = load_settings()
    ensure_sqlite_folder(settings.database_url)
    engine = roster_engine(settings.database_url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    print(f"Roster database migrated: {engine.url.render_as_string(hide_password=True)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
