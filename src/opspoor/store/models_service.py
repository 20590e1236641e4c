"""The service's tables: API tokens and the hash-chained audit log (migrations 0002, 0005; role
``reviewer`` of the review workspace, 0006; roles ``reporter`` and ``hotline`` of the intake, 0007).

They share ``Base`` with :mod:`opspoor.store.models`, so one metadata describes the whole schema.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, get_args

from sqlalchemy import BigInteger, CheckConstraint, DateTime, Index, Integer, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from opspoor.store.models import Base, BigId

#: what a token may do: the one list of roles (``service.auth`` names them, routes admit some)
Role = Literal["platform", "curator", "analyst", "admin", "reviewer", "reporter", "hotline"]
ROLES: tuple[Role, ...] = get_args(Role)


class TokenRow(Base):
    """A bearer token. Only the SHA-256 of the secret is kept; the secret is shown once."""

    __tablename__ = "tokens"
    __table_args__ = (
        CheckConstraint(f"role IN ({', '.join(repr(r) for r in ROLES)})", name="role"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    role: Mapped[str] = mapped_column(String(16))
    label: Mapped[str | None] = mapped_column(Text)
    secret_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    created_by: Mapped[int | None] = mapped_column(Integer)  # the admin token's id; NULL from the CLI
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AuditRow(Base):
    """One audited request. Ids are given by the writer, contiguous from 1, so a gap is a deleted
    row; ``row_hash`` = SHA-256(``prev_hash`` + the row's canonical text) chains each row to the
    one before it (see :mod:`opspoor.store.audit`)."""

    __tablename__ = "audit"
    __table_args__ = (Index(None, "tenant", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    token_id: Mapped[int | None] = mapped_column(Integer)
    tenant: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    object: Mapped[str | None] = mapped_column(Text)
    result: Mapped[str] = mapped_column(String(16))
    status: Mapped[int] = mapped_column(Integer)
    writer: Mapped[str | None] = mapped_column(String(64))  # migration 0005: see store.audit
    seq: Mapped[int | None] = mapped_column(BigInteger)
    prev_hash: Mapped[str] = mapped_column(String(64))
    row_hash: Mapped[str] = mapped_column(String(64))
