"""Hotline intake: reports, their sealed files and bundles; token roles ``reporter`` and ``hotline``;
hash sets shared between tenants (offers and subscriptions).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
OLD_ROLES = "role IN ('platform', 'curator', 'analyst', 'admin', 'reviewer')"
NEW_ROLES = "role IN ('platform', 'curator', 'analyst', 'admin', 'reviewer', 'reporter', 'hotline')"


def _roles(check: str) -> None:
    with op.batch_alter_table("tokens", recreate="always") as batch:
        batch.drop_constraint(op.f("ck_tokens_role"), type_="check")
        batch.create_check_constraint("role", check)


def upgrade() -> None:
    _roles(NEW_ROLES)
    op.create_table(
        "intake_bundles",
        sa.Column("id", BigId, nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_intake_bundles")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_intake_bundles_tenant"), "intake_bundles", ["tenant"], unique=False)
    op.create_table(
        "intake_reports",
        sa.Column("id", BigId, nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("token_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("bundle_id", BigId, nullable=True),
        sa.Column("priority", sa.Integer(), nullable=True),
        sa.Column("countries", sa.Text(), nullable=True),
        sa.Column("referral", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "status IN ('open', 'finished', 'retracted')", name=op.f("ck_intake_reports_status")
        ),
        sa.ForeignKeyConstraint(
            ["bundle_id"],
            ["intake_bundles.id"],
            name=op.f("fk_intake_reports_bundle_id_intake_bundles"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_intake_reports")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_intake_reports_bundle_id"), "intake_reports", ["bundle_id"], unique=False)
    op.create_index(
        op.f("ix_intake_reports_tenant_status_expires_at"),
        "intake_reports",
        ["tenant", "status", "expires_at"],
        unique=False,
    )
    op.create_table(
        "intake_files",
        sa.Column("id", BigId, nullable=False),
        sa.Column("report_id", BigId, nullable=False),
        sa.Column("file_name", sa.Text(), nullable=True),
        sa.Column("size", BigId, nullable=False),
        sa.Column("md5", sa.String(length=32), nullable=False),
        sa.Column("sha1", sa.String(length=40), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("pdq", sa.String(length=64), nullable=True),
        sa.Column("pdq_quality", sa.Integer(), nullable=True),
        sa.Column("media_type", sa.String(length=32), nullable=False),
        sa.Column("gps", sa.String(length=64), nullable=True),
        sa.Column("details", sa.Text(), nullable=True),
        sa.Column("matches", sa.Text(), nullable=True),
        sa.Column("blob", sa.LargeBinary(), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["report_id"],
            ["intake_reports.id"],
            name=op.f("fk_intake_files_report_id_intake_reports"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_intake_files")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_intake_files_md5"), "intake_files", ["md5"], unique=False)
    op.create_index(op.f("ix_intake_files_report_id"), "intake_files", ["report_id"], unique=False)
    op.create_table(
        "share_offers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("publisher", sa.String(length=64), nullable=False),
        sa.Column("hashset", sa.String(length=255), nullable=False),
        sa.Column("subscriber", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_share_offers")),
        sqlite_autoincrement=True,
    )
    op.create_index(
        op.f("ix_share_offers_subscriber_revoked_at"),
        "share_offers",
        ["subscriber", "revoked_at"],
        unique=False,
    )
    op.create_table(
        "subscriptions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subscriber", sa.String(length=64), nullable=False),
        sa.Column("publisher", sa.String(length=64), nullable=False),
        sa.Column("hashset", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscriptions")),
        sqlite_autoincrement=True,
    )
    op.create_index(
        op.f("ix_subscriptions_subscriber_ended_at"),
        "subscriptions",
        ["subscriber", "ended_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_table("subscriptions")
    op.drop_table("share_offers")
    op.drop_table("intake_files")
    op.drop_table("intake_reports")
    op.drop_index(op.f("ix_intake_bundles_tenant"), table_name="intake_bundles")
    op.drop_table("intake_bundles")
    op.execute("DELETE FROM tokens WHERE role IN ('reporter', 'hotline')")
    _roles(OLD_ROLES)
