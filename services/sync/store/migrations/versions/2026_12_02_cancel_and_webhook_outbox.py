"""Runs can be cancelled (``cancel_requested``); webhook events wait in an outbox until delivered.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 14:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sync_runs") as batch_op:
        batch_op.add_column(
            sa.Column("cancel_requested", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    op.create_table(
        "webhook_outbox",
        sa.Column("position", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("district_id", sa.String(length=64), nullable=False),
        sa.Column("event_type", sa.String(length=32), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivered_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("position", name=op.f("pk_webhook_outbox")),
        sa.UniqueConstraint("event_id", name=op.f("uq_webhook_outbox_event_id")),
    )
    with op.batch_alter_table("webhook_outbox") as batch_op:
        batch_op.create_index(
            "ix_webhook_outbox_delivered_time_next_attempt_time",
            ["delivered_time", "next_attempt_time"],
            unique=False,
        )
        batch_op.create_index(
            "ix_webhook_outbox_district_id_position", ["district_id", "position"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("webhook_outbox") as batch_op:
        batch_op.drop_index("ix_webhook_outbox_district_id_position")
        batch_op.drop_index("ix_webhook_outbox_delivered_time_next_attempt_time")
    op.drop_table("webhook_outbox")
    with op.batch_alter_table("sync_runs") as batch_op:
        batch_op.drop_column("cancel_requested")
