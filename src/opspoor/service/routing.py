"""The route class every API router uses: it writes each authenticated call's audit row."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute

from opspoor.service.auth import Call, record
from opspoor.service.problems import responses, status_for

if TYPE_CHECKING:
    from opspoor.service.state import Service


class AuditedRoute(APIRoute):
    """Writes the audit row of every authenticated call (see ``auth.require``), with the status it
    ended in. A call that changes data is answered only after its row is committed."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        inner = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                response = await inner(request)
            except BaseException as exc:
                call: Call | None = getattr(request.state, "call", None)
                if call is not None:
                    await record(service_of(request).audit, call, status_for(exc))
                raise
            call = getattr(request.state, "call", None)
            if call is not None:
                await record(service_of(request).audit, call, response.status_code)
            return response

        return handler


def service_of(request: Request) -> Service:
    svc: Any = request.app.state.service
    return svc  # type: ignore[no-any-return]


def api_router(*statuses: int, **kwargs: Any) -> APIRouter:
    """A router whose routes are audited and document the problem answers ``statuses`` (and 400,
    which every authenticated route gives to a repeated ``Authorization`` header)."""
    return APIRouter(route_class=AuditedRoute, responses=responses(*sorted({400, *statuses})), **kwargs)
