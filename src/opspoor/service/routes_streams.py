"""Live stream sessions: ``POST /v1/streams`` opens one, ``POST /v1/streams/{id}/frames`` pushes a
stream's frames to it and answers the alerts they raise, ``DELETE /v1/streams/{id}`` closes it.

Frames come as PDQ values the platform computed (JSON, up to ``MAX_FRAMES`` a call: nothing of the
picture leaves the platform), as one image (a frame, multipart ``file``), or as a short video
segment (multipart ``file``; its frames are sampled one a second, as vPDQ does). A frame's stream
time is given (``time``), else it is the seconds since the session was opened. The WebSocket
``/v1/streams/socket`` is the same exchange on one connection. Every call and message is audited
(object ``stream:<id>``); nothing of the stream is stored (``service.streams``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError

from opspoor.service.auth import PLATFORM, Call, admit, authenticate, record, require
from opspoor.service.limits import Upload, body_chunks, check_declared_length, multipart_boundary, read_upload
from opspoor.service.problems import Problem
from opspoor.service.routes_match import hash_in_worker
from opspoor.service.routing import api_router, service_of
from opspoor.service.streams import StreamSession
from opspoor.stream import DEFAULT_K, DEFAULT_N, HashedFrame, hashed_value, match_frames
from opspoor.stream.watcher import hashed_file

if TYPE_CHECKING:
    from opspoor.service.state import Service

router = api_router(401, 403, 404, 413, 415, 421, 422, 429, 503, tags=["streams"])

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
    _check_ready(svc)
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
    if multipart_boundary(request) is not None:
        async with svc.upload_slots:
            upload = await read_upload(request, svc.settings.max_upload_bytes)
            frames = await _file_frames(svc, upload, session.clock() if at is None else at)
    else:
        frames = _value_frames(await _json_body(request), session)
    return JSONResponse(await take_frames(svc, session, frames))


async def _file_frames(svc: Service, upload: Upload, start: float) -> list[HashedFrame]:
    """An uploaded image (one frame) or short video segment (its frames, one a second)."""
    sig = await hash_in_worker(svc, upload, robust=frozenset({"borders"}))
    if sig.error is not None:
        raise Problem(422, f"the frame could not be decoded: {sig.error.message}", slug="undecodable-frame")
    frames = hashed_file(sig, start)
    if not frames:
        raise Problem(
            415, f"not an image or a video segment (sniffed {sig.type})", slug="unsupported-media-type"
        )
    return frames


def _value_frames(body: bytes, session: StreamSession) -> list[HashedFrame]:
    """PDQ values the platform computed (``FramesIn``)."""
    try:
        req = FramesIn.model_validate_json(body)
    except ValidationError as exc:
        raise _invalid(exc) from None
    now = time.monotonic()
    return [
        hashed_value(f.pdq, f.quality, session.clock() if f.time is None else f.time, now) for f in req.frames
    ]


def _check_ready(svc: Service) -> None:
    """503 until this worker's index is loaded and warm (``IndexFollower.load`` hashes and matches
    a stream frame once first): a session is opened, and its frames taken, only then, so that the
    first frame of a stream never waits for the compiled kernels."""
    if not svc.index.loaded:
        raise Problem(
            503,
            "the match index is still loading; retry shortly",
            slug="not-ready",
            headers={"Retry-After": "2"},
        )


async def take_frames(svc: Service, session: StreamSession, frames: list[HashedFrame]) -> dict[str, Any]:
    """Match the frames against the session's tenant's sets and take them into its window, in order."""
    _check_ready(svc)
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


# --- the same over one WebSocket ----------------------------------------------------------------
@router.websocket("/v1/streams/socket")
async def stream_socket(
    websocket: WebSocket,
    name: Annotated[str | None, Query(max_length=200)] = None,
    k: Annotated[int, Query(ge=1, le=MAX_WINDOW)] = DEFAULT_K,
    n: Annotated[int, Query(ge=1, le=MAX_WINDOW)] = DEFAULT_N,
) -> None:
    """A stream session on one connection (``Authorization: Bearer`` at the handshake, role
    platform): it opens with the connection (first message: the session, as ``POST /v1/streams``
    answers it), takes text messages ``{"frames": [...]}`` (as the JSON push) and binary messages
    (an image or a short segment, at the session's clock), answers each with its alerts (or
    ``{"problem": {...}}`` and goes on), and closes with the connection, or after
    ``stream_idle_seconds`` without a message. Each step is audited as over HTTP."""
    svc: Service = websocket.app.state.service
    try:
        principal = await authenticate(svc.tokens, websocket.headers.getlist("authorization"))
        opening = Call(principal, "stream-open", None, False)
        admit(opening, (PLATFORM,), svc.rate)
        if k > n:
            raise Problem(422, f"k ({k}) is more than the window n ({n})", slug="invalid-request")
        _check_ready(svc)
        session = svc.streams.open(principal, name, k, n)
    except Problem as exc:
        # 1013: try again later (the index is loading); else 1008, policy violation: refused
        await websocket.close(code=1013 if exc.status == 503 else 1008, reason=exc.detail[:120])
        return
    opening.object = f"stream:{session.id}"
    await websocket.accept()
    await record(svc.audit, opening, 201)
    await websocket.send_json(
        {
            "stream": session.id,
            "name": session.watcher.name,
            "k": k,
            "n": n,
            "expires_after_seconds": svc.streams.idle_seconds,
        }
    )
    try:
        while True:
            try:
                message = await asyncio.wait_for(websocket.receive(), timeout=svc.streams.idle_seconds)
            except TimeoutError:
                svc.streams.expire_now(session)
                await websocket.close(code=1000, reason="expired: no frames")
                return
            if message["type"] == "websocket.disconnect":
                break
            call = Call(principal, "stream-push", opening.object, False)
            try:
                svc.streams.get(session.id, principal)
                admit(call, (PLATFORM,), svc.rate)
                if message.get("bytes") is not None:
                    upload = Upload("frame", None, message["bytes"])
                    frames = await _file_frames(svc, upload, session.clock())
                else:
                    frames = _value_frames((message.get("text") or "").encode(), session)
                answer = await take_frames(svc, session, frames)
                status = 200
            except Problem as exc:
                answer = {
                    "problem": {
                        "status": exc.status,
                        "type": f"urn:opspoor:problem:{exc.slug}",
                        "detail": exc.detail,
                    }
                }
                status = exc.status
            await record(svc.audit, call, status)
            await websocket.send_json(answer)
    except WebSocketDisconnect:
        pass
    closing = Call(principal, "stream-close", opening.object, False)
    with contextlib.suppress(Problem):  # expired meanwhile
        svc.streams.close(session.id, principal)
    await record(svc.audit, closing, 200)
