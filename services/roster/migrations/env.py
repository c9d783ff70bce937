"""Alembic environment for the roster database; run through ``services.roster.migrate``."""

from __future__ import annotations

from typing import Any, Literal

from alembic.autogenerate.api import AutogenContext

from services.common.db import UTCDateTime
from services.common.migrations import run_migrations_online
from services.roster.models import Base


def _render_item(kind: str, item: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Write UTCDateTime columns as plain timezone-aware DateTime, so migrations never import models."""
    if kind == "type" and isinstance(item, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


run_migrations_online(Base.metadata, render_item=_render_item)
