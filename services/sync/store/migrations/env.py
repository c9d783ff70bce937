"""Alembic environment for the sync database; run through ``services.sync.migrate``."""

from __future__ import annotations

from services.common.migrations import run_migrations_online
from services.sync.store.models import Base

run_migrations_online(Base.metadata)
