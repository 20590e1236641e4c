"""The clue index across cases: camera body serials, places, phone numbers, postcodes, plates and
web domains each case saw, by normalised value, with the files that showed them.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "clue_index",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.String(length=1024), nullable=False),
        sa.Column("case_name", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("value", sa.String(length=255), nullable=False),
        sa.Column("files", sa.Integer(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clue_index")),
        sa.UniqueConstraint("case_id", "kind", "value", name=op.f("uq_clue_index_case_id_kind_value")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_clue_index_kind_value"), "clue_index", ["kind", "value"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_clue_index_kind_value"), table_name="clue_index")
    op.drop_table("clue_index")
