"""Live stream sessions: ``POST /v1/streams`` opens one, ``POST /v1/streams/{id}/frames`` pushes a
stream's frames to it and answers the alerts they raise, ``DELETE /v1/streams/{id}`` closes it.

Frames come as PDQ values the platform computed (JSON, up to ``MAX_FRAMES`` a call: nothing of the
picture leaves the platform), as one image (a frame, multipart ``file``), or as a short video
segment (multipart ``file``; its frames are sampled one a second, as vPDQ does). A frame's stream
time is given (``time``), else it is the seconds since the session was opened. Every call is
audited (object ``stream:<id>``); nothing of the stream is stored (``service.streams``).
"""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError

from opspoor.service.auth import PLATFORM, Call, require
from opspoor.service.limits import body_chunks, check_declared_length, multipart_boundary, read_upload
from opspoor.service.problems import Problem
from opspoor.service.routes_match import hash_upload
from opspoor.service.routing import api_router, service_of
from opspoor.stream import DEFAULT_K, DEFAULT_N, HashedFrame, hashed_value, match_frames
from opspoor.stream.watcher import hashed_file

router = api_router(401, 403, 404, 413, 415, 422, 429, 503, tags=["streams"])

#: PDQ values per push
MAX_FRAMES = 100
MAX_WINDOW = 100


class StreamOpen(BaseModel):
    name: Annotated[str | None, Field(max_length=200, description="the stream's name in alerts")] = None
    k: Annotated[int, Field(ge=1, le=MAX_WINDOW, description="alert when k of the last n frames match")] = (
        DEFAULT_K
    )
    n: Annotated[int, Field(ge=1, le=MAX_WINDOW)] = DEFAULT_N


class StreamOut(BaseModel):
    stream: str
    name: str
    k: int
    n: int
    expires_after_seconds: float


class FrameIn(BaseModel):
    time: Annotated[float | None, Field(ge=0, description="stream time, seconds")] = None
    pdq: Annotated[str, Field(pattern=r"^[0-9a-fA-F]{64}$")]
    quality: Annotated[int, Field(ge=0, le=100)] = 100


class FramesIn(BaseModel):
    frames: Annotated[list[FrameIn], Field(min_length=1, max_length=MAX_FRAMES)]


class FrameHitOut(BaseModel):
    stream_time: float
    distance: int
    signal: str
    method: str | None = None


class AlertOut(BaseModel):
    alert: str
    stream: str
    hashset: str
    entry_id: int
    external_id: str | None
    category: dict[str, str] | None
    stream_time: float
    frames: list[FrameHitOut]
    rule: dict[str, int]
    raised_at: str
    latency_ms: float | None = None


class PushOut(BaseModel):
    stream: str
    frames: int
    matched: int
    alerts: list[AlertOut]


class SummaryOut(BaseModel):
    stream: str
    name: str
    frames: int
    matched: int
    alerts: int
    k: int
    n: int


def _invalid(exc: ValidationError) -> Problem:
    e = exc.errors()[0]
    where = ".".join(str(p) for p in e["loc"])
    return Problem(422, f"{where}: {e['msg']}" if where else e["msg"], slug="invalid-request")


async def _json_body(request: Request) -> bytes:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/json":
        raise Problem(
            415,
            "send frames as application/json PDQ values, or a file as multipart/form-data",
            slug="unsupported-media-type",
        )
    limit = service_of(request).settings.max_json_bytes
    check_declared_length(request, limit, "the JSON body")
    return b"".join([c async for c in body_chunks(request, limit, "the JSON body")])


@router.post("/v1/streams", status_code=201, response_model=StreamOut)
async def open_stream(
    request: Request, call: Annotated[Call, Depends(require("stream-open", PLATFORM))]
) -> JSONResponse:
    """Open a stream session (JSON ``{"name": …, "k": 3, "n": 5}``, all optional); push its frames
    to ``/v1/streams/{stream}/frames``. It expires after ``expires_after_seconds`` without a call."""
    raw = await request.body() if request.headers.get("content-length", "0") != "0" else b"{}"
    try:
        req = StreamOpen.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        raise _invalid(exc) from None
    if req.k > req.n:
        raise Problem(422, f"k ({req.k}) is more than the window n ({req.n})", slug="invalid-request")
    svc = service_of(request)
    session = svc.streams.open(call.principal, req.name, req.k, req.n)
    call.object = f"stream:{session.id}"
    out = {"stream": session.id, "name": session.watcher.name, "k": req.k, "n": req.n}
    return JSONResponse({**out, "expires_after_seconds": svc.streams.idle_seconds}, status_code=201)


@router.post(
    "/v1/streams/{stream_id}/frames",
    response_model=PushOut,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/FramesIn"}},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {"file": {"type": "string", "format": "binary"}},
                    }
                },
            },
        }
    },
)
async def push_frames(
    request: Request,
    stream_id: str,
    call: Annotated[Call, Depends(require("stream-push", PLATFORM))],
    at: Annotated[
        float | None, Query(alias="time", ge=0, description="stream time of an uploaded file")
    ] = None,
) -> JSONResponse:
    """Push frames: JSON PDQ values (``{"frames": [{"time": 12.0, "pdq": "…", "quality": 90}]}``),
    or one image or a short video segment as multipart ``file`` (at stream time ``?time=``).
    Answers the alerts these frames raise (k of the last n frames on one known entry)."""
    svc = service_of(request)
    call.object = f"stream:{stream_id}"
    session = svc.streams.get(stream_id, call.principal)
    if not svc.index.loaded:
        raise Problem(
            503,
            "the match index is still loading; retry shortly",
            slug="not-ready",
            headers={"Retry-After": "2"},
        )
    if multipart_boundary(request) is not None:
        start = session.clock() if at is None else at
        async with svc.upload_slots:
            upload = await read_upload(request, svc.settings.max_upload_bytes)
            sig = await hash_upload(request, upload, robust=frozenset({"borders"}))
        if sig.error is not None:
            raise Problem(
                422, f"the frame could not be decoded: {sig.error.message}", slug="undecodable-frame"
            )
        frames = hashed_file(sig, start)
        if not frames:
            raise Problem(
                415, f"not an image or a video segment (sniffed {sig.type})", slug="unsupported-media-type"
            )
    else:
        body = await _json_body(request)
        try:
            req = FramesIn.model_validate_json(body)
        except ValidationError as exc:
            raise _invalid(exc) from None
        now = time.monotonic()
        frames = [
            hashed_value(f.pdq, f.quality, session.clock() if f.time is None else f.time, now)
            for f in req.frames
        ]
    return JSONResponse(await _take(request, session, frames))


async def _take(request: Request, session: Any, frames: list[HashedFrame]) -> dict[str, Any]:
    svc = service_of(request)
    matcher = svc.index.matcher(session.principal.tenant)
    async with session.lock:  # one push at a time per session: its window is one sequence
        found = await asyncio.wrap_future(svc.hashing.submit(match_frames, matcher, frames))
        alerts = []
        for frame, hits in zip(frames, found, strict=True):
            alerts += session.watcher.take(frame, hits)
    for a in alerts:
        a.mark_written()
    return {
        "stream": session.id,
        "frames": len(frames),
        "matched": sum(1 for hits in found if hits),
        "alerts": [a.to_json() for a in alerts],
    }


@router.delete("/v1/streams/{stream_id}", response_model=SummaryOut)
async def close_stream(
    request: Request, stream_id: str, call: Annotated[Call, Depends(require("stream-close", PLATFORM))]
) -> JSONResponse:
    """Close a stream session: answers what it saw (frames, matched frames, alerts); nothing is kept."""
    call.object = f"stream:{stream_id}"
    session = service_of(request).streams.close(stream_id, call.principal)
    return JSONResponse(session.summary())
