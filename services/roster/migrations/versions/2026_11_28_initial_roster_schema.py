"""Initial roster schema: districts, schools, teachers, memberships, idempotency, change sets.

Revision ID: 0001
Revises:
Create Date: 2026-11-28 19:19:09.090863
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
        "districts",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_districts")),
    )
    op.create_table(
        "change_sets",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("district_id", sa.String(length=64), nullable=False),
        sa.Column("request_id", sa.String(length=36), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("staged_schools_created", sa.Integer(), nullable=False),
        sa.Column("staged_teachers_created", sa.Integer(), nullable=False),
        sa.Column("staged_teachers_updated", sa.Integer(), nullable=False),
        sa.Column("staged_teachers_unchanged", sa.Integer(), nullable=False),
        sa.Column("staged_teachers_archived", sa.Integer(), nullable=False),
        sa.Column("staged_teachers_reactivated", sa.Integer(), nullable=False),
        sa.Column("applied_schools_created", sa.Integer(), nullable=False),
        sa.Column("applied_teachers_created", sa.Integer(), nullable=False),
        sa.Column("applied_teachers_updated", sa.Integer(), nullable=False),
        sa.Column("applied_teachers_unchanged", sa.Integer(), nullable=False),
        sa.Column("applied_teachers_archived", sa.Integer(), nullable=False),
        sa.Column("applied_teachers_reactivated", sa.Integer(), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expire_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("abandon_reason", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(
            ["district_id"], ["districts.id"], name=op.f("fk_change_sets_district_id_districts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_change_sets")),
        sa.UniqueConstraint("district_id", "request_id", name=op.f("uq_change_sets_district_id_request_id")),
    )
    with op.batch_alter_table("change_sets", schema=None) as batch_op:
        batch_op.create_index("ix_change_sets_state_expire_time", ["state", "expire_time"], unique=False)

    op.create_table(
        "idempotency_records",
        sa.Column("district_id", sa.String(length=64), nullable=False),
        sa.Column("method", sa.String(length=64), nullable=False),
        sa.Column("request_id", sa.String(length=36), nullable=False),
        sa.Column("resource_ids", sa.Text(), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["district_id"], ["districts.id"], name=op.f("fk_idempotency_records_district_id_districts")
        ),
        sa.PrimaryKeyConstraint("district_id", "method", "request_id", name=op.f("pk_idempotency_records")),
    )
    op.create_table(
        "schools",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("district_id", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["district_id"], ["districts.id"], name=op.f("fk_schools_district_id_districts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schools")),
    )
    with op.batch_alter_table("schools", schema=None) as batch_op:
        batch_op.create_index(
            "ix_schools_district_id_display_name", ["district_id", "display_name", "id"], unique=False
        )

    op.create_table(
        "teachers",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("district_id", sa.String(length=64), nullable=False),
        sa.Column("given_name", sa.String(length=200), nullable=False),
        sa.Column("family_name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("email_key", sa.String(length=254), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("archive_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("archive_reason", sa.String(length=500), nullable=True),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["district_id"], ["districts.id"], name=op.f("fk_teachers_district_id_districts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_teachers")),
        sa.UniqueConstraint("district_id", "email_key", name=op.f("uq_teachers_district_id_email_key")),
    )
    op.create_table(
        "change_set_results",
        sa.Column("change_set_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.Integer(), nullable=False),
        sa.Column("ref", sa.String(length=200), nullable=False),
        sa.Column("resource_id", sa.String(length=36), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["change_set_id"],
            ["change_sets.id"],
            name=op.f("fk_change_set_results_change_set_id_change_sets"),
        ),
        sa.PrimaryKeyConstraint("change_set_id", "kind", "ref", name=op.f("pk_change_set_results")),
    )
    op.create_table(
        "staged_batches",
        sa.Column("change_set_id", sa.String(length=36), nullable=False),
        sa.Column("batch_number", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["change_set_id"], ["change_sets.id"], name=op.f("fk_staged_batches_change_set_id_change_sets")
        ),
        sa.PrimaryKeyConstraint("change_set_id", "batch_number", name=op.f("pk_staged_batches")),
    )
    op.create_table(
        "staged_memberships",
        sa.Column("change_set_id", sa.String(length=36), nullable=False),
        sa.Column("teacher_id", sa.String(length=36), nullable=False),
        sa.Column("school_id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(
            ["change_set_id"],
            ["change_sets.id"],
            name=op.f("fk_staged_memberships_change_set_id_change_sets"),
        ),
        sa.PrimaryKeyConstraint(
            "change_set_id", "teacher_id", "school_id", name=op.f("pk_staged_memberships")
        ),
    )
    op.create_table(
        "staged_schools",
        sa.Column("change_set_id", sa.String(length=36), nullable=False),
        sa.Column("ref", sa.String(length=200), nullable=False),
        sa.Column("school_id", sa.String(length=36), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["change_set_id"], ["change_sets.id"], name=op.f("fk_staged_schools_change_set_id_change_sets")
        ),
        sa.PrimaryKeyConstraint("change_set_id", "ref", name=op.f("pk_staged_schools")),
    )
    op.create_table(
        "staged_teachers",
        sa.Column("change_set_id", sa.String(length=36), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("teacher_id", sa.String(length=36), nullable=False),
        sa.Column("read_revision", sa.BigInteger(), nullable=True),
        sa.Column("ref", sa.String(length=200), nullable=True),
        sa.Column("given_name", sa.String(length=200), nullable=True),
        sa.Column("family_name", sa.String(length=200), nullable=True),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("upsert_email_key", sa.String(length=254), nullable=True),
        sa.Column("schools_changed", sa.Boolean(), nullable=False),
        sa.Column("reactivate", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(
            ["change_set_id"], ["change_sets.id"], name=op.f("fk_staged_teachers_change_set_id_change_sets")
        ),
        sa.PrimaryKeyConstraint("change_set_id", "position", name=op.f("pk_staged_teachers")),
        sa.UniqueConstraint("change_set_id", "ref", name=op.f("uq_staged_teachers_change_set_id_ref")),
        sa.UniqueConstraint(
            "change_set_id", "teacher_id", name=op.f("uq_staged_teachers_change_set_id_teacher_id")
        ),
        sa.UniqueConstraint(
            "change_set_id",
            "upsert_email_key",
            name=op.f("uq_staged_teachers_change_set_id_upsert_email_key"),
        ),
    )
    op.create_table(
        "teacher_schools",
        sa.Column("teacher_id", sa.String(length=36), nullable=False),
        sa.Column("school_id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(
            ["school_id"], ["schools.id"], name=op.f("fk_teacher_schools_school_id_schools")
        ),
        sa.ForeignKeyConstraint(
            ["teacher_id"], ["teachers.id"], name=op.f("fk_teacher_schools_teacher_id_teachers")
        ),
        sa.PrimaryKeyConstraint("teacher_id", "school_id", name=op.f("pk_teacher_schools")),
    )
    with op.batch_alter_table("teacher_schools", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_teacher_schools_school_id"), ["school_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("teacher_schools", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_teacher_schools_school_id"))

    op.drop_table("teacher_schools")
    op.drop_table("staged_teachers")
    op.drop_table("staged_schools")
    op.drop_table("staged_memberships")
    op.drop_table("staged_batches")
    op.drop_table("change_set_results")
    op.drop_table("teachers")
    with op.batch_alter_table("schools", schema=None) as batch_op:
        batch_op.drop_index("ix_schools_district_id_display_name")

    op.drop_table("schools")
    op.drop_table("idempotency_records")
    with op.batch_alter_table("change_sets", schema=None) as batch_op:
        batch_op.drop_index("ix_change_sets_state_expire_time")

    op.drop_table("change_sets")
    op.drop_table("districts")
