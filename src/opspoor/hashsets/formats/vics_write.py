"""Writing Project VIC VICS (OData JSON) 2.0 and 1.3, flat ``#Media`` sets and ``#Cases`` exports;
the mapping is the reader's (:mod:`.vics`), the other way round."""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from typing import Any, BinaryIO

from opspoor.hashsets.formats.base import WriteOptions, bool_text
from opspoor.hashsets.formats.vics import CONTEXT_V2, CONTEXT_V13, VICS_EQUIVALENT
from opspoor.hashsets.model import Category, Entry
from opspoor.signals.photodna import photodna_base64

_INHOPE_EQUIVALENT = {"baseline": 1, "national": 0, "not-illegal": 0}
_ALT_WRITE_NAMES = {"photodna": "PhotoDNA", "pdq": "PDQ", "vpdq": "vPDQ", "sha256": "SHA256"}


def vics_number(category: Category) -> int:
    """The Project VIC ``Category`` written for a category of any scheme (a code its scheme does
    not define: its own number in ``us-cat``, else 0)."""
    if not category.known:
        return int(category.code) if category.scheme == "us-cat" and category.code.isdigit() else 0
    if category.scheme == "us-cat":
        return int(category.code)
    if category.scheme == "inhope":
        return _INHOPE_EQUIVALENT[category.code]
    return VICS_EQUIVALENT.get(category.scheme, 0)


def entry_media(e: Entry, position: int, version: str) -> dict[str, Any]:
    """The VICS Media object of an entry."""
    m: dict[str, Any] = {}
    ext = e.external_id
    if ext is not None and ext.isascii() and ext.isdigit() and str(int(ext)) == ext:
        m["MediaID"] = int(ext)
    else:  # an integer, as VICS writers write it; an id that is not one is kept beside it
        m["MediaID"] = position
        if ext is not None:
            m["OpspoorExternalID"] = ext
    if e.category is not None:
        m["Category"] = vics_number(e.category)
    s = e.signals
    alt: list[Any] = []
    for name, key in (("md5", "MD5"), ("sha1", "SHA1"), ("sha256", "SHA256")):
        if name in s:
            if name == "sha256" and version == "1.3":
                alt.append({"HashName": _ALT_WRITE_NAMES[name], "HashValue": s[name].upper()})
            else:
                m[key] = s[name].upper()
    if "photodna" in s:  # VICS lists carry PhotoDNA in base64 (opspoor keeps its bytes' hex)
        if version == "2.0":
            m["PhotoDNA"] = photodna_base64(s["photodna"])
        else:
            alt.append({"HashName": "PhotoDNA", "HashValue": photodna_base64(s["photodna"])})
    for name in ("pdq", "vpdq"):
        if name in s:
            alt.append({"HashName": _ALT_WRITE_NAMES[name], "HashValue": s[name]})
    vics_extra = e.extra.get("vics") or {}
    alt.extend(vics_extra.get("AlternativeHashes", ()))
    if alt:
        m["AlternativeHashes"] = alt
    if e.size is not None:
        m["MediaSize"] = e.size
    for key, flag in (
        ("VictimIdentified", e.victim_identified),
        ("OffenderIdentified", e.offender_identified),
        ("IsDistributed", e.distributed),
    ):
        if flag is not None:
            m[key] = bool_text(flag)
    if e.series is not None:
        m["Series"] = e.series
    if e.tags:
        # a comma-separated string, as Project VIC writes; a list when a tag holds a comma
        m["Tags"] = list(e.tags) if any("," in t for t in e.tags) else ",".join(e.tags)
    if e.date_updated is not None:
        m["DateUpdated"] = e.date_updated
    for k, v in vics_extra.items():
        if k != "AlternativeHashes":
            m.setdefault(k, v)
    if e.category is not None and e.category.scheme != "us-cat":
        m["OpspoorCategory"] = str(e.category)
    files = e.extra.get("files")
    if files is not None:
        m["MediaFiles"] = files
    return m


def _write(entries: Iterable[Entry], stream: BinaryIO, opts: WriteOptions, version: str) -> int:
    if version == "2.0":
        key, base = "@odata.context", CONTEXT_V2
    else:
        key, base = "odata.metadata", CONTEXT_V13
    shape = "#Cases" if opts.cases is not None else "#Media"
    out = io.TextIOWrapper(stream, encoding="utf-8", newline="\n", write_through=False)
    try:
        out.write(f'{{{json.dumps(key)}: {json.dumps(base + shape)}, "value": [')
        if opts.cases is not None:
            case = json.dumps(opts.cases.to_vics(), ensure_ascii=False)
            out.write(f'{case[:-1]}, "Media": [')
        n = 0
        for n, e in enumerate(entries, 1):
            out.write("\n" if n == 1 else ",\n")
            out.write(json.dumps(entry_media(e, n, version), ensure_ascii=False))
        out.write("\n]}]}\n" if opts.cases is not None else "\n]}\n")
        out.flush()
    finally:
        out.detach()
    return n


def write_vics2(entries: Iterable[Entry], stream: BinaryIO, opts: WriteOptions) -> int:
    return _write(entries, stream, opts, "2.0")


def write_vics13(entries: Iterable[Entry], stream: BinaryIO, opts: WriteOptions) -> int:
    return _write(entries, stream, opts, "1.3")
