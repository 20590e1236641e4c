"""The hot path, served before FastAPI's layers: ``POST /v1/match`` with a JSON body, which is
what a platform checking every upload by hash calls.

It does exactly what the FastAPI route does, with the same functions (authentication, role and
rate checks, :func:`routes_match.match_values`, audit, problem details, metrics); it only skips
the framework's per-request machinery (its middleware stack, routing and dependency injection),
which costs more than the search itself. The route stays in the OpenAPI schema, and multipart
uploads to it go through FastAPI as usual. :class:`opspoor.service.app.ServiceApp` calls it unless
``Settings.fast_path`` is off; ``tests/test_service_fastpath.py`` sends the same requests both ways
and compares status, body, audit rows and metrics.
"""

from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING, Any

from starlette.types import Message, Receive, Scope, Send

from opspoor.errors import OpspoorError
from opspoor.service.auth import Call, admit, authenticate, record
from opspoor.service.limits import too_large
from opspoor.service.metrics import observe
from opspoor.service.problems import Problem, problem_for, problem_response
from opspoor.service.routes_match import MATCH_ROLES, match_values

if TYPE_CHECKING:
    from opspoor.service.state import Service

log = logging.getLogger("opspoor.service")
PATH = "/v1/match"
JSON_HEADERS = [(b"content-type", b"application/json")]


def is_fast(scope: Scope) -> bool:
    """A JSON ``POST /v1/match``."""
    return scope["type"] == "http" and scope["path"] == PATH and scope["method"] == "POST" and _is_json(scope)


async def serve_fast(service: Service, scope: Scope, receive: Receive, send: Send) -> None:
    """Answer a request :func:`is_fast` admits."""
    start = time.perf_counter()
    status = await _answer(service, scope, receive, send)
    observe(PATH, "POST", status, time.perf_counter() - start)


async def _answer(service: Service, scope: Scope, receive: Receive, send: Send) -> int:
    headers = _headers(scope)
    call: Call | None = None
    try:
        given = [v.decode("latin-1") for k, v in scope["headers"] if k.lower() == b"authorization"]
        principal = await authenticate(service.tokens, given)
        call = Call(principal, "match", None, changes=False)
        admit(call, MATCH_ROLES, service.rate)
        body = await _read_body(receive, headers, service.settings.max_json_bytes)
        answer = json.dumps(await match_values(service, call, body), separators=(",", ":")).encode()
    except Exception as exc:
        if not isinstance(exc, Problem | OpspoorError):
            log.error("POST %s: %s", PATH, exc, exc_info=exc)
        p = problem_for(exc)
        if call is not None:
            await record(service.audit, call, p.status)
        await problem_response(None, p, instance=PATH)(scope, receive, send)
        return p.status
    await record(service.audit, call, 200)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [*JSON_HEADERS, (b"content-length", str(len(answer)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": answer})
    return 200


def _headers(scope: Scope) -> dict[bytes, bytes]:
    return {k.lower(): v for k, v in scope["headers"]}


def _is_json(scope: Scope) -> bool:
    for k, v in scope["headers"]:
        if k.lower() == b"content-type":
            return bool(v.split(b";")[0].strip().lower() == b"application/json")
    return False


async def _read_body(receive: Receive, headers: dict[bytes, bytes], limit: int) -> bytes:
    declared = headers.get(b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large("the JSON body", limit)
    parts: list[bytes] = []
    size = 0
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            raise Problem(400, "the client went away before sending the whole body", slug="incomplete-body")
        chunk: Any = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise too_large("the JSON body", limit)
        parts.append(chunk)
        if not message.get("more_body", False):
            return b"".join(parts)
