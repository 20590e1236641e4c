"""Errors as RFC 9457 problem details (``application/problem+json``).

Every error answer has ``type`` (``urn:opspoor:problem:<slug>``), ``title``, ``status`` and a
``detail`` that says what was wrong in words a client developer can act on. Internal errors say
only that they happened; the server log has the rest (never a token).
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from opspoor.errors import (
    AlreadyExists,
    DocumentError,
    FormatError,
    IntakeError,
    MediaError,
    NotFound,
    OpspoorError,
    SignalError,
    StoreError,
)
from opspoor.service.xml_answers import problem_xml, wants_xml

log = logging.getLogger("opspoor.service")
MEDIA_TYPE = "application/problem+json"


class ProblemModel(BaseModel):
    """RFC 9457 problem details, as documented in the OpenAPI schema."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None


class Problem(Exception):
    """An error answer. ``slug`` names the problem type; ``extra`` adds members."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        slug: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.slug = slug or _slug(status)
        self.headers = headers
        self.extra = extra


#: RFC 9110's reason phrases where Python's ``HTTPStatus`` (before 3.13) has the older ones
_RFC9110_PHRASES = {413: "Content Too Large", 416: "Range Not Satisfiable", 422: "Unprocessable Content"}


def status_phrase(status: int) -> str:
    """The reason phrase of a status as RFC 9110 names it (a problem's ``title``)."""
    try:
        return _RFC9110_PHRASES.get(status) or HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _slug(status: int) -> str:
    phrase = status_phrase(status)
    return "error" if phrase == "Error" else phrase.lower().replace(" ", "-").replace("'", "")


def problem_response(request: Request | None, p: Problem, instance: str | None = None) -> Response:
    title = status_phrase(p.status)
    body: dict[str, Any] = {
        "type": f"urn:opspoor:problem:{p.slug}",
        "title": title,
        "status": p.status,
        "detail": p.detail,
    }
    if request is not None or instance is not None:
        body["instance"] = instance or request.url.path  # type: ignore[union-attr]
    if p.extra:
        body.update(p.extra)
    if request is not None and wants_xml(request):  # the intake's clients may ask for XML
        return problem_xml(body, p.status, p.headers)
    return JSONResponse(body, status_code=p.status, headers=p.headers, media_type=MEDIA_TYPE)


def problem_for(exc: BaseException) -> Problem:
    """The answer an exception becomes."""
    if isinstance(exc, Problem):
        return exc
    if isinstance(exc, RequestValidationError):
        errors = [
            {"location": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg", "")}
            for e in exc.errors()
        ]
        first = errors[0] if errors else {"location": "", "message": "invalid request"}
        detail = f"{first['location']}: {first['message']}" if first["location"] else first["message"]
        return Problem(422, detail, slug="invalid-request", extra={"errors": errors[:50]})
    if isinstance(exc, StarletteHTTPException):
        return Problem(exc.status_code, str(exc.detail), headers=dict(exc.headers or {}) or None)
    if isinstance(exc, OpspoorError):
        return _opspoor_problem(exc)
    return Problem(500, "internal error; the server log has the details", slug="internal-error")


#: the command line's words in the errors of the layers below, as an HTTP client says the same
#: (the query parameters of ``POST /v1/hashsets/{name}/import``)
_HTTP_WORDS = (
    ("pass --type sha256 or --type pdq", "set the query parameter hash_type to sha256 or pdq"),
    ("pass --format", "set the query parameter format"),
)


def http_words(text: str) -> str:
    """``text`` with the command line's option names put as the HTTP API names them."""
    for cli, http in _HTTP_WORDS:
        text = text.replace(cli, http)
    return text


def _opspoor_problem(exc: OpspoorError) -> Problem:
    text = http_words(str(exc))
    if isinstance(exc, NotFound):
        return Problem(404, text, slug="not-found")
    if isinstance(exc, AlreadyExists):
        return Problem(409, text, slug="already-exists")
    if isinstance(exc, DocumentError):
        errors = [{"pointer": p, "element": e, "message": m} for p, e, m in exc.errors]
        return Problem(422, exc.message, slug="invalid-document", extra={"errors": errors})
    if isinstance(exc, IntakeError):
        return Problem(409, text, slug="report-state")
    if isinstance(exc, FormatError):
        return Problem(422, text, slug="invalid-hashset-file")
    if isinstance(exc, SignalError):
        return Problem(422, text, slug="invalid-signal")
    if isinstance(exc, MediaError):
        return Problem(422, text, slug="invalid-media")
    if isinstance(exc, StoreError) and exc.__cause__ is not None:
        return Problem(503, "the store is unavailable; try again later", slug="store-unavailable")
    return Problem(422, text, slug="invalid-request")


def status_for(exc: BaseException) -> int:
    return problem_for(exc).status


def install(app: FastAPI) -> None:
    """Answer every error with problem details."""

    async def handle(request: Request, exc: Exception) -> Response:
        p = problem_for(exc)
        if p.status >= 500:
            log.error("%s %s: %s", request.method, request.url.path, exc, exc_info=exc)
        return problem_response(request, p)

    for kind in (Problem, RequestValidationError, StarletteHTTPException, OpspoorError, Exception):
        app.add_exception_handler(kind, handle)


#: the error answers every authenticated route may give, for the OpenAPI schema
def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {
        s: {"model": ProblemModel, "description": status_phrase(s), "content": {MEDIA_TYPE: {}}}
        for s in statuses
    }
