"""Apply the roster's Alembic migrations, or check that models and migrations agree.

``python -m services.roster.migrate`` upgrades EW_ROSTER_DATABASE_URL to head;
``python -m services.roster.migrate --check`` migrates a scratch SQLite database and fails when the
models describe anything the migrations do not create.
"""

from __future__ import annotations

import sys
from pathlib import Path

from services.common.migrations import Migrations
from services.roster.db import roster_engine
from services.roster.models import Base
from services.roster.settings import load_settings

MIGRATIONS = Migrations(
    "Roster",
    Path(__file__).parent / "migrations",
    Base.metadata,
    roster_engine,
    lambda: load_settings().database_url,
    __doc__ or "",
)
upgrade = MIGRATIONS.upgrade
drift = MIGRATIONS.drift
main = MIGRATIONS.main  # entry point of ``python -m services.roster.migrate``

if __name__ == "__main__":
    sys.exit(main())
