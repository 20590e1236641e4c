"""Hashing and matching: ``POST /v1/hash`` and ``POST /v1/match``.

Uploads are held in memory only (see :mod:`opspoor.service.limits`), hashed on the worker's
hashing threads with a time limit, and dropped; only their signals are answered and matched.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError

from opspoor.media.limits import MAX_PIXELS
from opspoor.service.auth import ANALYST, PLATFORM, Call, require
from opspoor.service.limits import Upload, body_chunks, check_declared_length, multipart_boundary, read_upload
from opspoor.service.memory import MIB, check_decode_budget, run_then_trim
from opspoor.service.metrics import MATCH_HITS, MATCH_INPUTS
from opspoor.service.problems import Problem
from opspoor.service.routing import api_router, service_of
from opspoor.service.sharing import SharedMatch, shared_matches

if TYPE_CHECKING:
    from opspoor.service.state import Service
from opspoor.errors import SignalError
from opspoor.matching import Match, Query, value_query, value_widths
from opspoor.signals import SIGNALS
from opspoor.signals.engine import FileSignals, HashOptions, hash_bytes
from opspoor.signals.vpdq import format_vpdq

router = api_router(401, 403, 413, 415, 422, 429, 503, tags=["matching"])

MAX_SIGNALS = 1000
#: the longest value the request schema admits (a PhotoDNA as 144 decimal bytes is 575
#: characters); each signal's own validation checks it after
MAX_VALUE_CHARS = 600
#: who may match (the JSON fast path admits the same roles)
MATCH_ROLES = (PLATFORM, ANALYST)


# --- schemas (documented in the OpenAPI) -------------------------------------------------------
class SignalIn(BaseModel):
    type: Annotated[
        str,
        Field(
            pattern=r"^[a-z][a-z0-9_]{0,15}$",
            description="a signal matched by value: md5, sha1, sha256, pdq, photodna, or a plugin's "
            "exact signal",
        ),
    ]
    value: Annotated[
        str,
        Field(
            pattern=r"^[0-9A-Za-z+/=, ]+$",
            min_length=1,
            max_length=MAX_VALUE_CHARS,
            description="hex; a PhotoDNA also as base64 or comma-separated decimal bytes",
        ),
    ]


class MatchRequest(BaseModel):
    signals: Annotated[list[SignalIn], Field(min_length=1, max_length=MAX_SIGNALS)]


class CategoryOut(BaseModel):
    scheme: str
    code: str


class MatchOut(BaseModel):
    hashset: str
    kind: str
    entry_id: int
    external_id: str | None
    category: CategoryOut | None
    signal: str
    distance: int | None  # Hamming signals; null for a local-feature match (see inliers)
    method: str | None = None
    inliers: int | None = None  # local features: the agreeing patches that decided the match
    owner: str | None = None  # a set another tenant shares: that tenant


class ErrorOut(BaseModel):
    reason: str
    message: str


class FileSignalsOut(BaseModel):
    filename: str | None
    size: int
    md5: str
    sha1: str
    sha256: str
    kind: str
    type: str
    pdq: str | None
    pdq_quality: int | None
    vpdq: str | None
    error: ErrorOut | None = Field(
        description="why the media could not be decoded; the digests are still valid"
    )


class MatchResult(BaseModel):
    input: int
    type: str | None = None
    value: str | None = None
    file: FileSignalsOut | None = None
    matches: list[MatchOut]


class MatchResponse(BaseModel):
    results: list[MatchResult]


def _multipart_body(extra_json: type[BaseModel] | None = None) -> dict[str, Any]:
    content: dict[str, Any] = {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {"file": {"type": "string", "format": "binary"}},
                "required": ["file"],
            }
        }
    }
    if extra_json is not None:
        content["application/json"] = {"schema": {"$ref": f"#/components/schemas/{extra_json.__name__}"}}
    return {"requestBody": {"required": True, "content": content}}


# --- helpers -------------------------------------------------------------------------------------
def signals_json(upload: Upload, sig: FileSignals) -> dict[str, Any]:
    return {
        "filename": upload.filename,
        "size": sig.size,
        "md5": sig.md5,
        "sha1": sig.sha1,
        "sha256": sig.sha256,
        "kind": sig.kind,
        "type": sig.type,
        "pdq": sig.pdq,
        "pdq_quality": sig.quality,
        "vpdq": format_vpdq(sig.vpdq_frames) if sig.vpdq_frames else None,
        "error": {"reason": sig.error.reason, "message": sig.error.message} if sig.error else None,
    }


def query_for_file(sig: FileSignals) -> Query:
    return Query.from_file_signals(sig)


def canonical_value(s: SignalIn, where: str = "value") -> str:
    """The canonical form of a value of a signal matched by value (``matching.value_widths``, from
    the registry), by the signal's own validation: lower-case hex; a PhotoDNA's 144 bytes in hex,
    whichever spelling was sent."""
    widths = value_widths()
    if s.type not in widths:
        raise Problem(
            422,
            f"{s.type!r} values are not matched by value; one of: {', '.join(widths)}",
            slug="invalid-signal",
        )
    try:
        return SIGNALS[s.type].validate(s.value)
    except SignalError as exc:
        raise Problem(422, f"{where}: {exc.message}", slug="invalid-signal") from None


def query_for_value(s: SignalIn) -> Query:
    """One value of a signal matched by value."""
    return value_query(s.type, canonical_value(s))


def match_json(m: Match) -> dict[str, Any]:
    return {
        "hashset": m.hashset,
        "kind": m.kind,
        "entry_id": m.entry_id,
        "external_id": m.external_id,
        "category": {"scheme": m.category.scheme, "code": m.category.code} if m.category else None,
        "signal": m.signal,
        "distance": None if m.inliers is not None else m.distance,
        "method": m.method,
        **({"inliers": m.inliers} if m.inliers is not None else {}),
        **({"owner": m.owner} if isinstance(m, SharedMatch) else {}),
    }


async def hash_upload(
    request: Request, upload: Upload, *, local: bool = False, robust: frozenset[str] = frozenset()
) -> FileSignals:
    """Hash on the worker's hashing threads; 422 when it takes longer than the decode limit.
    ``local``: also the image's local features (for sets that hold their originals'); ``robust``:
    the robust query hashes of an image (``HashOptions.robust``)."""
    return await hash_in_worker(service_of(request), upload, local=local, robust=robust)


async def hash_in_worker(
    svc: Service, upload: Upload, *, local: bool = False, robust: frozenset[str] = frozenset()
) -> FileSignals:
    """``hash_upload`` for a caller that holds the service (a WebSocket message)."""
    s = svc.settings
    pixels = min(s.max_pixels, MAX_PIXELS)  # the service's own limit, never above the media's
    options = HashOptions(video_time_limit=s.decode_seconds, max_pixels=pixels, local=local, robust=robust)
    where = upload.filename or "upload"
    need = check_decode_budget(upload.data, s.decode_memory_mb * MIB)
    future = svc.hashing.submit(
        run_then_trim, lambda: hash_bytes(upload.data, where=where, options=options), need
    )
    try:
        return await asyncio.wait_for(asyncio.wrap_future(future), timeout=s.decode_seconds)
    except TimeoutError:
        future.cancel()
        raise Problem(
            422,
            f"decoding the upload took longer than the limit of {s.decode_seconds:g} s",
            slug="decode-timeout",
        ) from None


async def match_queries(service: Service, call: Call, queries: list[Query]) -> list[list[Match]]:
    """The queries matched against the caller's tenant's sets (in this worker's batch)."""
    index = service.index
    if not index.loaded:
        raise Problem(
            503,
            "the match index is still loading; retry shortly",
            slug="not-ready",
            headers={"Retry-After": "2"},
        )
    matcher = index.matcher(call.principal.tenant)
    results = await service.batcher.match(matcher, queries)
    for shared in await service.shared.of(call.principal.tenant):  # sets other tenants share with it
        theirs = await service.batcher.match(index.matcher(shared.publisher), queries)
        for mine, found in zip(results, theirs, strict=True):
            mine.extend(shared_matches(shared, found))
    for ms in results:
        for m in ms:
            MATCH_HITS.labels(m.signal).inc()
    return results


# --- routes ----------------------------------------------------------------------------------------
@router.post("/v1/hash", response_model=FileSignalsOut, openapi_extra=_multipart_body())
async def hash_file(
    request: Request, call: Annotated[Call, Depends(require("hash", PLATFORM))]
) -> JSONResponse:
    """Signals of an uploaded file (multipart field ``file``): MD5, SHA-1, SHA-256, and PDQ of an
    image or vPDQ of a video. A file that is not media, or cannot be decoded, still gets its digests
    (``error`` says why there is no PDQ). The file is not stored."""
    svc = service_of(request)
    async with svc.upload_slots:
        upload = await read_upload(request, svc.settings.max_upload_bytes)
        sig = await hash_upload(request, upload)
    call.object = f"sha256:{sig.sha256}"
    return JSONResponse(signals_json(upload, sig))


@router.post("/v1/match", response_model=MatchResponse, openapi_extra=_multipart_body(MatchRequest))
async def match(
    request: Request, call: Annotated[Call, Depends(require("match", *MATCH_ROLES))]
) -> JSONResponse:
    """Matches of an uploaded file (multipart field ``file``), or of up to 1,000 hash values
    (JSON ``{"signals": [{"type": "pdq", "value": "…"}]}``), against the tenant's hash sets."""
    svc = service_of(request)
    if multipart_boundary(request) is not None:
        # local features only against a tenant whose sets hold their originals' (hashset build --augment)
        local = svc.index.loaded and svc.index.matcher(call.principal.tenant).has_local
        async with svc.upload_slots:
            upload = await read_upload(request, svc.settings.max_upload_bytes)
            sig = await hash_upload(request, upload, local=local)
        call.object = f"sha256:{sig.sha256}"
        MATCH_INPUTS.labels("file").inc()
        (found,) = await match_queries(svc, call, [query_for_file(sig)])
        result = {"input": 0, "file": signals_json(upload, sig), "matches": [match_json(m) for m in found]}
        return JSONResponse({"results": [result]})
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/json":
        raise Problem(
            415,
            "send hash values as application/json, or a file as multipart/form-data",
            slug="unsupported-media-type",
        )
    limit = svc.settings.max_json_bytes
    check_declared_length(request, limit, "the JSON body")
    body = b"".join([c async for c in body_chunks(request, limit, "the JSON body")])
    return JSONResponse(await match_values(svc, call, body))


async def match_values(service: Service, call: Call, body: bytes) -> dict[str, Any]:
    """The answer to a JSON match request (also served by ``fastpath`` without FastAPI's layers)."""
    try:
        req = MatchRequest.model_validate_json(body)
    except ValidationError as exc:
        errors = [
            {"location": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()[:50]
        ]
        first = errors[0]
        raise Problem(
            422,
            f"{first['location']}: {first['message']}" if first["location"] else first["message"],
            slug="invalid-request",
            extra={"errors": errors},
        ) from None
    values = [canonical_value(s, f"signals.{i}.value") for i, s in enumerate(req.signals)]
    queries = [value_query(s.type, v) for s, v in zip(req.signals, values, strict=True)]
    call.object = f"values:{len(queries)}"
    MATCH_INPUTS.labels("value").inc(len(queries))
    found_all = await match_queries(service, call, queries)
    return {
        "results": [
            {"input": i, "type": s.type, "value": v, "matches": [match_json(m) for m in found]}
            for i, (s, v, found) in enumerate(zip(req.signals, values, found_all, strict=True))
        ]
    }
