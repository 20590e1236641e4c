"""The route class every API router uses: it writes each authenticated call's audit row."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute

from opspoor.service.auth import Call
from opspoor.service.problems import responses, status_for

if TYPE_CHECKING:
    from opspoor.service.app import Service

log = logging.getLogger("opspoor.service")


class AuditedRoute(APIRoute):
    """Writes the audit row of every authenticated call (see ``auth.require``), with the status it
    ended in. A call that changes data is answered only after its row is committed."""

    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        inner = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                response = await inner(request)
            except BaseException as exc:
                call: Call | None = getattr(request.state, "call", None)
                if call is not None and call.audit:
                    status = status_for(exc)
                    result = "denied" if status in (401, 403) else "rejected" if status < 500 else "error"
                    await _record(request, call, result, status)
                raise
            call = getattr(request.state, "call", None)
            if call is not None and call.audit:
                await _record(request, call, "ok", response.status_code)
            return response

        return handler


async def _record(request: Request, call: Call, result: str, status: int) -> None:
    try:
        await service_of(request).audit.record(call.event(result, status), wait=call.changes)
    except Exception as exc:  # the row stays queued and is retried; the change itself is done
        log.error("audit row of %s queued but not yet written: %s", call.action, exc)


def service_of(request: Request) -> Service:
    svc: Any = request.app.state.service
    return svc  # type: ignore[no-any-return]


def api_router(*statuses: int, **kwargs: Any) -> APIRouter:
    """A router whose routes are audited and document the problem answers ``statuses``."""
    return APIRouter(route_class=AuditedRoute, responses=responses(*statuses), **kwargs)
