"""Initial schema: hash sets, entries and their signals, conflicts, the change log, id blocks.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "hashsets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant", sa.String(length=64), server_default="default", nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=16), server_default="known", nullable=False),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column("distance", sa.Integer(), server_default="31", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("kind IN ('known', 'ignorable')", name=op.f("ck_hashsets_kind")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hashsets")),
        sa.UniqueConstraint("tenant", "name", name=op.f("uq_hashsets_tenant_name")),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "entries",
        sa.Column("id", BigId, autoincrement=False, nullable=False),
        sa.Column("hashset_id", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.Text(), nullable=True),
        sa.Column("category_scheme", sa.String(length=16), nullable=True),
        sa.Column("category_code", sa.String(length=16), nullable=True),
        sa.Column("victim_identified", sa.Boolean(), nullable=True),
        sa.Column("offender_identified", sa.Boolean(), nullable=True),
        sa.Column("distributed", sa.Boolean(), nullable=True),
        sa.Column("series", sa.Text(), nullable=True),
        sa.Column("tags", sa.Text(), nullable=True),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column("date_updated", sa.Text(), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("vpdq", sa.Text(), nullable=True),
        sa.Column("extra", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_entries")),
    )
    op.create_index(op.f("ix_entries_hashset_id_id"), "entries", ["hashset_id", "id"], unique=False)
    op.create_table(
        "entry_signals",
        sa.Column("entry_id", sa.BigInteger(), nullable=False),
        sa.Column("hashset_id", sa.Integer(), nullable=False),
        sa.Column("signal", sa.String(length=16), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("derived", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.create_index(
        op.f("ix_entry_signals_value"), "entry_signals", ["value"], unique=False, postgresql_using="hash"
    )
    op.create_index(
        op.f("ix_entry_signals_hashset_id_signal"),
        "entry_signals",
        ["hashset_id", "signal"],
        unique=False,
        postgresql_using="brin",
    )
    op.create_index(
        op.f("ix_entry_signals_entry_id"),
        "entry_signals",
        ["entry_id"],
        unique=False,
        postgresql_using="brin",
    )
    op.create_table(
        "conflicts",
        sa.Column("id", BigId, nullable=False),
        sa.Column("hashset_id", sa.Integer(), nullable=False),
        sa.Column("signal", sa.String(length=16), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("entry_id", sa.BigInteger(), nullable=False),
        sa.Column("other_entry_id", sa.BigInteger(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["hashset_id"], ["hashsets.id"], name=op.f("fk_conflicts_hashset_id_hashsets"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conflicts")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_conflicts_hashset_id"), "conflicts", ["hashset_id"], unique=False)
    op.create_table(
        "changes",
        sa.Column("id", BigId, nullable=False),
        sa.Column("hashset_id", sa.Integer(), nullable=False),
        sa.Column("op", sa.String(length=8), nullable=False),
        sa.Column("entry_id", sa.BigInteger(), nullable=True),
        sa.Column("entry_id_end", sa.BigInteger(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("op IN ('add', 'remove', 'drop')", name=op.f("ck_changes_op")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_changes")),
        sqlite_autoincrement=True,
    )
    id_blocks = op.create_table(
        "id_blocks",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("next_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_id_blocks")),
    )
    op.bulk_insert(id_blocks, [{"name": "entries", "next_id": 1}])


def downgrade() -> None:
    op.drop_table("id_blocks")
    op.drop_table("changes")
    op.drop_index(op.f("ix_conflicts_hashset_id"), table_name="conflicts")
    op.drop_table("conflicts")
    op.drop_index(op.f("ix_entry_signals_entry_id"), table_name="entry_signals", postgresql_using="brin")
    op.drop_index(
        op.f("ix_entry_signals_hashset_id_signal"), table_name="entry_signals", postgresql_using="brin"
    )
    op.drop_index(op.f("ix_entry_signals_value"), table_name="entry_signals", postgresql_using="hash")
    op.drop_table("entry_signals")
    op.drop_index(op.f("ix_entries_hashset_id_id"), table_name="entries")
    op.drop_table("entries")
    op.drop_table("hashsets")
