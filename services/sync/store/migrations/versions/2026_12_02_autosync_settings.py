"""AutoSync: each district's schedule (cadence, day, hour, time zone, next run) and its pause windows.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 14:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "autosync_settings",
        sa.Column("district_id", sa.String(length=64), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("cadence", sa.String(length=32), nullable=False),
        sa.Column("day", sa.Integer(), nullable=False),
        sa.Column("hour", sa.Integer(), nullable=False),
        sa.Column("time_zone", sa.String(length=64), nullable=False),
        sa.Column("next_run_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_auto_run_id", sa.String(length=36), nullable=True),
        sa.Column("update_by", sa.String(length=255), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("district_id", name=op.f("pk_autosync_settings")),
    )
    with op.batch_alter_table("autosync_settings", schema=None) as batch_op:
        batch_op.create_index("ix_autosync_settings_next_run_time", ["next_run_time"], unique=False)
    op.create_table(
        "autosync_pauses",
        sa.Column("district_id", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(
            ["district_id"],
            ["autosync_settings.district_id"],
            name=op.f("fk_autosync_pauses_district_id_autosync_settings"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("district_id", "position", name=op.f("pk_autosync_pauses")),
    )


def downgrade() -> None:
    op.drop_table("autosync_pauses")
    with op.batch_alter_table("autosync_settings", schema=None) as batch_op:
        batch_op.drop_index("ix_autosync_settings_next_run_time")
    op.drop_table("autosync_settings")
