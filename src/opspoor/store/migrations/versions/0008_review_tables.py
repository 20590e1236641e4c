"""The review workspace's tables in the shared store (team mode, docs/review.md): published cases
(``review_cases``, ``review_files``, ``review_groups``) and the reviewers' decisions, reveals, audit
trail and claims, one ``case_id`` per case. A case's own ``review.sqlite`` has the same four
decision tables (``review.decisions``); these definitions must stay equal to ``review.decisions``
and ``review.shared`` (tests/test_store.py compares them).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CASE = 200


def upgrade() -> None:
    op.create_table(
        "review_cases",
        sa.Column("case_id", sa.String(CASE), primary_key=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("meta", sa.Text(), nullable=False),
        sa.Column("published_at", sa.Float(), nullable=False),
    )
    op.create_table(
        "review_files",
        sa.Column("case_id", sa.String(CASE), primary_key=True),
        sa.Column("path", sa.Text(), primary_key=True),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("record", sa.Text(), nullable=False),
        sa.Column("veiled", sa.LargeBinary(), nullable=True),
        sa.Column("revealed", sa.LargeBinary(), nullable=True),
    )
    op.create_table(
        "review_groups",
        sa.Column("case_id", sa.String(CASE), primary_key=True),
        sa.Column("group_id", sa.String(64), primary_key=True),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("info", sa.Text(), nullable=False),
    )
    op.create_table(
        "review_decisions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("case_id", sa.String(CASE), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("reviewer", sa.String(200), nullable=False),
        sa.Column("group_id", sa.String(64), nullable=False),
        sa.Column("path", sa.Text(), nullable=True),
        sa.Column("members", sa.Text(), nullable=True),
        sa.Column("scheme", sa.String(16), nullable=True),
        sa.Column("code", sa.String(32), nullable=True),
        sa.Column("tags", sa.Text(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("series", sa.Text(), nullable=True),
        sa.Column("undone_at", sa.Float(), nullable=True),
        sa.Column("undone_by", sa.String(200), nullable=True),
    )
    op.create_index("ix_review_decisions_case_id", "review_decisions", ["case_id"])
    op.create_index("ix_review_decisions_group_id", "review_decisions", ["group_id"])
    op.create_table(
        "review_reveals",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("case_id", sa.String(CASE), nullable=False),
        sa.Column("reviewer", sa.String(200), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("started", sa.Float(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=True),
        sa.Column("full_size", sa.Integer(), nullable=False),
    )
    op.create_index("ix_review_reveals_case_id", "review_reveals", ["case_id"])
    op.create_table(
        "review_audit",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("case_id", sa.String(CASE), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("reviewer", sa.String(200), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("target", sa.Text(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
    )
    op.create_index("ix_review_audit_case_id", "review_audit", ["case_id"])
    op.create_table(
        "review_claims",
        sa.Column("case_id", sa.String(CASE), primary_key=True),
        sa.Column("group_id", sa.String(64), primary_key=True),
        sa.Column("reviewer", sa.String(200), nullable=False),
        sa.Column("expires", sa.Float(), nullable=False),
    )


def downgrade() -> None:
    for table in (
        "review_claims",
        "review_audit",
        "review_reveals",
        "review_decisions",
        "review_groups",
        "review_files",
        "review_cases",
    ):
        op.drop_table(table)
