"""Tokens and the audit log of the caller's tenant (admin only). A new token's secret is in the
answer to its creation and nowhere else."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import anyio
from fastapi import Depends, Path, Query, Request
from pydantic import BaseModel, Field

from opspoor.service.auth import ADMIN, Call, require
from opspoor.service.fields import Text
from opspoor.service.routing import api_router, service_of
from opspoor.store.audit import list_audit
from opspoor.store.models_service import Role
from opspoor.store.tokens import create_token, get_token, list_tokens, revoke_token

#: ids are 32-bit in the database; larger ones cannot exist
TokenId = Annotated[int, Path(ge=1, le=2**31 - 1)]
router = api_router(401, 403, 404, 422, 429, 503, tags=["tokens"])


class TokenCreate(BaseModel):
    role: Role
    label: Annotated[Text | None, Field(max_length=200)] = None


class TokenOut(BaseModel):
    id: int
    tenant: str
    role: str
    label: str | None
    created_at: datetime
    created_by: int | None
    revoked_at: datetime | None


class TokenCreated(TokenOut):
    token: str = Field(description="the secret: shown this once, stored only as its SHA-256")


class TokenList(BaseModel):
    tokens: list[TokenOut]


class AuditOut(BaseModel):
    id: int
    at: datetime
    token_id: int | None
    tenant: str | None
    action: str
    object: str | None
    result: str
    status: int
    writer: str | None = None  # the worker's audit writer, and the row's number among its rows
    seq: int | None = None
    row_hash: str


class AuditList(BaseModel):
    rows: list[AuditOut]


@router.get("/v1/tokens", response_model=TokenList)
async def list_all(
    request: Request, call: Annotated[Call, Depends(require("token.list", ADMIN))]
) -> dict[str, Any]:
    """The tenant's tokens (never their secrets)."""
    store, tenant = service_of(request).store, call.principal.tenant
    tokens = await anyio.to_thread.run_sync(lambda: list_tokens(store, tenant=tenant))
    return {"tokens": [t.to_json() for t in tokens]}


@router.post("/v1/tokens", response_model=TokenCreated, status_code=201)
async def create(
    body: TokenCreate,
    request: Request,
    call: Annotated[Call, Depends(require("token.create", ADMIN, changes=True))],
) -> dict[str, Any]:
    """A new token of the caller's tenant. Keep the ``token`` value: it cannot be shown again."""
    store, p = service_of(request).store, call.principal
    rec, secret = await anyio.to_thread.run_sync(
        lambda: create_token(store, body.role, p.tenant, label=body.label, created_by=p.token_id)
    )
    call.object = f"token:{rec.id}"
    return {**rec.to_json(), "token": secret}


@router.get("/v1/tokens/{token_id}", response_model=TokenOut)
async def show(
    token_id: TokenId, request: Request, call: Annotated[Call, Depends(require("token.show", ADMIN))]
) -> dict[str, Any]:
    store, tenant = service_of(request).store, call.principal.tenant
    rec = await anyio.to_thread.run_sync(lambda: get_token(store, token_id, tenant=tenant))
    return rec.to_json()


@router.delete("/v1/tokens/{token_id}", response_model=TokenOut)
async def revoke(
    token_id: TokenId,
    request: Request,
    call: Annotated[Call, Depends(require("token.revoke", ADMIN, changes=True))],
) -> dict[str, Any]:
    """Revoke a token. Every worker refuses it within the token cache time (5 s by default)."""
    svc = service_of(request)
    store, tenant = svc.store, call.principal.tenant
    rec = await anyio.to_thread.run_sync(lambda: revoke_token(store, token_id, tenant=tenant))
    svc.tokens.forget()
    return rec.to_json()


@router.get("/v1/audit", response_model=AuditList, tags=["audit"])
async def audit(
    request: Request,
    call: Annotated[Call, Depends(require("audit.read", ADMIN))],
    after: Annotated[int, Query(ge=0, le=2**63 - 1, description="rows with a larger id")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """The tenant's audit rows, oldest first."""
    store, tenant = service_of(request).store, call.principal.tenant
    rows = await anyio.to_thread.run_sync(lambda: list_audit(store, tenant=tenant, after=after, limit=limit))
    return {"rows": [r.to_json() for r in rows]}
