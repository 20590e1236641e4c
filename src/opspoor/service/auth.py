"""Bearer tokens, roles and tenants.

``require(action, *roles)`` is the dependency every route but health declares: it finds the token
(401 without a valid one), checks its role (403, audited), applies the token's rate limit (429)
and hands the route a :class:`Call` to fill in (the object acted on). Token lookups are cached per
worker for ``token_cache_seconds``, so most requests cost no database round trip and a revoked
token is refused within that time. The cache is keyed by the secret's SHA-256; secrets themselves
are neither kept nor logged.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import anyio
from fastapi import Request

from opspoor.service.limits import RateLimiter
from opspoor.service.metrics import AUTH_FAILURES
from opspoor.service.problems import Problem
from opspoor.store import Store
from opspoor.store.audit import AuditEvent
from opspoor.store.tokens import SECRET_PREFIX, find_token, secret_digest

#: the roles and what each may do (routes name the roles they admit)
PLATFORM, CURATOR, ANALYST, ADMIN = "platform", "curator", "analyst", "admin"
ANY_ROLE: tuple[str, ...] = ()
CACHE_LIMIT = 10_000


@dataclass(frozen=True, slots=True)
class Principal:
    token_id: int
    tenant: str
    role: str


@dataclass(slots=True)
class Call:
    """One authenticated request, as the audit log will record it."""

    principal: Principal
    action: str
    object: str | None
    changes: bool  # the request changes data: its audit row is written before the answer
    audit: bool = True

    def event(self, result: str, status: int) -> AuditEvent:
        p = self.principal
        return AuditEvent(datetime.now(UTC), p.token_id, p.tenant, self.action, self.object, result, status)


class TokenCache:
    """Token lookups of one worker, each kept ``ttl`` seconds (unknown tokens too, so a flood of
    bad tokens does not reach the database)."""

    def __init__(self, store: Store, ttl: float) -> None:
        self.store = store
        self.ttl = ttl
        self._entries: dict[str, tuple[Principal | None, float]] = {}

    def cached(self, digest: str) -> tuple[bool, Principal | None]:
        hit = self._entries.get(digest)
        if hit is None or hit[1] < time.monotonic():
            return False, None
        return True, hit[0]

    def lookup(self, secret: str) -> Principal | None:
        """From the store (a blocking call: run it in a thread)."""
        rec = find_token(self.store, secret)
        principal = Principal(rec.id, rec.tenant, rec.role) if rec is not None and rec.active else None
        if len(self._entries) >= CACHE_LIMIT:
            now = time.monotonic()
            self._entries = {k: v for k, v in self._entries.items() if v[1] >= now}
            if len(self._entries) >= CACHE_LIMIT:
                self._entries.clear()
        self._entries[secret_digest(secret)] = (principal, time.monotonic() + self.ttl)
        return principal

    def forget(self) -> None:
        self._entries.clear()


async def authenticate(request: Request) -> Principal:
    header = request.headers.get("authorization")
    if not header:
        AUTH_FAILURES.labels("missing").inc()
        raise _unauthorized("this route needs a bearer token: send 'Authorization: Bearer <token>'")
    scheme, _, secret = header.partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret.startswith(SECRET_PREFIX):
        AUTH_FAILURES.labels("malformed").inc()
        raise _unauthorized("the Authorization header must be 'Bearer <token>' with an opspoor token")
    cache: TokenCache = request.app.state.service.tokens
    found, principal = cache.cached(secret_digest(secret))
    if not found:
        principal = await anyio.to_thread.run_sync(cache.lookup, secret)
    if principal is None:
        AUTH_FAILURES.labels("invalid").inc()
        raise _unauthorized("the token is unknown or revoked")
    return principal


def _unauthorized(detail: str) -> Problem:
    return Problem(401, detail, slug="unauthorized", headers={"WWW-Authenticate": 'Bearer realm="opspoor"'})


def require(
    action: str, *roles: str, changes: bool = False, audit: bool = True
) -> Callable[[Request], Coroutine[Any, Any, Call]]:
    """The dependency of a route that ``roles`` may call (any role when none are named)."""

    async def dependency(request: Request) -> Call:
        principal = await authenticate(request)
        call = Call(principal, action, _object_of(request), changes, audit)
        request.state.call = call
        if roles and principal.role not in roles:
            raise Problem(
                403,
                f"a {principal.role} token may not {action.replace('.', ' ')}; "
                f"this needs the role {' or '.join(roles)}",
                slug="forbidden",
            )
        limiter: RateLimiter = request.app.state.service.rate
        wait = limiter.take(principal.token_id)
        if wait > 0:
            call.audit = False  # refused before it read anything
            raise Problem(
                429,
                f"too many requests for this token; retry in {wait:.1f} s",
                slug="rate-limited",
                headers={"Retry-After": str(max(1, round(wait + 0.5)))},
            )
        return call

    return dependency


def _object_of(request: Request) -> str | None:
    params = request.path_params
    if "name" in params:
        return f"hashset:{params['name']}"
    if "token_id" in params:
        return f"token:{params['token_id']}"
    return None
