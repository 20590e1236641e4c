"""Sealed intake uploads are stored uncompressed on PostgreSQL.

The blobs are AES-GCM ciphertext: PostgreSQL's TOAST compression cannot shrink them and only costs
CPU on every upload (3-5 ms per report of three 64 KB files, docs/benchmarks.md). ``EXTERNAL`` keeps
them out of line without trying. SQLite has no such setting; nothing changes there.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE intake_files ALTER COLUMN blob SET STORAGE EXTERNAL")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE intake_files ALTER COLUMN blob SET STORAGE EXTENDED")
