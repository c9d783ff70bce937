"""Preview jobs (runs with trigger PREVIEW) have their own one-active-per-district rule.

A district may have one active sync run and, beside it, one active preview job: the partial unique
index of active runs leaves previews out, and a second one holds them.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 18:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACTIVE = "state IN ('QUEUED', 'RUNNING')"
ACTIVE_SYNC = f"{ACTIVE} AND \"trigger\" != 'PREVIEW'"
ACTIVE_PREVIEW = f"{ACTIVE} AND \"trigger\" = 'PREVIEW'"


def _create(name: str, where: str) -> None:
    op.create_index(
        name,
        "sync_runs",
        ["district_id"],
        unique=True,
        sqlite_where=sa.text(where),
        postgresql_where=sa.text(where),
    )


def upgrade() -> None:
    op.drop_index("uq_sync_runs_active_district", table_name="sync_runs")
    _create("uq_sync_runs_active_district", ACTIVE_SYNC)
    _create("uq_sync_runs_active_preview_district", ACTIVE_PREVIEW)


def downgrade() -> None:
    op.drop_index("uq_sync_runs_active_preview_district", table_name="sync_runs")
    op.drop_index("uq_sync_runs_active_district", table_name="sync_runs")
    # Previews were outside the rule: the old index holds only once they have ended.
    op.execute(sa.text(f"UPDATE sync_runs SET state = 'FAILED' WHERE {ACTIVE} AND \"trigger\" = 'PREVIEW'"))
    _create("uq_sync_runs_active_district", ACTIVE)
