"""Report documents in NCMEC CyberTipline element names, as JSON or XML, validated against the
schemas shipped in ``intake/schema`` (a JSON Schema and an XSD 1.1 that describe the same
documents). Every fault names its element: a JSON pointer for JSON, the element path for XML.

XML is parsed with ``defusedxml`` (no DTDs, entity expansion or external entities), checked against
the XSD, decoded into the JSON shape (a flag element such as ``<infant/>`` becomes ``true``) and then
checked against the JSON Schema as well, so both formats end as the same, valid JSON document.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any, Literal

import orjson

from opspoor.errors import DocumentError

SCHEMA_DIR = Path(__file__).resolve().parent / "schema"
JSON_SCHEMA = SCHEMA_DIR / "report.schema.json"
XSD = SCHEMA_DIR / "report.xsd"
Kind = Literal["report", "fileDetails"]
#: elements whose children are flags (empty elements in XML, booleans in JSON)
FLAG_GROUPS = ("reportAnnotations", "fileAnnotations")
MAX_ERRORS = 50
UNEXPECTED = re.compile(r"Unexpected child with tag '([^']+)'")


@cache
def _json_validator(kind: Kind) -> Any:
    from jsonschema import Draft202012Validator, FormatChecker

    schema = json.loads(JSON_SCHEMA.read_text(encoding="utf-8"))
    schema.pop("oneOf")  # validate the one kind expected, so errors name its elements
    schema.update(
        {"required": [kind], "properties": {kind: {"$ref": f"#/$defs/{kind}"}}, "additionalProperties": False}
    )
    Draft202012Validator.check_schema(schema)
    # formats are checked (an IP address is one), only those the schema uses
    return Draft202012Validator(schema, format_checker=FormatChecker(formats=("ipv4", "ipv6")))


@cache
def _xsd() -> Any:
    import xmlschema

    return xmlschema.XMLSchema11(str(XSD))


def json_schema() -> dict[str, Any]:
    """The JSON Schema, as shipped (``GET /v1/intake/schema.json``)."""
    return dict(json.loads(JSON_SCHEMA.read_text(encoding="utf-8")))


def is_xml(content_type: str | None, body: bytes) -> bool:
    ctype = (content_type or "").split(";")[0].strip().lower()
    if ctype in ("application/xml", "text/xml"):
        return True
    if ctype == "application/json":
        return False
    return body.lstrip()[:1] == b"<"


def parse_document(body: bytes, kind: Kind, *, xml: bool) -> dict[str, Any]:
    """The document's content under its root element (``report`` or ``fileDetails``), valid, in the
    JSON shape; :class:`DocumentError` listing every fault (up to 50) otherwise."""
    doc = _from_xml(body, kind) if xml else _from_json(body)
    errors = [_json_fault(e) for e in _json_validator(kind).iter_errors(doc)]
    if errors:
        raise _error(kind, sorted(errors)[:MAX_ERRORS])
    return dict(doc[kind])


def _from_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise DocumentError(f"the body is not JSON: {exc}", errors=[("", "", f"not JSON: {exc}")]) from None


def _from_xml(body: bytes, kind: Kind) -> dict[str, Any]:
    from xml.etree.ElementTree import ParseError

    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import fromstring

    try:
        root = fromstring(body, forbid_dtd=True)
    except (ParseError, DefusedXmlException) as exc:
        raise DocumentError(f"the body is not acceptable XML: {exc}", errors=[("", "", str(exc))]) from None
    if root.tag != kind:
        raise DocumentError(
            f"the root element is <{root.tag}>; this call takes <{kind}>",
            errors=[(f"/{root.tag}", root.tag, f"expected <{kind}>")],
        )
    schema = _xsd()
    faults = []
    for e in schema.iter_errors(root):
        path = e.path or f"/{kind}"
        element = str(e.elem.tag if e.elem is not None else path.rsplit("/", 1)[-1])
        reason = str(e.reason or e.message)
        unexpected = UNEXPECTED.search(reason)
        if unexpected:  # name the stray child, not its parent
            element, path = unexpected.group(1), f"{path}/{unexpected.group(1)}"
        faults.append((path, element, reason))
        if len(faults) >= MAX_ERRORS:
            break
    if faults:
        raise _error(kind, faults)
    data = schema.to_dict(root)
    return {kind: _flags(data)}


def _flags(node: Any, parent: str = "") -> Any:
    """Empty flag elements decode as None: they mean true."""
    if isinstance(node, dict):
        if parent in FLAG_GROUPS:
            return {k: True if v is None else v for k, v in node.items()}
        return {k: _flags(v, k) for k, v in node.items() if not k.startswith("@")}
    if isinstance(node, list):
        return [_flags(v, parent) for v in node]
    return node


def _json_fault(e: Any) -> tuple[str, str, str]:
    path = [str(p) for p in e.absolute_path]
    if e.validator == "required" and isinstance(e.instance, dict):
        missing = [p for p in e.validator_value if p not in e.instance]
        if missing:
            path.append(missing[0])
            return ("/" + "/".join(path), missing[0], f"{missing[0]} is required")
    if e.validator == "additionalProperties" and isinstance(e.instance, dict):
        allowed = set(e.schema.get("properties", {}))
        extra = sorted(k for k in e.instance if k not in allowed)
        if extra:
            path.append(extra[0])
            return ("/" + "/".join(path), extra[0], f"{extra[0]} is not an element of this schema here")
    if e.validator == "anyOf" and all("format" in sub for sub in e.validator_value):
        element = next((p for p in reversed(path) if not p.isdigit()), "")
        kinds = " or ".join(sub["format"].upper().replace("V", "v") for sub in e.validator_value)
        return ("/" + "/".join(path), element, f"{e.instance!r} is not an {kinds} address"[:500])
    element = next((p for p in reversed(path) if not p.isdigit()), "")
    return ("/" + "/".join(path), element, str(e.message)[:500])


def _error(kind: Kind, errors: list[tuple[str, str, str]]) -> DocumentError:
    pointer, element, message = errors[0]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return DocumentError(f"{element or kind} at {pointer or '/'}: {message}{more}", where=kind, errors=errors)
