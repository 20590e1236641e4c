"""Project VIC VICS (OData JSON), versions 2.0 and 1.3; flat ``#Media`` sets and ``#Cases`` exports.

Reading is one streaming pass (see :mod:`.jsonstream`); both versions and both shapes go through the
same reader, which looks at the context and, failing that, at the shape of the first element.
Mapping (see docs/formats.md):

- ``Category`` n -> ``us-cat:n``. Other schemes cannot be said in VICS: the writer puts the nearest
  Project VIC number in ``Category`` (1 for UK A/B/C, NCMEC A1-B2 and INHOPE baseline, else 0) and
  the exact category in ``OpspoorCategory``, which the reader prefers when present.
- MD5/SHA1/SHA256/PhotoDNA top-level (v2.0); PhotoDNA (v1.3), PDQ and vPDQ in ``AlternativeHashes``.
- ``MediaID`` <-> ``external_id`` (written as a number when it is one; the position when absent).
- ``MediaFiles`` <-> ``extra["files"]``; a case's properties -> ``extra["case"]``; every other
  Media property (``IsPrecategorized``, unknown keys) -> ``extra["vics"]`` and back.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO

from opspoor.errors import FormatError
from opspoor.hashsets.formats.base import (
    ReadOptions,
    RecordError,
    WriteOptions,
    bool_text,
    canonical_signal,
    head_text,
    parse_bool,
    parse_category,
    parse_size,
    report,
    split_tags,
    text_or_none,
)
from opspoor.hashsets.formats.jsonstream import JsonReader
from opspoor.hashsets.model import Category, Entry

CONTEXT_V2 = "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/Default/$metadata"
CONTEXT_V13 = "http://github.com/ICMEC/ProjectVic/DataModels/1.3.xml"
CONTEXT_KEYS = ("@odata.context", "odata.metadata")

#: nearest Project VIC number for categories of other schemes (only what is surely CAT-1 becomes 1)
VICS_EQUIVALENT: dict[str, int] = {
    "uk": 1,
    "ncmec": 1,
}
_INHOPE_EQUIVALENT = {"baseline": 1, "national": 0, "not-illegal": 0}

# Media properties the reader maps (compared in lower case); everything else goes to extra["vics"]
_KNOWN = frozenset(
    {
        "mediaid",
        "category",
        "md5",
        "sha1",
        "sha256",
        "photodna",
        "alternativehashes",
        "mediasize",
        "victimidentified",
        "offenderidentified",
        "isdistributed",
        "series",
        "tags",
        "dateupdated",
        "mediafiles",
        "opspoorcategory",
    }
)
#: the usual spellings, looked up before lower-casing (records are read by the million)
_SPELLED = {
    k: k.lower()
    for k in (
        "MediaID",
        "Category",
        "MD5",
        "SHA1",
        "SHA256",
        "PhotoDNA",
        "AlternativeHashes",
        "MediaSize",
        "VictimIdentified",
        "OffenderIdentified",
        "IsDistributed",
        "Series",
        "Tags",
        "DateUpdated",
        "MediaFiles",
        "OpspoorCategory",
    )
}
_TOP_SIGNALS = (("md5", "md5"), ("sha1", "sha1"), ("sha256", "sha256"), ("photodna", "photodna"))
#: AlternativeHashes names (letters and digits, lower case) -> signal
_ALT_NAMES = {
    "photodna": "photodna",
    "pdq": "pdq",
    "vpdq": "vpdq",
    "md5": "md5",
    "sha1": "sha1",
    "sha256": "sha256",
}
_ALT_WRITE_NAMES = {"photodna": "PhotoDNA", "pdq": "PDQ", "vpdq": "vPDQ", "sha256": "SHA256"}


# --- detection -----------------------------------------------------------------

_CONTEXT_RE = re.compile(r'"(@odata\.context|odata\.metadata)"\s*:')


def _json_head(head: bytes) -> str | None:
    text = head_text(head).lstrip()
    return text if text.startswith("{") else None


def sniff_vics2(head: bytes) -> bool:
    """A JSON object with ``@odata.context``, or (context further on) a ``value`` array of Media."""
    text = _json_head(head)
    if text is None:
        return False
    m = _CONTEXT_RE.search(text)
    if m:
        return m.group(1) == "@odata.context"
    return bool(re.search(r'"value"\s*:\s*\[', text)) and bool(
        re.search(r'"(MD5|SHA1|Media|MediaID)"\s*:', text, re.IGNORECASE)
    )


def sniff_vics13(head: bytes) -> bool:
    text = _json_head(head)
    if text is None:
        return False
    m = _CONTEXT_RE.search(text)
    return bool(m) and m.group(1) == "odata.metadata"  # type: ignore[union-attr]


# --- reading -------------------------------------------------------------------


def read_vics(stream: BinaryIO, opts: ReadOptions) -> Iterator[Entry]:
    """Entries of a VICS 2.0 or 1.3 file, flat or ``#Cases``, one at a time."""
    jr = JsonReader(stream, opts.where)
    first = jr.peek()
    if not first:
        raise FormatError("the file is empty", opts.where)
    if first != "{":
        raise jr.error("not a VICS file: expected a JSON object '{'")
    state = _State()
    seen_value = False
    for key in jr.members():
        if key in CONTEXT_KEYS:
            context = jr.value()
            if not isinstance(context, str):
                raise jr.error(f"{key} must be text")
            if context.endswith("#Cases") or "#Cases/" in context:
                state.mode = "cases"
            elif context.endswith("#Media") or "#Media/" in context:
                state.mode = "media"
        elif key == "value":
            if jr.peek() != "[":
                raise jr.error('"value" must be an array of Media or Cases')
            seen_value = True
            for _ in jr.elements():
                yield from _element(jr, state, opts)
        else:
            jr.value()  # other OData annotations (@odata.count, ...) carry no entries
    jr.record = None
    jr.expect_end()
    if not seen_value:
        raise FormatError('not a VICS file: no "value" array of Media or Cases', opts.where)


class _State:
    __slots__ = ("mode", "n")

    def __init__(self) -> None:
        self.mode: str | None = None  # "media" | "cases" | None (not yet known)
        self.n = 0  # records (Media) read so far


def _element(jr: JsonReader, state: _State, opts: ReadOptions) -> Iterator[Entry]:
    """One element of ``value``: a Media record, or a Case holding ``Media``."""
    if state.mode == "media" or jr.peek() != "{":
        yield from _media(jr, state, opts, jr.value, None)
        return
    # a case, or (mode unknown) possibly a Media record: walk its properties one by one
    fields: dict[str, Any] = {}
    start = jr.tell()
    is_case = False
    for key in jr.members():
        if key == "Media" and jr.peek() == "[":
            is_case = True
            state.mode = "cases"
            case = dict(fields)
            for _ in jr.elements():
                yield from _media(jr, state, opts, jr.value, case)
        else:
            jr.record = state.n + 1
            fields[key] = jr.value()
    if not is_case:
        if state.mode == "cases":
            return  # a case without media
        state.mode = "media"
        yield from _media(jr, state, opts, lambda: fields, None, start)


def _media(
    jr: JsonReader,
    state: _State,
    opts: ReadOptions,
    decode: Any,
    case: dict[str, Any] | None,
    start: int | None = None,
) -> Iterator[Entry]:
    state.n += 1
    jr.record = state.n
    if start is None:
        jr.peek()
        start = jr.tell()
    record = decode()
    try:
        yield media_entry(record, case, opts.source)
    except RecordError as exc:
        report(FormatError(str(exc), opts.where, record=state.n, line=jr.line_col(start)[0]), opts)


_US_CAT = {str(n): Category("us-cat", str(n)) for n in range(6)} | {
    n: Category("us-cat", str(n)) for n in range(6)
}


def _vics_category(value: object) -> Category | None:
    if value is None or value == "":
        return None
    if type(value) is int or type(value) is str:
        known = _US_CAT.get(value)  # type: ignore[call-overload]
        if known is not None:
            return known
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise RecordError(f"Category: {value!r} is not a Project VIC category (0-5)")
    text = str(value).strip()
    if isinstance(value, float) and value.is_integer():
        text = str(int(value))
    if text not in ("0", "1", "2", "3", "4", "5"):
        raise RecordError(f"Category: {text[:40]!r} is not a Project VIC category (0-5)")
    return _US_CAT[text]


def media_entry(m: object, case: dict[str, Any] | None, source: str | None) -> Entry:
    """One VICS Media object as an Entry; ``RecordError`` says which property is wrong."""
    if not isinstance(m, dict):
        raise RecordError(f"a Media record must be an object, got {type(m).__name__}")
    f: dict[str, Any] = {}
    rest: dict[str, Any] = {}
    for k, v in m.items():
        lk = _SPELLED.get(k)
        if lk is None:
            lk = k.lower()
            if lk not in _KNOWN:
                rest[k] = v
                continue
        f[lk] = v

    signals: dict[str, str] = {}
    for key, name in _TOP_SIGNALS:
        v = f.get(key)
        if v is not None and v != "":
            signals[name] = canonical_signal(name, v)
    alt = f.get("alternativehashes")
    if alt is not None:
        unknown = _alternative_hashes(alt, signals)
        if unknown:
            rest["AlternativeHashes"] = unknown
    if not signals:
        raise RecordError("Media record has no hash (MD5, SHA1, SHA256, PhotoDNA or AlternativeHashes)")

    category = _vics_category(f.get("category"))
    exact = f.get("opspoorcategory")
    if exact is not None and exact != "":
        category = parse_category(exact, "OpspoorCategory")

    media_id = f.get("mediaid")
    if isinstance(media_id, bool) or not isinstance(media_id, int | str | None):
        raise RecordError(f"MediaID: {media_id!r} is not a number or text")
    extra: dict[str, Any] = {}
    files = f.get("mediafiles")
    if files is not None:
        if not isinstance(files, list):
            raise RecordError("MediaFiles must be an array")
        extra["files"] = files
    if case is not None:
        extra["case"] = dict(case)
    if rest:
        extra["vics"] = rest
    date = f.get("dateupdated")
    if date is not None and not isinstance(date, str):
        raise RecordError(f"DateUpdated: {date!r} is not text")
    return Entry(
        signals=signals,
        category=category,
        victim_identified=parse_bool(f.get("victimidentified"), "VictimIdentified"),
        offender_identified=parse_bool(f.get("offenderidentified"), "OffenderIdentified"),
        distributed=parse_bool(f.get("isdistributed"), "IsDistributed"),
        series=text_or_none(f.get("series"), "Series"),
        tags=split_tags(f.get("tags"), ","),
        source=source,
        date_updated=date or None,
        external_id=None if media_id is None or media_id == "" else str(media_id),
        size=parse_size(f.get("mediasize"), "MediaSize"),
        extra=extra,
    )


def _alternative_hashes(alt: object, signals: dict[str, str]) -> list[Any]:
    """Take the hashes opspoor knows into ``signals``; return the others unchanged."""
    if not isinstance(alt, list):
        raise RecordError("AlternativeHashes must be an array")
    unknown = []
    for item in alt:
        if not isinstance(item, dict) or not isinstance(item.get("HashName"), str):
            raise RecordError("AlternativeHashes entries must be objects with HashName and HashValue")
        name = _ALT_NAMES.get(re.sub(r"[^0-9a-z]", "", item["HashName"].lower()))
        if name is None:
            unknown.append(item)
            continue
        value = canonical_signal(name, item.get("HashValue"))
        if signals.get(name, value) != value:
            raise RecordError(f"two different {item['HashName']} values in one Media record")
        signals[name] = value
    return unknown


# --- writing -------------------------------------------------------------------


def vics_number(category: Category) -> int:
    """The Project VIC ``Category`` written for a category of any scheme."""
    if category.scheme == "us-cat":
        return int(category.code)
    if category.scheme == "inhope":
        return _INHOPE_EQUIVALENT[category.code]
    return VICS_EQUIVALENT.get(category.scheme, 0)


def entry_media(e: Entry, position: int, version: str) -> dict[str, Any]:
    """The VICS Media object of an entry."""
    m: dict[str, Any] = {}
    ext = e.external_id
    if ext is None:
        m["MediaID"] = position
    else:
        m["MediaID"] = int(ext) if ext.isdigit() and str(int(ext)) == ext else ext
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
    if "photodna" in s:
        if version == "2.0":
            m["PhotoDNA"] = s["photodna"]
        else:
            alt.append({"HashName": "PhotoDNA", "HashValue": s["photodna"]})
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
