"""NCMEC hash-sharing entries: the XML document NCMEC's hash-sharing API (v2) returns for
``GET /v2/entries`` (a ``queryResult``), saved to a file.

The element names are those of NCMEC's v2 documentation as python-threatexchange's NCMEC client
reads them (``threatexchange/exchanges/clients/ncmec/hash_api.py`` and the sample responses in its
tests): ``queryResult`` > ``images`` / ``videos`` > ``image`` / ``video`` (and ``deletedImage`` /
``deletedVideo``), each with ``id``, ``member id="…"``, ``timestamp``, ``classification`` and
``fingerprints`` (``md5``, ``sha1``, ``pdna``, ``pdq``, …). The namespace is ignored.

Mapping: ``md5``, ``sha1``, ``pdq`` -> signals; ``pdna`` -> ``photodna``; ``classification``
``A1``/``A2``/``B1``/``B2`` -> category ``ncmec:…``; ``id`` -> ``external_id``; the member's name
-> ``source``; ``timestamp`` -> ``date_updated``; the entry kind (image or video), the member id
and fingerprints opspoor does not store (``netclean``, ``tmk-pdqf`` …, their text or link) ->
``extra["ncmec"]``. Deleted entries (tombstones) carry no hashes and are left out.

The XML is parsed as it streams with defusedxml: a document type declaration, entities or
external references are refused, so a crafted file cannot expand or reach out.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, BinaryIO
from xml.etree.ElementTree import Element, ParseError

import defusedxml
from defusedxml.ElementTree import iterparse

from opspoor.errors import FormatError
from opspoor.hashsets.formats.base import (
    ReadOptions,
    RecordError,
    canonical_signal,
    check_has_signal,
    head_text,
    parse_category,
    report,
)
from opspoor.hashsets.model import Entry

NAMESPACE = "https://hashsharing.ncmec.org/hashsharing/v2"
_ENTRIES = {"image", "video"}
_DELETED = {"deletedimage", "deletedvideo"}
_FINGERPRINTS = {"md5": "md5", "sha1": "sha1", "pdq": "pdq", "pdna": "photodna"}


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def sniff_ncmec(head: bytes) -> bool:
    text = head_text(head)
    return "<queryResult" in text and (NAMESPACE in text or "<images" in text or "<videos" in text)


def read_ncmec(stream: BinaryIO, opts: ReadOptions) -> Iterator[Entry]:
    record = 0
    try:
        for _event, el in iterparse(stream, events=("end",), forbid_dtd=True):
            tag = _local(el.tag)
            low = tag.lower()
            if low in _DELETED:
                record += 1
                el.clear()
            elif low in _ENTRIES:
                record += 1
                try:
                    yield _entry(low, el, opts)
                except RecordError as exc:
                    report(FormatError(str(exc), opts.where, record=record), opts)
                el.clear()  # keep memory flat on a large document
    except ParseError as exc:
        line, column = exc.position
        raise FormatError(
            f"XML syntax error at column {column + 1}: {exc.msg}", opts.where, line=line
        ) from None
    except defusedxml.DefusedXmlException as exc:
        raise FormatError(f"refused: {exc}", opts.where) from None


def _child(el: Element, name: str) -> Element | None:
    for c in el:
        if _local(c.tag) == name:
            return c
    return None


def _text(el: Element | None) -> str | None:
    if el is None or el.text is None:
        return None
    return el.text.strip() or None


def _entry(kind: str, el: Element, opts: ReadOptions) -> Entry:
    signals: dict[str, str] = {}
    other: dict[str, str] = {}
    fingerprints = _child(el, "fingerprints")
    for fp in fingerprints if fingerprints is not None else ():
        name = _local(fp.tag)
        value = _text(fp) or fp.get("href")  # large fingerprints come as a link
        signal = _FINGERPRINTS.get(name.lower())
        if signal is not None and value is not None and _text(fp):
            signals[signal] = canonical_signal(signal, value)
        elif value is not None:
            other[name] = value
    check_has_signal(signals)
    member = _child(el, "member")
    extra: dict[str, Any] = {"type": kind}
    if member is not None and member.get("id"):
        extra["member_id"] = member.get("id")
    if other:
        extra["fingerprints"] = other
    classification = _text(_child(el, "classification"))
    return Entry(
        signals,
        category=None
        if classification is None
        else parse_category(f"ncmec:{classification}", "classification"),
        source=_text(member) or opts.source,
        date_updated=_text(_child(el, "timestamp")),
        external_id=_text(_child(el, "id")),
        extra={"ncmec": extra},
    )
