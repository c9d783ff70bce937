"""Schools can be renamed, archived, merged and removed through change sets; teachers restored and removed.

Schools gain a state (existing ones are ACTIVE), the school they were merged into and a revision
that change sets compare; change sets count the new kinds and stage school changes in their own
table; staged teacher restores carry the state they put back. Roster changes people ask for are
audited in ``audit_events``.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 14:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COUNTS = (
    "schools_renamed",
    "schools_archived",
    "schools_merged",
    "teachers_restored",
    "teachers_removed",
    "schools_removed",
)


def upgrade() -> None:
    with op.batch_alter_table("schools", schema=None) as batch_op:
        batch_op.add_column(sa.Column("state", sa.String(length=16), nullable=False, server_default="ACTIVE"))
        batch_op.add_column(sa.Column("merged_into", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("revision", sa.BigInteger(), nullable=False, server_default="1"))
    with op.batch_alter_table("schools", schema=None) as batch_op:
        batch_op.alter_column("state", server_default=None)
        batch_op.alter_column("revision", server_default=None)
    with op.batch_alter_table("change_sets", schema=None) as batch_op:
        for prefix in ("staged", "applied"):
            for name in COUNTS:
                column = sa.Column(f"{prefix}_{name}", sa.Integer(), nullable=False, server_default="0")
                batch_op.add_column(column)
    with op.batch_alter_table("change_sets", schema=None) as batch_op:
        for prefix in ("staged", "applied"):
            for name in COUNTS:
                batch_op.alter_column(f"{prefix}_{name}", server_default=None)
    with op.batch_alter_table("staged_teachers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("restore_state", sa.String(length=16), nullable=True))
    op.create_table(
        "staged_school_changes",
        sa.Column("change_set_id", sa.String(length=36), nullable=False),
        sa.Column("school_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("read_revision", sa.BigInteger(), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=True),
        sa.Column("into_school_id", sa.String(length=36), nullable=True),
        sa.Column("into_read_revision", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["change_set_id"],
            ["change_sets.id"],
            name=op.f("fk_staged_school_changes_change_set_id_change_sets"),
        ),
        sa.PrimaryKeyConstraint("change_set_id", "school_id", name=op.f("pk_staged_school_changes")),
    )

    op.create_table(
        "audit_events",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("district_id", sa.String(length=64), nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=255), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index("ix_audit_events_district_id_time", ["district_id", "time", "id"], unique=False)


def downgrade() -> None:
    op.drop_table("audit_events")
    op.drop_table("staged_school_changes")
    with op.batch_alter_table("staged_teachers", schema=None) as batch_op:
        batch_op.drop_column("restore_state")
    with op.batch_alter_table("change_sets", schema=None) as batch_op:
        for prefix in ("staged", "applied"):
            for name in COUNTS:
                batch_op.drop_column(f"{prefix}_{name}")
    with op.batch_alter_table("schools", schema=None) as batch_op:
        batch_op.drop_column("revision")
        batch_op.drop_column("merged_into")
        batch_op.drop_column("state")
