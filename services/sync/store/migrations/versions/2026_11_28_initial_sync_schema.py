"""Initial sync schema: connections, sign-in states, mappings, links, plans, runs and events.

Revision ID: 0001
Revises:
Create Date: 2026-11-28 19:03:04.882963
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "connections",
        sa.Column("district_id", sa.String(length=64), nullable=False),
        sa.Column("server_url", sa.String(length=2048), nullable=False),
        sa.Column("auth_method", sa.String(length=32), nullable=False),
        sa.Column("oneroster_version", sa.String(length=32), nullable=False),
        sa.Column("client_id", sa.String(length=512), nullable=False),
        sa.Column("secret_ciphertext", sa.Text(), nullable=False),
        sa.Column("secret_hint", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=255), nullable=True),
        sa.Column("connect_method", sa.String(length=32), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_success_time", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("district_id", name=op.f("pk_connections")),
    )
    op.create_table(
        "plans",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("district_id", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("read_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expire_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("summary_json", sa.Text(), nullable=False),
        sa.Column("guard_json", sa.Text(), nullable=False),
        sa.Column("item_count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plans")),
    )
    with op.batch_alter_table("plans", schema=None) as batch_op:
        batch_op.create_index(
            "ix_plans_district_id_create_time", ["district_id", "create_time"], unique=False
        )

    op.create_table(
        "school_mappings",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("district_id", sa.String(length=64), nullable=False),
        sa.Column("classlink_school_id", sa.String(length=255), nullable=False),
        sa.Column("ew_school_id", sa.String(length=36), nullable=True),
        sa.Column("origin", sa.String(length=32), nullable=False),
        sa.Column("classlink_name", sa.String(length=300), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_school_mappings")),
        sa.UniqueConstraint(
            "district_id",
            "classlink_school_id",
            name=op.f("uq_school_mappings_district_id_classlink_school_id"),
        ),
        sa.UniqueConstraint(
            "district_id", "ew_school_id", name=op.f("uq_school_mappings_district_id_ew_school_id")
        ),
    )
    op.create_table(
        "sign_in_states",
        sa.Column("state_hash", sa.String(length=64), nullable=False),
        sa.Column("district_id", sa.String(length=64), nullable=False),
        sa.Column("redirect_uri", sa.String(length=2048), nullable=False),
        sa.Column("requested_by", sa.String(length=255), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expire_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_time", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("state_hash", name=op.f("pk_sign_in_states")),
    )
    op.create_table(
        "teacher_links",
        sa.Column("district_id", sa.String(length=64), nullable=False),
        sa.Column("classlink_user_id", sa.String(length=255), nullable=False),
        sa.Column("ew_teacher_id", sa.String(length=36), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("district_id", "classlink_user_id", name=op.f("pk_teacher_links")),
        sa.UniqueConstraint(
            "district_id", "ew_teacher_id", name=op.f("uq_teacher_links_district_id_ew_teacher_id")
        ),
    )
    op.create_table(
        "plan_items",
        sa.Column("plan_id", sa.String(length=36), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("classlink_id", sa.String(length=255), nullable=True),
        sa.Column("ew_id", sa.String(length=36), nullable=True),
        sa.Column("display_name", sa.String(length=300), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("details_json", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("skip_reason", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(
            ["plan_id"], ["plans.id"], name=op.f("fk_plan_items_plan_id_plans"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("plan_id", "position", name=op.f("pk_plan_items")),
    )
    with op.batch_alter_table("plan_items", schema=None) as batch_op:
        batch_op.create_index(
            "ix_plan_items_plan_id_kind_position", ["plan_id", "kind", "position"], unique=False
        )

    op.create_table(
        "sync_runs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("district_id", sa.String(length=64), nullable=False),
        sa.Column("trigger", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("phase", sa.String(length=32), nullable=False),
        sa.Column("percent", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.String(length=36), nullable=True),
        sa.Column("change_set_name", sa.String(length=255), nullable=True),
        sa.Column("approved_run_id", sa.String(length=36), nullable=True),
        sa.Column("requested_by", sa.String(length=255), nullable=False),
        sa.Column("summary_json", sa.Text(), nullable=True),
        sa.Column("guard_json", sa.Text(), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("worker_id", sa.String(length=255), nullable=True),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("start_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_sequence", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["plan_id"], ["plans.id"], name=op.f("fk_sync_runs_plan_id_plans")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_runs")),
    )
    with op.batch_alter_table("sync_runs", schema=None) as batch_op:
        batch_op.create_index(
            "ix_sync_runs_district_id_create_time", ["district_id", "create_time"], unique=False
        )
        batch_op.create_index(
            "uq_sync_runs_active_district",
            ["district_id"],
            unique=True,
            sqlite_where=sa.text("state IN ('QUEUED', 'RUNNING')"),
            postgresql_where=sa.text("state IN ('QUEUED', 'RUNNING')"),
        )

    op.create_table(
        "sync_run_events",
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("phase", sa.String(length=32), nullable=False),
        sa.Column("percent", sa.Integer(), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("summary_json", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"], ["sync_runs.id"], name=op.f("fk_sync_run_events_run_id_sync_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", "sequence", name=op.f("pk_sync_run_events")),
    )


def downgrade() -> None:
    op.drop_table("sync_run_events")
    with op.batch_alter_table("sync_runs", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_sync_runs_active_district",
            sqlite_where=sa.text("state IN ('QUEUED', 'RUNNING')"),
            postgresql_where=sa.text("state IN ('QUEUED', 'RUNNING')"),
        )
        batch_op.drop_index("ix_sync_runs_district_id_create_time")

    op.drop_table("sync_runs")
    with op.batch_alter_table("plan_items", schema=None) as batch_op:
        batch_op.drop_index("ix_plan_items_plan_id_kind_position")

    op.drop_table("plan_items")
    op.drop_table("teacher_links")
    op.drop_table("sign_in_states")
    op.drop_table("school_mappings")
    with op.batch_alter_table("plans", schema=None) as batch_op:
        batch_op.drop_index("ix_plans_district_id_create_time")

    op.drop_table("plans")
    op.drop_table("connections")
