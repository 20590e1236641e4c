"""ThreatExchange / HMA signal lists, as python-threatexchange and HMA banks exchange them.

Two shapes are read:

- CSV with a header, as ``threatexchange dataset -P --csv`` prints it
  (``collab,signal_type,signal_str,category,tags``), also with HMA's names ``bank``/``bank_name``,
  ``content_id``/``bank_member_id`` and ``signal``. One row per signal; consecutive rows of one
  bank and one (non-empty) content id are one entry, so a content with a PDQ and an MD5 stays whole.
- Lines ``SIGNAL_TYPE SIGNAL`` as python-threatexchange's local-file exchange reads them
  (``pdq 0f3c…``).

Mapping: bank/collab -> ``source``; content id -> ``external_id``; ``category`` either
``SCHEME:CODE`` (an opspoor category) or a ThreatExchange opinion (``POSITIVE_CLASS`` …, kept in
``extra["hma"]["category"]``); ``tags`` space-separated. Signal types ``pdq``, ``vpdq``, ``md5``
(``video_md5``, ``photo_md5``), ``sha1``, ``sha256``, ``photodna``; others (``url``, ``raw_text``)
are errors. The writer writes the CSV shape with opspoor's signal names.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO

from opspoor.errors import FormatError
from opspoor.hashsets.formats.base import (
    ReadOptions,
    RecordError,
    WriteOptions,
    canonical_signal,
    first_lines,
    normalise_column,
    parse_category,
    report,
    split_tags,
    text_lines,
)
from opspoor.hashsets.model import ENTRY_SIGNALS, Entry

HEADER = ("collab", "content_id", "signal_type", "signal_str", "category", "tags")
_COLUMNS = {
    "collab": "bank",
    "bank": "bank",
    "bankname": "bank",
    "contentid": "content_id",
    "bankmemberid": "content_id",
    "signaltype": "type",
    "signalstr": "signal",
    "signal": "signal",
    "signalvalue": "signal",
    "category": "category",
    "tags": "tags",
}
_TYPES = {s: s for s in ENTRY_SIGNALS} | {"videomd5": "md5", "photomd5": "md5"}
_LINE = re.compile(r"([A-Za-z][A-Za-z0-9_]*)\s+(\S+)")


def _is_header(line: str) -> bool:
    cols = {_COLUMNS.get(normalise_column(c)) for c in next(csv.reader([line]))}
    return {"type", "signal"} <= cols


def sniff_hma(head: bytes) -> bool:
    lines = first_lines(head, 2)
    if not lines:
        return False
    if _is_header(lines[0]):
        return True
    m = _LINE.fullmatch(lines[0])
    return m is not None and normalise_column(m.group(1)) in _TYPES


def read_hma(stream: BinaryIO, opts: ReadOptions) -> Iterator[Entry]:
    lines = text_lines(stream, opts.where)
    for first_no, first in enumerate(lines, 1):  # noqa: B007 - used after the loop
        if first.strip() and not first.lstrip().startswith("#"):
            break
    else:
        raise FormatError("the file is empty", opts.where)
    if _is_header(first):
        yield from _read_table(first, first_no, lines, opts)
    else:
        yield from _read_lines(first, first_no, lines, opts)


def _signal(type_text: str, value: str) -> tuple[str, str]:
    kind = _TYPES.get(normalise_column(type_text))
    if kind is None:
        raise RecordError(f"signal type {type_text[:40]!r} is not one opspoor stores")
    return kind, canonical_signal(kind, value)


def _read_lines(first: str, first_no: int, lines: Iterator[str], opts: ReadOptions) -> Iterator[Entry]:
    record = 0

    def numbered() -> Iterator[tuple[int, str]]:
        yield first_no, first
        yield from enumerate(lines, first_no + 1)

    for line_no, line in numbered():
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        record += 1
        try:
            m = _LINE.fullmatch(s)
            if m is None:
                raise RecordError(f"expected 'SIGNAL_TYPE SIGNAL', got {s[:80]!r}")
            kind, value = _signal(m.group(1), m.group(2))
        except RecordError as exc:
            report(FormatError(str(exc), opts.where, record=record, line=line_no), opts)
            continue
        yield Entry({kind: value}, source=opts.source)


class _Group:
    """Rows of one content, gathered until the content changes."""

    def __init__(self, key: tuple[str, str]) -> None:
        self.key = key
        self.signals: dict[str, str] = {}
        self.failed = False
        self.entry: Entry | None = None

    def start(self, row: dict[str, str], opts: ReadOptions) -> None:
        """Take the content's category and tags from its first row."""
        extra: dict[str, Any] = {}
        category = None
        raw = row.get("category", "")
        if raw and ":" in raw:
            category = parse_category(raw)
        elif raw:
            extra["hma"] = {"category": raw}
        bank, content = self.key
        self.entry = Entry(
            self.signals,
            category=category,
            tags=split_tags(row.get("tags"), None),
            source=bank or opts.source,
            external_id=content or None,
            extra=extra,
        )


def _read_table(header_text: str, header_no: int, lines: Iterator[str], opts: ReadOptions) -> Iterator[Entry]:
    header = [c.strip() for c in next(csv.reader([header_text]))]
    fields = [_COLUMNS.get(normalise_column(c)) for c in header]
    rows = csv.reader(lines)
    group: _Group | None = None
    line_end = header_no
    record = 0
    for row in rows:
        line_no = line_end + 1
        line_end = header_no + rows.line_num
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        record += 1
        row_group: _Group | None = None
        try:
            if len(row) != len(header):
                raise RecordError(f"expected {len(header)} fields as in the header, found {len(row)}")
            v = {f: cell.strip() for f, cell in zip(fields, row, strict=True) if f is not None}
            key = (v.get("bank", ""), v.get("content_id", ""))
            # rows of one content are consecutive; a row without a content id is an entry of its own
            if group is None or not key[1] or key != group.key:
                if group is not None and group.entry is not None and not group.failed:
                    yield group.entry
                group = _Group(key)
            row_group = group
            if group.entry is None:
                group.start(v, opts)
            kind, value = _signal(v.get("type", ""), v.get("signal", ""))
            if group.signals.get(kind, value) != value:
                raise RecordError(f"content {key[1]!r} has two different {kind} values")
            group.signals[kind] = value
        except RecordError as exc:
            if row_group is not None:
                row_group.failed = True
            report(FormatError(str(exc), opts.where, record=record, line=line_no), opts)
    if group is not None and group.entry is not None and not group.failed:
        yield group.entry


def write_hma(entries: Iterable[Entry], stream: BinaryIO, opts: WriteOptions) -> int:
    """CSV, one row per signal; tags are space-separated, so a tag must not contain white space."""
    out = io.TextIOWrapper(stream, encoding="utf-8", newline="")
    n = 0
    try:
        w = csv.writer(out, lineterminator="\n")
        w.writerow(HEADER)
        for n, e in enumerate(entries, 1):
            for t in e.tags:
                if re.search(r"\s", t):
                    raise FormatError(
                        f"entry {n}: tag {t!r} contains white space; HMA tags are space-separated"
                    )
            if e.category is not None:
                category = str(e.category)
            else:
                category = (e.extra.get("hma") or {}).get("category", "")
            for kind, value in e.signals.items():
                w.writerow(
                    (
                        e.source or opts.name or "",
                        e.external_id or "",
                        kind,
                        value,
                        category,
                        " ".join(e.tags),
                    )
                )
        out.flush()
    finally:
        out.detach()
    return n
