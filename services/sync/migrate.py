"""Apply the sync service's Alembic migrations, or check that models and migrations agree.

``python -m services.sync.migrate`` upgrades EW_SYNC_DATABASE_URL to head;
``python -m services.sync.migrate --check`` migrates a scratch SQLite database and fails when the
models describe anything the migrations do not create.
"""

from __future__ import annotations

import sys
from pathlib import Path

from services.common.db import make_engine
from services.common.migrations import Migrations
from services.sync.settings import load_settings
from services.sync.store.models import Base

MIGRATIONS = Migrations(
    "Sync",
    Path(__file__).parent / "store" / "migrations",
    Base.metadata,
    make_engine,
    lambda: load_settings().database_url,
    __doc__ or "",
)
upgrade = MIGRATIONS.upgrade
drift = MIGRATIONS.drift
main = MIGRATIONS.main  # entry point of ``python -m services.sync.migrate``

if __name__ == "__main__":
    sys.exit(main())
