"""A token may have the ``reviewer`` role (the review workspace: categorise new material).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BEFORE = ("platform", "curator", "analyst", "admin")
AFTER = (*BEFORE, "reviewer")


def _check(roles: tuple[str, ...]) -> str:
    return "role IN (" + ", ".join(f"'{r}'" for r in roles) + ")"


def upgrade() -> None:
    with op.batch_alter_table("tokens") as batch:
        batch.drop_constraint(op.f("ck_tokens_role"), type_="check")
        batch.create_check_constraint(op.f("ck_tokens_role"), _check(AFTER))


def downgrade() -> None:
    op.execute("DELETE FROM tokens WHERE role = 'reviewer'")
    with op.batch_alter_table("tokens") as batch:
        batch.drop_constraint(op.f("ck_tokens_role"), type_="check")
        batch.create_check_constraint(op.f("ck_tokens_role"), _check(BEFORE))
