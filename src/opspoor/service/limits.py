"""Limits on what a request may cost: body size (413), per-token request rate (429), and reading
uploads into memory without ever writing them to disk.

Uploads are parsed from the request stream with python-multipart's streaming parser into a list of
chunks bounded by the size limit; Starlette's ``UploadFile`` is not used because it spools parts
above 1 MB to a temporary file, and an upload must never touch the disk.
"""

from __future__ import annotations

import io
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import anyio.from_thread
from fastapi import HTTPException, Request
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from opspoor.service.problems import Problem

#: multipart framing allowed on top of the file itself
MULTIPART_SLACK = 64 * 1024


class RateLimiter:
    """A token bucket per API token: ``rate`` requests per second, ``burst`` at once (per worker)."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = max(1.0, float(burst))
        self._buckets: dict[int, tuple[float, float]] = {}  # token id -> (tokens left, at)

    def take(self, key: int) -> float:
        """0 when the request may go ahead, else the seconds until it could."""
        if self.rate <= 0:
            return 0.0
        now = time.monotonic()
        left, at = self._buckets.get(key, (self.burst, now))
        left = min(self.burst, left + (now - at) * self.rate)
        if left < 1.0:
            self._buckets[key] = (left, now)
            return (1.0 - left) / self.rate
        self._buckets[key] = (left - 1.0, now)
        return 0.0


def too_large(what: str, limit: int) -> Problem:
    return Problem(413, f"{what} is larger than the limit of {limit:,} bytes", slug="too-large")


def check_declared_length(request: Request, limit: int, what: str) -> None:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large(what, limit)


@dataclass(slots=True)
class Upload:
    filename: str | None
    content_type: str | None
    data: bytes


def multipart_boundary(request: Request) -> bytes | None:
    """The boundary of a multipart/form-data request, None for another content type."""
    ctype, params = parse_options_header(request.headers.get("content-type", ""))
    if ctype != b"multipart/form-data":
        return None
    boundary = params.get(b"boundary")
    if not boundary:
        raise Problem(400, "multipart/form-data request without a boundary", slug="bad-multipart")
    return boundary


class _FilePart:
    """Collects the parts of a multipart stream as they are parsed: data of the wanted field only."""

    def __init__(self, field: str) -> None:
        self.field = field.encode()
        self.found = False
        self.done = False
        self.filename: str | None = None
        self.content_type: str | None = None
        self.pending: list[bytes] = []
        self._in_field = False
        self._header_name = b""
        self._header_value = b""
        self._headers: dict[bytes, bytes] = {}

    def callbacks(self) -> dict[str, Any]:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value_cb,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
        }

    def _part_begin(self) -> None:
        self._headers = {}
        self._in_field = False

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _header_value_cb(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._header_name.lower()] = self._header_value
        self._header_name = self._header_value = b""

    def _headers_finished(self) -> None:
        _, params = parse_options_header(self._headers.get(b"content-disposition", b""))
        if params.get(b"name") == self.field and not self.found:
            self.found = self._in_field = True
            name = params.get(b"filename")
            self.filename = name.decode("utf-8", "replace") if name is not None else None
            ctype = self._headers.get(b"content-type")
            self.content_type = ctype.decode("latin-1") if ctype else None

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_field:
            self.pending.append(bytes(data[start:end]))

    def _part_end(self) -> None:
        if self._in_field:
            self._in_field = False
            self.done = True


async def multipart_file_chunks(
    request: Request, boundary: bytes, field: str, limit: int, part: _FilePart | None = None
) -> AsyncIterator[bytes]:
    """The bytes of multipart field ``field``, as they arrive; 413 past ``limit`` bytes of it."""
    part = part or _FilePart(field)
    parser = MultipartParser(boundary, part.callbacks())  # type: ignore[arg-type]
    size = 0
    body = 0
    try:
        async for chunk in request.stream():
            body += len(chunk)
            if body > limit + MULTIPART_SLACK:
                raise too_large("the upload", limit)
            parser.write(chunk)
            for data in part.pending:
                size += len(data)
                if size > limit:
                    raise too_large("the uploaded file", limit)
                yield data
            part.pending.clear()
            if part.done:
                break
        else:
            parser.finalize()
    except MultipartParseError as exc:
        raise Problem(400, f"the multipart body is malformed: {exc}", slug="bad-multipart") from None
    if not part.found:
        raise Problem(
            422, f"the multipart body has no field {field!r}; send the file as '{field}'", slug="missing-file"
        )
    if not part.done:
        raise Problem(400, "the multipart body ended inside the file part", slug="bad-multipart")


async def read_upload(request: Request, limit: int, field: str = "file") -> Upload:
    """The uploaded file of a multipart/form-data request, in memory."""
    check_declared_length(request, limit + MULTIPART_SLACK, "the upload")
    boundary = multipart_boundary(request)
    if boundary is None:
        raise Problem(
            415, f"send the file as multipart/form-data in the field {field!r}", slug="unsupported-media-type"
        )
    part = _FilePart(field)
    chunks = [c async for c in multipart_file_chunks(request, boundary, field, limit, part)]
    return Upload(part.filename, part.content_type, b"".join(chunks))


class StreamReader(io.RawIOBase):
    """A blocking binary stream over an async byte iterator, read from a worker thread that anyio
    started (``anyio.to_thread.run_sync``): each read waits for the event loop's next chunk."""

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self._chunks = chunks
        self._buf = memoryview(b"")
        self._eof = False

    def readable(self) -> bool:
        return True

    async def _next(self) -> bytes:
        try:
            return await self._chunks.__anext__()
        except StopAsyncIteration:
            return b""

    def readinto(self, b: Any) -> int:
        while not self._buf and not self._eof:
            chunk = anyio.from_thread.run(self._next)
            if chunk:
                self._buf = memoryview(chunk)
            else:
                self._eof = True
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


async def body_chunks(request: Request, limit: int, what: str) -> AsyncIterator[bytes]:
    """The raw request body as it arrives; 413 past ``limit`` bytes."""
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(what, limit)
        if chunk:
            yield chunk


class JsonBodyLimit:
    """ASGI middleware: request bodies that FastAPI reads itself (JSON) stop at ``limit`` bytes.
    Routes that stream their body (uploads, imports) are skipped: they enforce their own limits."""

    def __init__(self, app: ASGIApp, limit: int, streamed: tuple[str, ...]) -> None:
        self.app = app
        self.limit = limit
        self.streamed = streamed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD") or self._streams(scope["path"]):
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                await _send_413(scope, send, self.limit)
                return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise HTTPException(
                        413, f"the request body is larger than the limit of {self.limit:,} bytes"
                    )
            return message

        await self.app(scope, limited, send)

    def _streams(self, path: str) -> bool:
        return path in self.streamed or path.endswith(("/import", "/upload", "/frames"))


async def _send_413(scope: Scope, send: Send, limit: int) -> None:
    from opspoor.service.problems import problem_response

    p = too_large("the request body", limit)
    response = problem_response(None, p)
    await response(scope, _no_receive, send)


async def _no_receive() -> Message:  # pragma: no cover - a JSONResponse does not read
    return {"type": "http.disconnect"}
