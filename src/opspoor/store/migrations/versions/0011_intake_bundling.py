"""Intake bundling by index: finished reports numbered per tenant in the order they finished
(``finish_seq``, so every worker's in-memory Hamming index catches up with the reports finished
since it last looked), and the vPDQ of uploaded videos (reports that share a video bundle too).

Revision ID: 0011
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("intake_reports") as batch:
        batch.add_column(sa.Column("finish_seq", BigId, nullable=True))
    # reports finished before: any order will do, each once
    op.execute("UPDATE intake_reports SET finish_seq = id WHERE status = 'finished'")
    op.create_index(
        op.f("ix_intake_reports_tenant_finish_seq"), "intake_reports", ["tenant", "finish_seq"], unique=False
    )
    with op.batch_alter_table("intake_files") as batch:
        batch.add_column(sa.Column("vpdq", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("intake_files") as batch:
        batch.drop_column("vpdq")
    op.drop_index(op.f("ix_intake_reports_tenant_finish_seq"), table_name="intake_reports")
    with op.batch_alter_table("intake_reports") as batch:
        batch.drop_column("finish_seq")
