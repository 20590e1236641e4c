"""A published case keeps each file's robust query hashes (``review_files.query``, what a scan keeps
in its case database's ``files.query``), so the team can match it again inside the service against
the sets as they are now without losing a match found by a rotated or cropped variant
(``review.shared.rematch_published``, docs/review.md). Empty for cases published before.

Revision ID: 0010
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("review_files") as batch:
        batch.add_column(sa.Column("query", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("review_files") as batch:
        batch.drop_column("query")
