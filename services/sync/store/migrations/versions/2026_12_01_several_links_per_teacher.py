"""Several ClassLink users may link one EW teacher: the rows of one person (same email, same name).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("teacher_links", schema=None) as batch_op:
        batch_op.drop_constraint("uq_teacher_links_district_id_ew_teacher_id", type_="unique")
        batch_op.create_index("ix_teacher_links_district_id_ew_teacher_id", ["district_id", "ew_teacher_id"])


def downgrade() -> None:
    # Keeps one link per teacher (the smallest ClassLink id) so the unique constraint can return.
    op.execute(
        "DELETE FROM teacher_links WHERE classlink_user_id <> (SELECT MIN(t.classlink_user_id) "
        "FROM teacher_links t WHERE t.district_id = teacher_links.district_id "
        "AND t.ew_teacher_id = teacher_links.ew_teacher_id)"
    )
    with op.batch_alter_table("teacher_links", schema=None) as batch_op:
        batch_op.drop_index("ix_teacher_links_district_id_ew_teacher_id")
        batch_op.create_unique_constraint(
            "uq_teacher_links_district_id_ew_teacher_id", ["district_id", "ew_teacher_id"]
        )
