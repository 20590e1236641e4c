"""Bearer tokens, roles and tenants.

``require(action, *roles)`` is the dependency every route but health declares: it finds the token
(401 without a valid one), checks its role (403, audited), applies the token's rate limit (429)
and hands the route a :class:`Call` to fill in (the object acted on). Token lookups are cached per
worker for ``token_cache_seconds``, so most requests cost no database round trip and a revoked
token is refused within that time. The cache is keyed by the secret's SHA-256; secrets themselves
are neither kept nor logged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import anyio
from fastapi import Request

from opspoor.service.auditing import AuditWriter
from opspoor.service.limits import RateLimiter
from opspoor.service.metrics import AUTH_FAILURES
from opspoor.service.problems import Problem
from opspoor.store import Store
from opspoor.store.audit import AuditEvent
from opspoor.store.tokens import ROLES, SECRET_PREFIX, find_token, secret_digest

#: the roles (defined with the tokens table); routes name the ones they admit
PLATFORM, CURATOR, ANALYST, ADMIN, REVIEWER, REPORTER, HOTLINE = ROLES
ANY_ROLE: tuple[str, ...] = ()
CACHE_LIMIT = 10_000
log = logging.getLogger("opspoor.service")


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
    at: datetime = field(default_factory=lambda: datetime.now(UTC))  # when the request was admitted

    def event(self, result: str, status: int) -> AuditEvent:
        p = self.principal
        return AuditEvent(self.at, p.token_id, p.tenant, self.action, self.object, result, status)


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


async def authenticate(tokens: TokenCache, headers: list[str]) -> Principal:
    """The caller named by the request's ``Authorization`` header (all its values, in order); 401
    without a valid, unrevoked token, 400 when it is sent more than once (proxies and frameworks
    disagree on which one counts, so none does)."""
    if len(headers) > 1:
        AUTH_FAILURES.labels("malformed").inc()
        raise Problem(
            400,
            f"the Authorization header was sent {len(headers)} times; send it once",
            slug="repeated-authorization",
        )
    header = headers[0] if headers else None
    if not header:
        AUTH_FAILURES.labels("missing").inc()
        raise _unauthorized("this route needs a bearer token: send 'Authorization: Bearer <token>'")
    scheme, _, secret = header.partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret.startswith(SECRET_PREFIX):
        AUTH_FAILURES.labels("malformed").inc()
        raise _unauthorized("the Authorization header must be 'Bearer <token>' with an opspoor token")
    found, principal = tokens.cached(secret_digest(secret))
    if not found:
        principal = await anyio.to_thread.run_sync(tokens.lookup, secret)
    if principal is None:
        AUTH_FAILURES.labels("invalid").inc()
        raise _unauthorized("the token is unknown or revoked")
    return principal


def _unauthorized(detail: str) -> Problem:
    return Problem(401, detail, slug="unauthorized", headers={"WWW-Authenticate": 'Bearer realm="opspoor"'})


def admit(call: Call, roles: tuple[str, ...], limiter: RateLimiter) -> None:
    """403 when the caller's role is not among ``roles`` (if any are named); 429 past its rate."""
    role = call.principal.role
    if roles and role not in roles:
        raise Problem(
            403,
            f"{call.action} needs a token of role {' or '.join(roles)}; this token's role is {role}",
            slug="forbidden",
        )
    wait = limiter.take(call.principal.token_id)
    if wait > 0:
        call.audit = False  # refused before it read or changed anything
        raise Problem(
            429,
            f"too many requests for this token; retry in {wait:.1f} s",
            slug="rate-limited",
            headers={"Retry-After": str(max(1, round(wait + 0.5)))},
        )


def require(
    action: str, *roles: str, changes: bool = False, audit: bool = True
) -> Callable[[Request], Coroutine[Any, Any, Call]]:
    """The dependency of a route that ``roles`` may call (any role when none are named). The
    route's :class:`Call` is left on ``request.state`` for the audit row (see ``routing``)."""

    async def dependency(request: Request) -> Call:
        service = request.app.state.service
        principal = await authenticate(service.tokens, request.headers.getlist("authorization"))
        call = Call(principal, action, _object_of(request), changes, audit)
        request.state.call = call
        admit(call, roles, service.rate)
        return call

    return dependency


async def record(audit: AuditWriter, call: Call, status: int) -> None:
    """Write the call's audit row with the status it ended in (writes wait for the commit)."""
    if not call.audit:
        return
    result = (
        "ok"
        if status < 400
        else "denied"
        if status in (401, 403)
        else "rejected"
        if status < 500
        else "error"
    )
    try:
        await audit.record(call.event(result, status), wait=call.changes)
    except Exception as exc:  # the row stays queued and is retried
        log.error("audit row of %s queued but not yet written: %s", call.action, exc)
        if call.changes and status < 400:  # never answer success for a change that is not audited yet
            raise Problem(
                503,
                f"{call.action} was done, but its audit row could not be written yet (the store does "
                "not answer); it stays queued in this worker and is written when the store is back",
                slug="audit-pending",
                headers={"Retry-After": "5"},
            ) from exc


def _object_of(request: Request) -> str | None:
    params = request.path_params
    if "publisher" in params:
        return f"share:{params['publisher']}/{params.get('name')}"
    if "name" in params:
        return f"hashset:{params['name']}"
    if "report_id" in params:
        return f"report:{params['report_id']}"
    if "bundle_id" in params:
        return f"bundle:{params['bundle_id']}"
    if "country" in params:
        return f"country:{params['country']}"
    if "token_id" in params:
        return f"token:{params['token_id']}"
    return None
