"""The FastAPI application: ``create_app(settings)``.

One :class:`Service` per worker process holds the store, the live index follower, the token cache,
the rate limiter, the audit writer and the hashing threads. Routes reach it as
``request.app.state.service``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from opspoor.service import heap
from opspoor.service.auditing import AuditWriter
from opspoor.service.auth import TokenCache
from opspoor.service.batching import MatchBatcher
from opspoor.service.fastpath import is_fast, serve_fast
from opspoor.service.limits import JsonBodyLimit, RateLimiter
from opspoor.service.live import IndexFollower
from opspoor.service.metrics import RequestMetrics
from opspoor.service.problems import install as install_problems
from opspoor.service.settings import Settings
from opspoor.store import Store, open_store

log = logging.getLogger("opspoor.service")

#: routes that read their own (streamed, multipart) body
STREAMED = ("/v1/hash", "/v1/match")


class Service:
    """What one worker holds while it serves."""

    def __init__(self, settings: Settings, *, freeze: bool = False) -> None:
        """``freeze``: tune the garbage collector for serving (see :mod:`opspoor.service.heap`)."""
        self.settings = settings
        self.freeze = freeze
        self.store: Store = open_store(settings.db)
        self.tokens = TokenCache(self.store, settings.token_cache_seconds)
        self.rate = RateLimiter(settings.rate_per_second, settings.rate_burst)
        self.audit = AuditWriter(self.store, settings.audit_flush_seconds)
        self.index = IndexFollower(
            self.store,
            poll_seconds=settings.poll_seconds,
            threads=search_threads(settings),
            on_loaded=heap.freeze_heap if freeze else None,
        )
        self.batcher = MatchBatcher()
        self.hashing = ThreadPoolExecutor(
            max_workers=settings.hash_threads, thread_name_prefix="opspoor-hash"
        )
        self.upload_slots = anyio.Semaphore(max(1, settings.upload_slots))
        self.pid = os.getpid()

    def start(self) -> None:
        if self.freeze:
            heap.tune_collector()
            heap.freeze_heap()
        self.audit.start()
        self.index.start()

    def close(self) -> None:
        self.index.stop()
        self.hashing.shutdown(wait=True, cancel_futures=True)
        self.audit.close()
        self.store.close()


def search_threads(settings: Settings) -> int:
    if settings.search_threads > 0:
        return settings.search_threads
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cpus // max(1, settings.workers))


class ServiceApp(FastAPI):
    """FastAPI, with the hot path (a JSON ``POST /v1/match``, see :mod:`opspoor.service.fastpath`)
    answered before FastAPI's own layers."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if is_fast(scope):
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
    install_problems(app)
    from opspoor.service import routes_hashsets, routes_health, routes_match, routes_tokens

    app.include_router(routes_health.public)
    for module in (routes_health, routes_match, routes_hashsets, routes_tokens):
        app.include_router(module.router)
    app.add_middleware(JsonBodyLimit, limit=settings.max_json_bytes, streamed=STREAMED)
    app.add_middleware(RequestMetrics)
    return app


def app_from_env() -> FastAPI:
    """The factory ``opspoor serve`` gives uvicorn: settings come from ``OPSPOOR_SERVICE_*``."""
    return create_app(Settings.from_env(), freeze_heap=True)
