"""Project VIC VICS (OData JSON), versions 2.0 and 1.3; flat ``#Media`` sets and ``#Cases`` exports.

Reading is one streaming pass (see :mod:`.jsonstream`); both versions and both shapes go through the
same reader, which looks at the context and, failing that, at the shape of the first element.
Mapping (see docs/formats.md):

- ``Category`` n -> ``us-cat:n``. Other schemes cannot be said in VICS: the writer puts the nearest
  Project VIC number in ``Category`` (1 for UK A/B/C, NCMEC A1-B2 and INHOPE baseline, else 0) and
  the exact category in ``OpspoorCategory``, which the reader prefers when present.
- MD5/SHA1/SHA256/PhotoDNA top-level (v2.0); PhotoDNA (v1.3), PDQ and vPDQ in ``AlternativeHashes``.
- ``MediaID`` <-> ``external_id``. MediaID is always written as an integer: the id when it is
  one, else the position, with the id itself in ``OpspoorExternalID`` (which the reader prefers).
- ``MediaFiles`` <-> ``extra["files"]``; a case's properties -> ``extra["case"]``; every other
  Media property (``IsPrecategorized``, unknown keys) -> ``extra["vics"]`` and back.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from itertools import chain
from operator import itemgetter, methodcaller
from typing import Any, BinaryIO

import orjson

from opspoor.errors import FormatError
from opspoor.hashsets.formats.arrays import ArrayBatch
from opspoor.hashsets.formats.base import (
    EntryBatch,
    ReadOptions,
    RecordError,
    canonical_signal,
    head_text,
    parse_bool,
    parse_category,
    parse_size,
    paused_gc,
    report,
    split_tags,
    text_or_none,
)
from opspoor.hashsets.formats.jsonstream import JsonReader, run_end
from opspoor.hashsets.formats.vics_arrays import MEDIA_KEYS, media_arrays
from opspoor.hashsets.model import UNCATEGORISED, Category, Entry
from opspoor.signals import get_signal

CONTEXT_V2 = "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/Default/$metadata"
CONTEXT_V13 = "http://github.com/ICMEC/ProjectVic/DataModels/1.3.xml"
CONTEXT_KEYS = ("@odata.context", "odata.metadata")

#: nearest Project VIC number for categories of other schemes (only what is surely CAT-1 becomes 1)
VICS_EQUIVALENT: dict[str, int] = {
    "uk": 1,
    "ncmec": 1,
}

#: the usual spellings, looked up before lower-casing (records are read by the million)
_SPELLED = {k: k.lower() for k in MEDIA_KEYS}
# Media properties the reader maps (compared in lower case); everything else goes to extra["vics"]
_KNOWN = frozenset(_SPELLED.values())
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

#: characters of Media records decoded at once on the fast path
RUN = 256 << 10
#: characters of Media records read at once by the compiled reader
ARRAY_RUN = 512 << 10
#: a shorter run (a small file, the end of a large one) is decoded with orjson: the compiled
#: reader's first use compiles for several seconds, which pays only for large lists
MIN_ARRAY_RUN = 256 << 10
#: entries per batch of records read one by one
SLOW_BATCH = 2_000


def read_vics(stream: BinaryIO, opts: ReadOptions) -> Iterator[Entry]:
    """Entries of a VICS 2.0 or 1.3 file, flat or ``#Cases``, one at a time."""
    for batch in read_vics_batches(stream, opts):
        yield from batch.entries()


def read_vics_batches(stream: BinaryIO, opts: ReadOptions) -> Iterator[EntryBatch | ArrayBatch]:
    """Entries of a VICS 2.0 or 1.3 file, flat or ``#Cases``, as columns, a run of records at a time.

    Runs of flat Media records are read by the compiled reader into arrays (:func:`media_arrays`)
    when every record has the usual shape; otherwise decoded with orjson and turned into columns
    (:func:`media_batch`); a run that fails that too is read again record by record
    (:func:`media_entry`), which decodes like ``json`` and names the record and line at fault.
    """
    state = _State()
    try:
        yield from _read_batches(stream, opts, state)
    except FormatError:
        if state.pending:  # what was read before the fault, as a per-entry reader would have yielded
            yield EntryBatch.from_entries(state.pending)
            state.pending = []
        raise
    if state.pending:
        yield EntryBatch.from_entries(state.pending)


def _read_batches(stream: BinaryIO, opts: ReadOptions, state: _State) -> Iterator[EntryBatch | ArrayBatch]:
    jr = JsonReader(stream, opts.where)
    first = jr.peek()
    if not first:
        raise FormatError("the file is empty", opts.where)
    if first != "{":
        raise jr.error("not a VICS file: expected a JSON object '{'")
    seen_value = False
    for key in jr.members():
        if key in CONTEXT_KEYS:
            context = jr.value()
            if not isinstance(context, str):
                raise jr.error(f"{key} must be text")
            if uk_data_model(context):
                state.uk = True
                state.arrays_until = 2**62  # the compiled reader reads Project VIC numbers only
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
    __slots__ = ("arrays_until", "mode", "n", "pending", "slow_until", "uk")

    def __init__(self) -> None:
        self.uk = False  # the context names the UK data model
        self.mode: str | None = None  # "media" | "cases" | None (not yet known)
        self.n = 0  # records (Media) read so far
        self.pending: list[Entry] = []  # entries read one by one, not yet yielded
        self.slow_until = -1  # offset before which records are read one by one
        self.arrays_until = -1  # offset before which the compiled reader is not tried again


def _element(jr: JsonReader, state: _State, opts: ReadOptions) -> Iterator[EntryBatch | ArrayBatch]:
    """One element of ``value``: a Media record (with the ones after it, on the fast path), or a
    Case holding ``Media``."""
    if state.mode == "media":
        yield from _media_run(jr, state, opts, None)
        return
    if jr.peek() != "{":
        yield from _slow(jr, state, opts, jr.value, None)
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
                yield from _media_run(jr, state, opts, case)
        else:
            jr.record = state.n + 1
            fields[key] = jr.value()
    if not is_case:
        if state.mode == "cases":
            return  # a case without media
        state.mode = "media"
        yield from _slow(jr, state, opts, lambda: fields, None, start)


def _media_run(
    jr: JsonReader, state: _State, opts: ReadOptions, case: dict[str, Any] | None
) -> Iterator[EntryBatch | ArrayBatch]:
    """The Media record at the read position, with as many following ones as the fast path takes."""
    if jr.peek() == "{" and jr.tell() >= state.slow_until:
        batch = _fast_run(jr, state, opts, case)
        if batch is not None:
            if state.pending:
                yield EntryBatch.from_entries(state.pending)
                state.pending = []
            yield batch
            return
    yield from _slow(jr, state, opts, jr.value, case)


#: a NUL character as JSON writes it: a run holding one is read record by record, so that the
#: careful path names the record (``check_text``) and reads the rest (the fast paths check no text)
_NUL_TEXT = "\\u0000"
_NUL = _NUL_TEXT.encode()


def _fast_run(
    jr: JsonReader, state: _State, opts: ReadOptions, case: dict[str, Any] | None
) -> EntryBatch | ArrayBatch | None:
    if case is None and jr.tell() >= state.arrays_until:
        arrays = _array_run(jr, state, opts)
        if arrays is not None:
            return arrays
    end = jr.run_end(RUN)
    if end is None:
        return None
    with paused_gc():
        try:
            text = jr.buf[jr.pos : end]
            records = orjson.loads("[" + text + "]")
            batch = None if _NUL_TEXT in text else media_batch(records, case, opts.source, uk=state.uk)
        except (ValueError, TypeError):  # orjson's JSONDecodeError, RecordError, an unhashable value
            batch = None
    if batch is None:  # read these records one by one: the careful path says what is wrong
        state.slow_until = jr.tell() + (end - jr.pos)
        return None
    jr.pos = end
    state.n += len(batch)
    return batch


def _array_run(jr: JsonReader, state: _State, opts: ReadOptions) -> ArrayBatch | None:
    """The records of the next run as arrays, read from the file's bytes when it is a seekable
    ASCII file (most hash lists), else from the decoded text."""
    raw = jr.read_raw(ARRAY_RUN)
    if raw is not None:
        end = run_end(raw, 0, len(raw))
        run = raw[:end] if end is not None and end >= MIN_ARRAY_RUN else None
        if run is not None and run.isascii():
            arrays = None if _NUL in run else media_arrays(run, opts.source)
            if arrays is None:  # not the usual shape: these records go the other ways
                state.arrays_until = jr.tell() + len(run)
                return None
            jr.skip_raw(run)
            state.n += len(arrays)
            return arrays
    end = jr.run_end(ARRAY_RUN)
    if end is None or end - jr.pos < MIN_ARRAY_RUN:
        return None
    text = jr.buf[jr.pos : end].encode()
    arrays = None if _NUL in text else media_arrays(text, opts.source)
    if arrays is None:
        state.arrays_until = jr.tell() + (end - jr.pos)
        return None
    jr.pos = end
    state.n += len(arrays)
    return arrays


def _slow(
    jr: JsonReader,
    state: _State,
    opts: ReadOptions,
    decode: Any,
    case: dict[str, Any] | None,
    start: int | None = None,
) -> Iterator[EntryBatch]:
    """One Media record, decoded by ``decode`` (json's decoder) and checked by :func:`media_entry`."""
    state.n += 1
    jr.record = state.n
    if start is None:
        jr.peek()
        start = jr.tell()
    record = decode()
    try:
        state.pending.append(media_entry(record, case, opts.source, uk=state.uk))
    except RecordError as exc:
        report(FormatError(str(exc), opts.where, record=state.n, line=jr.line_col(start)[0]), opts)
    if len(state.pending) >= SLOW_BATCH:
        yield EntryBatch.from_entries(state.pending)
        state.pending = []


_US_CAT: dict[object, Category] = {str(n): Category("us-cat", str(n)) for n in range(6)} | {
    n: Category("us-cat", str(n)) for n in range(6)
}
#: the UK data model's numbers (``.../DataModels/2.0.xml/UK/$metadata``): 1-3 are the UK sentencing
#: categories A-C; 0 is VICS's "not categorised" in every data model
_UK_NUMBERS = {0: UNCATEGORISED} | {n: Category("uk", c) for n, c in enumerate("ABC", 1)}
_UK_CAT: dict[object, Category] = {c: Category("uk", c) for c in "ABC"}
for _n, _c in _UK_NUMBERS.items():
    _UK_CAT[_n] = _UK_CAT[str(_n)] = _c
#: a context naming the UK data model: ``UK`` as the data-model segment right after
#: ``DataModels/<version>.xml/`` (not a ``/uk/`` elsewhere in the host or path)
_UK_MODEL = re.compile(r"/DataModels/[^/]+\.xml/UK(?:/|\$|#|$)", re.IGNORECASE)


def uk_data_model(context: str) -> bool:
    """Whether a VICS context names the UK data model (its categories are the UK scheme)."""
    return bool(_UK_MODEL.search(context))


def _vics_category(value: object, uk: bool = False) -> Category | None:
    """A VICS ``Category``: a number of the file's data model (Project VIC's, or the UK's). A number
    the data model does not define is kept under its scheme (``us-cat:8``, ``uk:7``)."""
    if value is None or value == "":
        return None
    table = _UK_CAT if uk else _US_CAT
    if type(value) is int or type(value) is str:
        known = table.get(value)  # type: ignore[call-overload]
        if known is not None:
            return known
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise RecordError(f"Category: {value!r} is not a category number")
    text = str(value).strip()
    if isinstance(value, float) and value.is_integer():
        text = str(int(value))
    if uk and text.upper() in ("A", "B", "C"):
        return table[text.upper()]
    if not (text.isascii() and text.isdigit() and len(text) <= 3):
        raise RecordError(f"Category: {text[:40]!r} is not a category number")
    code = str(int(text))
    return table.get(code) or Category("uk" if uk else "us-cat", code)


def media_entry(m: object, case: dict[str, Any] | None, source: str | None, *, uk: bool = False) -> Entry:
    """One VICS Media object as an Entry; ``RecordError`` says which property is wrong. ``uk``: the
    file's categories are numbers of the UK data model."""
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

    category = _vics_category(f.get("category"), uk)
    exact = f.get("opspoorcategory")
    if exact is not None and exact != "":
        category = parse_category(exact, "OpspoorCategory")

    media_id = f.get("mediaid")
    if isinstance(media_id, bool) or not isinstance(media_id, int | str | None):
        raise RecordError(f"MediaID: {media_id!r} is not a number or text")
    own_id = f.get("opspoorexternalid")
    if own_id is not None and own_id != "":
        if not isinstance(own_id, str):
            raise RecordError(f"OpspoorExternalID: {own_id!r} is not text")
        media_id = own_id  # the entry's own id; MediaID holds its position
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


# --- the fast path: Media records as columns -------------------------------------

_NONE = type(None)
#: Category values taken as they are (bool is excluded by type before the lookup: True == 1)
_CATEGORY_OF: dict[object, Category | None] = {None: None, "": None, **_US_CAT}
_UK_CATEGORY_OF: dict[object, Category | None] = {None: None, "": None, **_UK_CAT}
#: flag values taken as they are (an int 0/1 hashes like False/True, as parse_bool reads it)
_FLAG_OF: dict[object, bool | None] = {
    None: None,
    "": None,
    True: True,
    False: False,
    "true": True,
    "false": False,
    "True": True,
    "False": False,
    "TRUE": True,
    "FALSE": False,
}
#: AlternativeHashes names as usually spelled -> signal
_ALT_SPELLED = {"PhotoDNA": "photodna", "PDQ": "pdq", "vPDQ": "vpdq", "MD5": "md5", "SHA1": "sha1"} | {
    "SHA256": "sha256"
}
_HEX_SIGNALS = {n: get_signal(n).hex_length for n in ("md5", "sha1", "sha256", "pdq")}
_HEX_DIGITS = b"0123456789abcdef"
#: a float this large may be an integer orjson could not hold (beyond 64 bits): json's path keeps it
_BIG = float(1 << 63)


def media_batch(
    records: list[Any], case: dict[str, Any] | None, source: str | None, *, uk: bool = False
) -> EntryBatch | None:
    """Media records (decoded) as columns, the same entries :func:`media_entry` makes of them, when
    every record has the usual shape: usual spellings and value types, hex that needs no more than
    lower-casing. None otherwise (or ``RecordError``): the caller takes the careful path.
    """
    n = len(records)
    if not n or set(map(type, records)) != {dict}:
        return None
    keys = set().union(*records)
    unknown = [k for k in dict.fromkeys(chain(records[0], keys)) if k not in _SPELLED]
    if any(k.lower() in _KNOWN for k in unknown):
        return None  # a property opspoor knows, spelled unusually

    uniform = set(map(len, records)) == {len(keys)}  # every record has every key
    if uniform:  # all columns in one C-speed pass
        order = list(keys)
        by_key = dict(zip(order, map(list, zip(*map(itemgetter(*order), records), strict=True)), strict=True))
        if len(order) == 1:
            by_key = {order[0]: [r[order[0]] for r in records]}

    def column(key: str) -> list[Any] | None:
        if key not in keys:
            return None
        return by_key[key] if uniform else [r.get(key) for r in records]

    signals: dict[str, list[str | None]] = {}
    for key, name in _TOP_SIGNALS:
        values = column(key.upper() if key != "photodna" else "PhotoDNA")
        if values is not None and not _take_signal(signals, name, values):
            return None
    alt = column("AlternativeHashes")
    if alt is not None:
        found = _alternative_columns(alt, n)
        if found is None:
            return None
        for name, values in found.items():
            if name in signals or not _take_signal(signals, name, values):
                return None
    if not signals or (
        all(None in v for v in signals.values())
        and not all(any(row) for row in zip(*signals.values(), strict=True))
    ):
        return None  # a record without a hash

    category = _categories(column("Category"), uk, n)
    if category is None:
        return None
    exact = column("OpspoorCategory")
    if exact is not None:
        for i, v in enumerate(exact):
            if v is not None and v != "":
                category[i] = parse_category(v, "OpspoorCategory")
    flags = [_mapped(column(k), _FLAG_OF, {bool, str, int, _NONE}, n) for k in _FLAG_KEYS]
    media_id = column("MediaID")
    if media_id is None:
        external_id: list[str | None] = [None] * n
    elif (id_types := set(map(type, media_id))) <= {int, str, _NONE}:
        external_id = (
            list(map(str, media_id))
            if id_types == {int}
            else [None if v is None or v == "" else str(v) for v in media_id]
        )
    else:
        return None
    own_id = column("OpspoorExternalID")
    if own_id is not None:
        if not set(map(type, own_id)) <= {str, _NONE}:
            return None
        external_id = [v if v else x for v, x in zip(own_id, external_id, strict=True)]
    series = _texts(column("Series"), n)
    tags = _tags(column("Tags"), n)
    date = column("DateUpdated")
    if date is not None and not set(map(type, date)) <= {str, _NONE}:
        return None
    size = column("MediaSize")
    if size is not None and not (
        set(map(type, size)) <= {int, _NONE} and min((v for v in size if v is not None), default=0) >= 0
    ):
        return None
    extra = _extras(records, unknown, column if uniform else None, column("MediaFiles"), case, n)
    if None in flags or series is None or tags is None or extra is None:
        return None
    victim, offender, distributed = flags
    return EntryBatch(
        signals,
        category,
        victim,  # type: ignore[arg-type]
        offender,  # type: ignore[arg-type]
        distributed,  # type: ignore[arg-type]
        series,
        tags,
        [source] * n,
        [None] * n if date is None else [v or None for v in date],
        external_id,
        [None] * n if size is None else size,
        extra,
        [{} for _ in range(n)],
    )


_FLAG_KEYS = ("VictimIdentified", "OffenderIdentified", "IsDistributed")


def _take_signal(signals: dict[str, list[str | None]], name: str, values: list[Any]) -> bool:
    """Canonical values of one signal into ``signals`` (absent: None or ""); False if one needs the
    careful path."""
    n = len(values)
    missing = values.count(None) + values.count("")
    if missing == n:
        return True
    given = values if not missing else [v for v in values if v is not None and v != ""]
    length = _HEX_SIGNALS.get(name)
    if length is None:  # PhotoDNA, vPDQ: checked one by one
        try:
            canon: list[Any] = [canonical_signal(name, v) for v in given]
        except RecordError:
            return False
    else:
        try:
            joined = "".join(given)
        except TypeError:
            return False
        if len(joined) != length * len(given) or set(map(len, given)) != {length}:
            return False
        low = joined.lower()
        if not low.isascii() or low.encode("ascii").translate(None, _HEX_DIGITS):
            return False
        canon = given if low == joined else [low[i : i + length] for i in range(0, len(low), length)]
    if missing:
        it = iter(canon)
        signals[name] = [None if v is None or v == "" else next(it) for v in values]
    else:
        signals[name] = canon
    return True


def _alternative_columns(alt: list[Any], n: int) -> dict[str, list[Any]] | None:
    """AlternativeHashes values by signal, or None for anything but known names with text values."""
    if set(map(type, alt)) == {list} and len(lengths := set(map(len, alt))) == 1:
        uniform = _uniform_alternatives(alt, lengths.pop())
        if uniform is not None:
            return uniform
    out: dict[str, list[Any]] = {}
    for i, items in enumerate(alt):
        if items is None:
            continue
        if type(items) is not list:
            return None
        for item in items:
            if type(item) is not dict:
                return None
            name = _ALT_SPELLED.get(item.get("HashName"))  # type: ignore[arg-type]
            value = item.get("HashValue")
            if name is None or type(value) is not str or not value:
                return None
            col = out.get(name)
            if col is None:
                col = out[name] = [None] * n
            elif col[i] is not None:
                return None  # two values of one type
            col[i] = value
    return out


def _uniform_alternatives(alt: list[list[Any]], length: int) -> dict[str, list[Any]] | None:
    """The common case at C speed: every record lists the same hash names in the same order."""
    out: dict[str, list[Any]] = {}
    for j in range(length):
        items = list(map(itemgetter(j), alt))
        if set(map(type, items)) != {dict}:
            return None
        names = set(map(_HASH_NAME, items))
        if len(names) != 1:
            return None
        name = _ALT_SPELLED.get(names.pop())
        if name is None or name in out:
            return None
        values = list(map(_HASH_VALUE, items))
        if set(map(type, values)) != {str} or "" in values:
            return None
        out[name] = values
    return out


_HASH_NAME = methodcaller("get", "HashName")
_HASH_VALUE = methodcaller("get", "HashValue")


def _categories(values: list[Any] | None, uk: bool, n: int) -> list[Category | None] | None:
    """The Category column: the usual numbers at C speed, others (a publisher's own number, the UK
    data model) one by one; None for a value that needs the careful path."""
    found = _mapped(values, _UK_CATEGORY_OF if uk else _CATEGORY_OF, {int, str, _NONE}, n)
    if found is not None or values is None or not set(map(type, values)) <= {int, str, _NONE}:
        return found
    try:
        return [_vics_category(v, uk) for v in values]
    except RecordError:
        return None


def _mapped(values: list[Any] | None, table: dict[object, Any], types: set[type], n: int) -> list[Any] | None:
    if values is None:
        return [None] * n
    if not set(map(type, values)) <= types:
        return None
    try:
        return list(map(table.__getitem__, values))
    except KeyError:
        return None


def _texts(values: list[Any] | None, n: int) -> list[str | None] | None:
    if values is None:
        return [None] * n
    if not set(map(type, values)) <= {str, _NONE}:
        return None
    return [v.strip() or None if v else None for v in values]


def _tags(values: list[Any] | None, n: int) -> list[tuple[str, ...]] | None:
    if values is None or values.count("") + values.count(None) == n:
        return [()] * n
    if not set(map(type, values)) <= {str, list, _NONE}:
        return None
    return [split_tags(v, ",") for v in values]


def _extras(
    records: list[dict[str, Any]],
    unknown: list[str],
    column: Callable[[str], list[Any] | None] | None,
    files: list[Any] | None,
    case: dict[str, Any] | None,
    n: int,
) -> list[dict[str, Any]] | None:
    """``extra`` of each record: MediaFiles, the case, and the properties opspoor does not map
    (``unknown``; ``column`` gives them when every record has every property)."""
    if files is not None and (not set(map(type, files)) <= {list, _NONE} or _has_big_float(files)):
        return None
    rest: list[dict[str, Any]] | None = None
    if unknown and column is not None:
        cols: list[list[Any]] = [column(k) for k in unknown]  # type: ignore[misc]
        if any(_has_big_float(c) for c in cols):
            return None
        if files is None and case is None and len(unknown) == 1:  # the usual shape
            k = unknown[0]
            return [{"vics": {k: v}} for v in cols[0]]
        rest = [dict(zip(unknown, row, strict=True)) for row in zip(*cols, strict=True)]
    elif unknown:
        rest = [{k: r[k] for k in unknown if k in r} for r in records]
        if _has_big_float(rest):
            return None
    if files is None and case is None:
        return [{} for _ in range(n)] if rest is None else [{"vics": v} if v else {} for v in rest]
    out: list[dict[str, Any]] = []
    for i in range(n):
        e: dict[str, Any] = {}
        if files is not None and files[i] is not None:
            e["files"] = files[i]
        if case is not None:
            e["case"] = dict(case)
        if rest is not None and rest[i]:
            e["vics"] = rest[i]
        out.append(e)
    return out


def _has_big_float(values: list[Any]) -> bool:
    """Whether kept values hold a float of 2**63 or more: orjson reads integers beyond 64 bits as
    floats, where json keeps them exact."""
    types = set(map(type, values))
    if float in types and any(type(v) is float and abs(v) >= _BIG for v in values):
        return True
    if dict in types:
        inner = [x for v in values if type(v) is dict for x in v.values()]
        if inner and _has_big_float(inner):
            return True
    if list in types:
        inner = [x for v in values if type(v) is list for x in v]
        if inner and _has_big_float(inner):
            return True
    return False
