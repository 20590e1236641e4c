"""API tokens: created at random, shown once, stored as their SHA-256.

A token secret is ``opspoor_`` + 32 random bytes (``secrets.token_urlsafe``), so it carries 256 bits
of entropy. A plain SHA-256 is then enough to store it: nobody can search 2**256 secrets for one
with a given digest, and slow password hashes (bcrypt, Argon2) exist only to make guessing
*low-entropy* passwords expensive, at a cost of milliseconds per request we would pay on every call.
The digest is looked up by equality (it reveals nothing about the secret, so a timing difference in
the lookup reveals nothing either) and then compared again with ``hmac.compare_digest``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, select, update

from opspoor.errors import NotFound, StoreError
from opspoor.store.db import Store
from opspoor.store.models_service import ROLES, TokenRow

TOKENS = cast(Table, TokenRow.__table__)
SECRET_PREFIX = "opspoor_"
TENANT_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass(frozen=True, slots=True)
class TokenRecord:
    id: int
    tenant: str
    role: str
    label: str | None
    created_at: datetime
    created_by: int | None
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "tenant": self.tenant,
            "role": self.role,
            "label": self.label,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "revoked_at": None if self.revoked_at is None else self.revoked_at.isoformat(),
        }


def secret_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def check_role(role: str) -> None:
    if role not in ROLES:
        raise StoreError(f"role must be one of {', '.join(ROLES)}, not {role!r}")


def check_tenant(tenant: str) -> None:
    if not TENANT_PATTERN.fullmatch(tenant):
        raise StoreError(
            "tenant names are 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit, "
            f"not {tenant!r}"
        )


def _record(r: Any) -> TokenRecord:
    return TokenRecord(
        r.id, r.tenant, r.role, r.label, _utc(r.created_at), r.created_by, _utc_or_none(r.revoked_at)
    )


def create_token(
    store: Store, role: str, tenant: str, *, label: str | None = None, created_by: int | None = None
) -> tuple[TokenRecord, str]:
    """A new token; returns its record and the secret, which is not stored and cannot be shown again."""
    check_role(role)
    check_tenant(tenant)
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    with store.write() as conn:
        new_id = conn.execute(
            TOKENS.insert()
            .values(
                tenant=tenant,
                role=role,
                label=label,
                secret_sha256=secret_digest(secret),
                created_at=datetime.now(UTC),
                created_by=created_by,
            )
            .returning(TOKENS.c.id)
        ).scalar_one()
        row = conn.execute(select(TOKENS).where(TOKENS.c.id == new_id)).one()
    return _record(row), secret


def find_token(store: Store, secret: str) -> TokenRecord | None:
    """The token with this secret (revoked ones included), or None."""
    if not secret.startswith(SECRET_PREFIX) or len(secret) > 200:
        return None
    digest = secret_digest(secret)
    with store.read() as conn:
        row = conn.execute(select(TOKENS).where(TOKENS.c.secret_sha256 == digest)).first()
    if row is None or not hmac.compare_digest(row.secret_sha256, digest):
        return None
    return _record(row)


def list_tokens(store: Store, *, tenant: str | None = None) -> list[TokenRecord]:
    """Tokens of one tenant, or of all tenants, oldest first."""
    q = select(TOKENS).order_by(TOKENS.c.id)
    if tenant is not None:
        q = q.where(TOKENS.c.tenant == tenant)
    with store.read() as conn:
        return [_record(r) for r in conn.execute(q)]


def get_token(store: Store, token_id: int, *, tenant: str | None = None) -> TokenRecord:
    q = select(TOKENS).where(TOKENS.c.id == token_id)
    if tenant is not None:
        q = q.where(TOKENS.c.tenant == tenant)
    with store.read() as conn:
        row = conn.execute(q).first()
    if row is None:
        raise NotFound(f"no token with id {token_id}")
    return _record(row)


def revoke_token(store: Store, token_id: int, *, tenant: str | None = None) -> TokenRecord:
    """Revoke a token (of ``tenant`` only, when given). Revoking twice keeps the first time."""
    cond = [TOKENS.c.id == token_id]
    if tenant is not None:
        cond.append(TOKENS.c.tenant == tenant)
    with store.write() as conn:
        conn.execute(
            update(TOKENS).where(*cond, TOKENS.c.revoked_at.is_(None)).values(revoked_at=datetime.now(UTC))
        )
        row = conn.execute(select(TOKENS).where(*cond)).first()
    if row is None:
        raise NotFound(f"no token with id {token_id}")
    return _record(row)


def _utc(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def _utc_or_none(t: datetime | None) -> datetime | None:
    return None if t is None else _utc(t)
