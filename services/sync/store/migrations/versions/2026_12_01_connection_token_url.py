"""Connections: an optional OAuth 2 token URL (it cannot always be derived from the server URL).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 20:50:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("connections", sa.Column("token_url", sa.String(length=2048), nullable=True))


def downgrade() -> None:
    op.drop_column("connections", "token_url")
