"""The FastAPI application: ``create_app(settings)``.

It assembles the routes around one :class:`~opspoor.service.state.Service` per worker process
(:mod:`opspoor.service.state`). Nothing in the service imports this module: only the entry points
(``opspoor serve``, tests) do.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from opspoor.service import (
    routes_hashsets,
    routes_health,
    routes_intake,
    routes_match,
    routes_sharing,
    routes_streams,
    routes_tokens,
)
from opspoor.service.fastpath import is_fast, serve_fast
from opspoor.service.limits import JsonBodyLimit
from opspoor.service.metrics import RequestMetrics
from opspoor.service.problems import install as install_problems
from opspoor.service.settings import Settings
from opspoor.service.state import Service, search_threads

__all__ = ["STREAMED", "Service", "ServiceApp", "app_from_env", "create_app", "search_threads"]

#: routes that read their own (streamed, multipart) body
STREAMED = ("/v1/hash", "/v1/match")


class ServiceApp(FastAPI):
    """FastAPI, with the hot path (a JSON ``POST /v1/match``, see :mod:`opspoor.service.fastpath`)
    answered before FastAPI's own layers (unless ``Settings.fast_path`` is off)."""

    fast_path = True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.fast_path and is_fast(scope):
            await serve_fast(self.state.service, scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_app(settings: Settings | None = None, *, freeze_heap: bool = False) -> FastAPI:
    """The service application. Store, index and audit writer start with the app's lifespan.

    ``freeze_heap``: the serving process's garbage-collector tuning (:mod:`opspoor.service.heap`);
    ``opspoor serve`` sets it, an app made in a test does not.
    """
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service = Service(settings, freeze=freeze_heap)
        app.state.service = service
        service.start()
        try:
            yield
        finally:
            await anyio.to_thread.run_sync(service.close)

    app = ServiceApp(
        title="opspoor",
        summary="Hash and match media against known hash sets.",
        description=(
            "Every route except `/v1/health` needs `Authorization: Bearer <token>`. "
            "Errors are RFC 9457 problem details."
        ),
        version="1",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.fast_path = settings.fast_path
    install_problems(app)
    app.include_router(routes_health.public)
    for module in (
        routes_health,
        routes_match,
        routes_hashsets,
        routes_tokens,
        routes_intake,
        routes_sharing,
        routes_streams,
    ):
        app.include_router(module.router)
    app.add_middleware(JsonBodyLimit, limit=settings.max_json_bytes, streamed=STREAMED)
    app.add_middleware(RequestMetrics)
    return app


def app_from_env() -> FastAPI:
    """The factory ``opspoor serve`` gives uvicorn: settings come from ``OPSPOOR_SERVICE_*``."""
    return create_app(Settings.from_env(), freeze_heap=True)
