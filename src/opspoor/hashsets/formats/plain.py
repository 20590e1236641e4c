"""Plain hash lists and CSV/TSV tables with a header.

``plain``: one hash per line; ``#`` comments and blank lines are ignored; ``md5sum``-style lines
(``HASH  name``) keep the name in ``extra["plain"]["name"]``. The type follows from the length:
32 hex MD5, 40 SHA-1, 64 SHA-256 or PDQ (ambiguous: the caller must say which, ``--type``, or the
list does in a comment before its first hash, ``# hash type: pdq``, which opspoor writes in every
list of 64-hex values; an explicit ``--type`` wins).

``csv``: a header names the columns (any case; ``Media ID`` = ``media_id``); the delimiter (comma,
tab, semicolon or bar) is taken from the header line. Hash columns are named by signal (``md5``,
``sha1``, ``sha256``, ``pdq``, ``photodna``) or generic (``hash``, typed by a ``type`` column or
by length). Optional: ``category`` (``SCHEME:CODE``, or a bare Project VIC number), flags,
``series``, ``tags`` (comma-separated), ``source``, ``date_updated``, ``external_id``/``id``,
``size``. Unknown columns are kept in ``extra["csv"]``.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO

from opspoor.errors import FormatError
from opspoor.hashsets.formats.base import (
    AmbiguousHash,
    ReadOptions,
    RecordError,
    WriteOptions,
    bool_text,
    canonical_signal,
    check_has_signal,
    check_hash_type,
    csv_rows,
    first_lines,
    hex_type,
    normalise_column,
    parse_bool,
    parse_category,
    parse_size,
    report,
    split_tags,
    text_lines,
    text_or_none,
)
from opspoor.hashsets.model import ENTRY_SIGNALS, Entry, entry_signals
from opspoor.signals import SIGNALS

_HEX_TOKEN = re.compile(r"[0-9A-Fa-f]{32}|[0-9A-Fa-f]{40}|[0-9A-Fa-f]{64}")
#: the comment that says what a list's 64-hex values are (written by ``write_plain``)
_TYPE_COMMENT = re.compile(r"#\s*hash[ _-]?type\s*[:=]\s*(sha256|pdq)\s*", re.IGNORECASE)
_TYPED_SIGNALS = ("sha256", "pdq")  # the 64-hex signals, which a list must name


def declared_type(comment: str) -> str | None:
    """The type a ``# hash type: pdq`` comment gives a list's 64-hex values, if it is one."""
    m = _TYPE_COMMENT.fullmatch(comment.strip())
    return None if m is None else m.group(1).lower()


# --- plain -----------------------------------------------------------------------


def sniff_plain(head: bytes) -> bool:
    lines = first_lines(head, 1)
    return bool(lines) and bool(_HEX_TOKEN.fullmatch(lines[0].split(maxsplit=1)[0]))


def read_plain(stream: BinaryIO, opts: ReadOptions) -> Iterator[Entry]:
    check_hash_type(opts.hash_type)
    hash_type = opts.hash_type
    record = 0
    content = False
    for line_no, line in enumerate(text_lines(stream, opts.where), 1):
        s = line.strip()
        if not s:
            continue
        content = True
        if s.startswith("#"):
            if record == 0 and opts.hash_type is None:
                hash_type = declared_type(s) or hash_type
            continue
        record += 1
        parts = s.split(maxsplit=1)
        try:
            kind = hex_type(parts[0], hash_type)
            value = canonical_signal(kind, parts[0])
        except AmbiguousHash as exc:
            raise AmbiguousHash(exc.detail, opts.where, record=record, line=line_no) from None
        except RecordError as exc:
            report(FormatError(str(exc), opts.where, record=record, line=line_no), opts)
            continue
        extra: dict[str, Any] = {}
        if len(parts) > 1:
            name = parts[1][1:] if parts[1].startswith("*") else parts[1]  # md5sum's binary marker
            extra["plain"] = {"name": name}
        yield Entry({kind: value}, source=opts.source, extra=extra)
    if not content:
        raise FormatError("the file is empty", opts.where)


_PLAIN_ORDER = ("md5", "sha1", "sha256", "pdq", "photodna")


def write_plain(entries: Iterable[Entry], stream: BinaryIO, opts: WriteOptions) -> int:
    """One hash per line of one signal (``opts.signal``); entries without it are left out."""
    signal = opts.signal
    n = 0
    for e in entries:
        if signal is None:
            signal = next((s for s in _PLAIN_ORDER if s in e.signals), None)
            if signal is None:
                continue
        value = e.signals.get(signal)
        if value is None:
            continue
        name = (e.extra.get("plain") or {}).get("name")
        line = f"{value}  {name}\n" if name else f"{value}\n"
        if n == 0 and signal in _TYPED_SIGNALS:  # 64 hex: say which, so the list reads back as written
            line = f"# hash type: {signal}\n{line}"
        stream.write(line.encode("utf-8"))
        n += 1
    return n


# --- csv -------------------------------------------------------------------------

#: normalised header name -> field
_CSV_FIELDS = {
    "md5": "md5",
    "sha1": "sha1",
    "sha256": "sha256",
    "pdq": "pdq",
    "photodna": "photodna",
    "vpdq": "vpdq",
    "hash": "hash",
    "hashvalue": "hash",
    "signal": "hash",
    "signalstr": "hash",
    "type": "type",
    "hashtype": "type",
    "signaltype": "type",
    "algorithm": "type",  # PowerShell Get-FileHash | Export-Csv
    "category": "category",
    "cat": "category",
    "victimidentified": "victim_identified",
    "offenderidentified": "offender_identified",
    "distributed": "distributed",
    "isdistributed": "distributed",
    "series": "series",
    "seriesname": "series",
    "tags": "tags",
    "labels": "tags",
    "source": "source",
    "dateupdated": "date_updated",
    "updated": "date_updated",
    "externalid": "external_id",
    "id": "external_id",
    "mediaid": "external_id",
    "imageid": "external_id",
    "contentid": "external_id",
    "size": "size",
    "mediasize": "size",
    "filesize": "size",
}
_SIGNAL_FIELDS = frozenset(ENTRY_SIGNALS)
_HASH_FIELDS = _SIGNAL_FIELDS | {"hash"}
_DELIMITERS = ",\t;|"
#: type column spellings -> signal (other tools' names included)
_TYPE_NAMES = {s: s for s in ENTRY_SIGNALS} | {"videomd5": "md5", "photomd5": "md5", "sha": "sha1"}

CSV_COLUMNS = ("md5", "sha1", "sha256", "pdq", "photodna")
CSV_FIELDS = (
    "category",
    "victim_identified",
    "offender_identified",
    "distributed",
    "series",
    "tags",
    "source",
    "date_updated",
    "external_id",
    "size",
)


def _csv_field(column: str) -> str | None:
    """The field a header column holds: a known spelling, or a signal of entries by its registry
    name (a plugin's registered after this module was imported included)."""
    name = normalise_column(column)
    return _CSV_FIELDS.get(name) or (name if name in entry_signals() else None)


def _delimiter(header: str) -> str:
    counts = [(header.count(d), d) for d in _DELIMITERS]
    best = max(counts)
    return best[1] if best[0] else ","


def sniff_csv(head: bytes) -> bool:
    lines = first_lines(head, 1)
    if not lines:
        return False
    cols = next(csv.reader([lines[0]], delimiter=_delimiter(lines[0])))
    hashes = _HASH_FIELDS | entry_signals()
    return any(_csv_field(c) in hashes for c in cols)


def read_csv(stream: BinaryIO, opts: ReadOptions) -> Iterator[Entry]:
    check_hash_type(opts.hash_type)
    lines = text_lines(stream, opts.where)
    header_line = 0
    for header_line, line in enumerate(lines, 1):  # noqa: B007 - the header's line number is used below
        if line.strip() and not line.lstrip().startswith("#"):
            break
    else:
        raise FormatError("the file is empty (no header line)", opts.where)
    delimiter = _delimiter(line)
    header = [c.strip() for c in next(csv.reader([line], delimiter=delimiter))]
    fields = [_csv_field(c) for c in header]
    if not (_HASH_FIELDS | entry_signals()) & set(fields):
        raise FormatError(
            f"no hash column in the header {line.strip()[:120]!r}; name one md5, sha1, sha256, pdq, "
            "photodna or hash",
            opts.where,
            line=header_line,
        )
    for record, (line_no, row) in enumerate(csv_rows(lines, header_line, delimiter), 1):
        try:
            if len(row) != len(header):
                raise RecordError(f"expected {len(header)} fields as in the header, found {len(row)}")
            yield _row_entry(header, fields, row, opts)
        except AmbiguousHash as exc:
            raise AmbiguousHash(exc.detail, opts.where, record=record, line=line_no) from None
        except RecordError as exc:
            report(FormatError(str(exc), opts.where, record=record, line=line_no), opts)


def _row_entry(header: list[str], fields: list[str | None], row: list[str], opts: ReadOptions) -> Entry:
    signals: dict[str, str] = {}
    v: dict[str, str] = {}
    extra: dict[str, Any] = {}
    generic: str | None = None
    for name, field, raw in zip(header, fields, row, strict=True):
        cell = raw.strip()
        if field is None:
            if cell:
                extra[name] = cell
        elif field in _SIGNAL_FIELDS or field in SIGNALS:  # (SIGNALS: a plugin's column)
            if cell:
                signals[field] = canonical_signal(field, cell)
        elif field == "hash":
            generic = cell or None
        else:
            v[field] = cell
    if generic is not None:
        type_text = v.get("type")
        if type_text:
            named = normalise_column(type_text)
            kind = _TYPE_NAMES.get(named) or (named if named in entry_signals() else None)
            if kind is None:
                raise RecordError(f"type: {type_text[:40]!r} is not a signal opspoor stores")
        else:
            kind = hex_type(generic, opts.hash_type)
        value = canonical_signal(kind, generic)
        if signals.get(kind, value) != value:
            raise RecordError(f"two different {kind} values in one row")
        signals[kind] = value
    check_has_signal(signals)
    return Entry(
        signals=signals,
        category=parse_category(v.get("category")),
        victim_identified=parse_bool(v.get("victim_identified"), "victim_identified"),
        offender_identified=parse_bool(v.get("offender_identified"), "offender_identified"),
        distributed=parse_bool(v.get("distributed"), "distributed"),
        series=text_or_none(v.get("series"), "series"),
        tags=split_tags(v.get("tags"), ","),
        source=v.get("source") or opts.source,
        date_updated=v.get("date_updated") or None,
        external_id=v.get("external_id") or None,
        size=parse_size(v.get("size"), "size"),
        extra={"csv": extra} if extra else {},
    )


def write_csv(entries: Iterable[Entry], stream: BinaryIO, opts: WriteOptions) -> int:
    """A header and one row per entry; entries with none of the chosen hash columns are left out."""
    columns = opts.columns or CSV_COLUMNS
    unknown = set(columns) - _SIGNAL_FIELDS
    if unknown:
        raise FormatError(
            f"unknown hash column(s) {', '.join(sorted(unknown))}; known: {', '.join(ENTRY_SIGNALS)}"
        )
    out = io.TextIOWrapper(stream, encoding="utf-8", newline="")
    n = 0
    try:
        w = csv.writer(out, delimiter=opts.delimiter, lineterminator="\n")
        w.writerow((*columns, *CSV_FIELDS))
        for e in entries:
            s = e.signals
            if not any(c in s for c in columns):
                continue
            n += 1
            w.writerow(
                (
                    *(s.get(c, "") for c in columns),
                    "" if e.category is None else str(e.category),
                    bool_text(e.victim_identified),
                    bool_text(e.offender_identified),
                    bool_text(e.distributed),
                    e.series or "",
                    ",".join(e.tags),
                    e.source or "",
                    e.date_updated or "",
                    e.external_id or "",
                    "" if e.size is None else str(e.size),
                )
            )
        out.flush()
    finally:
        out.detach()
    return n
