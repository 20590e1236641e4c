"""Answers in XML for clients that ask for it (``Accept: application/xml``), as NCMEC's CyberTipline
API answers: the intake's flow answers ``<reportResponse>`` (submit, upload, fileinfo, retract) and
``<reportDoneResponse>`` (finish, with ``<files><fileId>``), and its errors are RFC 9457 problems
in their XML form (``application/problem+xml``, namespace ``urn:ietf:rfc:7807``, list members as
``<i>`` elements), so a fault in a document still names its element and pointer.

JSON stays the default: XML only when the ``Accept`` header rates an XML type above JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from xml.etree.ElementTree import Element, SubElement, tostring

from starlette.requests import Request
from starlette.responses import Response

XML_TYPES = ("application/xml", "text/xml", "application/problem+xml")
JSON_TYPES = ("application/json", "application/problem+json", "*/*", "application/*")
PROBLEM_NS = "urn:ietf:rfc:7807"
#: only these routes answer in XML (the CyberTipline-shaped intake)
XML_PREFIX = "/v1/intake/"


def _quality(accept: str, types: tuple[str, ...]) -> float:
    best = 0.0
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        if media.lower() not in types:
            continue
        q = 1.0
        for p in params:
            name, _, value = p.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        best = max(best, q)
    return best


def wants_xml(request: Request) -> bool:
    """The client asked for XML over JSON, on a route that answers in XML."""
    if not request.url.path.startswith(XML_PREFIX):
        return False
    accept = request.headers.get("accept", "")
    xml = _quality(accept, XML_TYPES)
    return xml > 0 and xml > _quality(accept, JSON_TYPES)


def _fill(parent: Element, value: Any, item: str | None) -> None:
    if isinstance(value, Mapping):
        for k, v in value.items():
            if v is None:
                continue
            if item is None and isinstance(v, list | tuple):  # NCMEC's way: the element repeated
                for member in v:
                    _fill(SubElement(parent, str(k)), member, item)
            else:
                _fill(SubElement(parent, str(k)), v, item)
    elif isinstance(value, list | tuple):
        for v in value:
            _fill(SubElement(parent, item or "i"), v, item)
    elif isinstance(value, bool):
        parent.text = "true" if value else "false"
    else:
        parent.text = str(value)


def xml_document(
    root: str, body: Mapping[str, Any], *, namespace: str | None = None, item: str | None = None
) -> bytes:
    """``body`` as an XML document under ``root``: a member per child element, ``None`` left out;
    a list's members repeat its element (NCMEC's documents) or, given ``item``, are ``item``
    elements inside it (RFC 9457's XML form uses ``i``)."""
    top = Element(root, {"xmlns": namespace} if namespace else {})
    _fill(top, body, item)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + tostring(top, encoding="utf-8")


def answer(request: Request, body: dict[str, Any], *, root: str = "reportResponse", status: int = 200) -> Any:
    """``body`` as it is (JSON), or as NCMEC's XML answer when the client asks for XML."""
    if not wants_xml(request):
        return body
    return Response(xml_document(root, body), status_code=status, media_type="application/xml")


def problem_xml(body: Mapping[str, Any], status: int, headers: Mapping[str, str] | None) -> Response:
    return Response(
        xml_document("problem", body, namespace=PROBLEM_NS, item="i"),
        status_code=status,
        headers=dict(headers or {}),
        media_type="application/problem+xml",
    )
