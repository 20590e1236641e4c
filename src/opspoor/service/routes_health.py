"""Health, readiness and metrics. Only ``/v1/health`` answers without a token; ``/v1/ready`` and
``/metrics`` take a token of any role (they show no tenant's data) and are not audited."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from opspoor.service.auth import ANY_ROLE, Call, require
from opspoor.service.metrics import CHANGE_LOG_POSITION, INDEX_ENTRIES, render
from opspoor.service.routing import api_router, service_of

#: the one route without a token
public = APIRouter(tags=["health"])
router = api_router(401, 429, tags=["health"])


class Health(BaseModel):
    status: str


class Ready(BaseModel):
    ready: bool
    detail: str
    worker: int
    change_id: int
    change_log_age_seconds: float | None
    index: dict[str, int]


@public.get("/v1/health", response_model=Health)
async def health() -> Health:
    """The process is up (no token needed)."""
    return Health(status="ok")


@router.get("/v1/ready", response_model=Ready, responses={503: {"model": Ready, "description": "not ready"}})
async def ready(
    request: Request, _call: Annotated[Call, Depends(require("ready", *ANY_ROLE, audit=False))]
) -> JSONResponse:
    """200 when this worker's index is loaded and it has read the change log within the freshness
    limit; 503 otherwise."""
    svc = service_of(request)
    state = svc.index.state()
    fresh = state.age_seconds is not None and state.age_seconds <= svc.settings.fresh_seconds
    ok = state.loaded and fresh and state.error is None
    if not state.loaded:
        detail = "the index is loading"
    elif state.error is not None:
        detail = f"the change log cannot be read: {state.error}"
    elif not fresh:
        detail = "the index is stale: the change log was not read recently"
    else:
        detail = "ready"
    sizes = svc.index.index_sizes() if state.loaded else {}
    body = Ready(
        ready=ok,
        detail=detail,
        worker=svc.pid,
        change_id=state.last_change,
        change_log_age_seconds=None if state.age_seconds is None else round(state.age_seconds, 3),
        index=sizes,
    )
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
async def metrics(
    request: Request, _call: Annotated[Call, Depends(require("metrics", *ANY_ROLE, audit=False))]
) -> Response:
    """Prometheus metrics of all workers (any valid token)."""
    svc = service_of(request)
    if svc.index.loaded:
        for sig, n in svc.index.index_sizes().items():
            INDEX_ENTRIES.labels(sig).set(n)
        CHANGE_LOG_POSITION.set(svc.index.last_change)
    data, ctype = render()
    return Response(data, media_type=ctype)
