"""ThreatExchange / HMA signal lists, as python-threatexchange and HMA banks exchange them.

Two shapes are read, and written (``hma`` the CSV, ``hma-lines`` the lines):

- CSV with a header, as ``threatexchange dataset -P --csv`` prints it
  (``signal_type,signal_str,collab,category,tags``), also with HMA's names ``bank``/``bank_name``,
  ``content_id``/``bank_member_id`` and ``signal``. One row per signal; consecutive rows of one
  bank and one (non-empty) content id are one entry, so a content with a PDQ and an MD5 stays whole.
- Lines ``SIGNAL_TYPE SIGNAL`` as ``threatexchange dataset -P -S`` prints them and
  python-threatexchange's local-file exchange reads them (``pdq 0f3c…``). The type ends at the
  first space: a vPDQ signal is a JSON list with spaces in it. ``dataset -P`` lines, which go on
  with the collaboration's name and the opinion (``pdq 0f3c… 'Sample' POSITIVE_CLASS``), are read
  too.

Mapping: bank/collab -> ``source``; content id -> ``external_id`` (unless an ``external_id``
column holds it: opspoor writes a content id per entry, the entry's external id when it has one
that the entry before does not share, else ``entry-N``, and the external id itself in
``external_id``, so entries keep their boundaries); ``category`` either
``SCHEME:CODE`` (an opspoor category) or a ThreatExchange opinion (``POSITIVE_CLASS`` …, kept in
``extra["hma"]["category"]``); ``tags`` space-separated. Signal types: python-threatexchange's
``pdq``, ``vpdq`` (a JSON list of ``"hex,quality,seconds"``), ``video_md5`` and ``photo_md5``
(``md5``), ``video_sha256`` (``sha256``), and opspoor's own names (``md5``, ``sha1``, ``sha256``,
``photodna``); others (``url``, ``raw_text``) are errors. The writers use python-threatexchange's
names where it has one (``video_md5``, ``video_sha256``, ``vpdq`` as its JSON list).
"""

from __future__ import annotations

import ast
import csv
import io
import json
import math
import re
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO

from opspoor.errors import FormatError
from opspoor.hashsets.formats.base import (
    ReadOptions,
    RecordError,
    WriteOptions,
    canonical_signal,
    csv_rows,
    first_lines,
    normalise_column,
    parse_category,
    report,
    split_tags,
    text_lines,
)
from opspoor.hashsets.model import ENTRY_SIGNALS, Entry
from opspoor.signals import hex_lengths
from opspoor.signals.vpdq import VpdqFrame, format_vpdq, parse_vpdq

HEADER = ("collab", "content_id", "signal_type", "signal_str", "category", "tags", "external_id")
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
    "externalid": "external_id",
}
#: signal type names (python-threatexchange's and opspoor's, compared normalised) -> opspoor signal
_TYPES = {s: s for s in ENTRY_SIGNALS} | {"videomd5": "md5", "photomd5": "md5", "videosha256": "sha256"}
#: opspoor signal -> python-threatexchange's type name; sha1 and photodna have none there
TE_TYPE_NAMES = {"pdq": "pdq", "md5": "video_md5", "sha256": "video_sha256", "vpdq": "vpdq"}
_LINE = re.compile(r"([A-Za-z][A-Za-z0-9_]*)\s+(\S.*)")
_OPINION = re.compile(r"('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")?\s*([A-Z][A-Z_]*)?")
#: what a signal of each type looks like, to tell signal lines from other text when detecting:
#: fixed-width hex from the registry; vPDQ a list; PhotoDNA has spellings other than hex
_LOOKS = {n: re.compile(rf"[0-9A-Fa-f]{{{h}}}\b.*") for n, h in hex_lengths().items()} | {
    "vpdq": re.compile(r"\[.*"),
    "photodna": re.compile(r"\S+.*"),
}


def _is_header(line: str) -> bool:
    cols = {_COLUMNS.get(normalise_column(c)) for c in next(csv.reader([line]))}
    return {"type", "signal"} <= cols


def sniff_hma(head: bytes) -> bool:
    lines = first_lines(head, 1)
    return bool(lines) and _is_header(lines[0])


def sniff_hma_lines(head: bytes) -> bool:
    """Every line ``word signal…`` and at least one a signal type opspoor stores, with a value of
    its shape: the lines of other types (``url …``) may come first."""
    lines = first_lines(head, 64)
    matches = [_LINE.fullmatch(s) for s in lines]
    if not lines or not all(matches):
        return False
    for m in matches:
        assert m is not None
        kind = _TYPES.get(normalise_column(m.group(1)))
        if kind is not None and _LOOKS[kind].fullmatch(m.group(2)):
            return True
    return False


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


def _kind(type_text: str) -> str:
    kind = _TYPES.get(normalise_column(type_text))
    if kind is None:
        raise RecordError(
            f"signal type {type_text[:40]!r} is not a media hash opspoor stores "
            "(python-threatexchange: dataset --only-content photo video)"
        )
    return kind


def _signal(type_text: str, value: str) -> tuple[str, str]:
    kind = _kind(type_text)
    if kind == "vpdq" and value.lstrip().startswith("["):
        return kind, vpdq_from_te(value)
    return kind, canonical_signal(kind, value)


def vpdq_from_te(text: str) -> str:
    """python-threatexchange's vPDQ signal (a JSON list of ``"pdq_hex,quality,seconds"``) as
    opspoor's canonical vPDQ text. That form has no frame numbers: frames are numbered 0, 1, 2…"""
    try:
        items = json.loads(text)
    except ValueError as exc:
        raise RecordError(f"vpdq: not a JSON list ({exc})") from None
    if not isinstance(items, list) or not items:
        raise RecordError("vpdq: expected a non-empty JSON list of 'pdq_hex,quality,seconds'")
    frames = []
    for n, item in enumerate(items):
        parts = item.split(",") if isinstance(item, str) else []
        try:
            if len(parts) != 3:
                raise ValueError
            digest, quality, seconds = parts[0].strip().lower(), int(parts[1]), float(parts[2])
            if len(digest) != 64 or not re.fullmatch(r"[0-9a-f]{64}", digest):
                raise ValueError
            if not 0 <= quality <= 100 or not (math.isfinite(seconds) and seconds >= 0):
                raise ValueError
        except ValueError:
            raise RecordError(
                f"vpdq: frame {n + 1} is not 'pdq_hex,quality,seconds': {item!r:.100}"
            ) from None
        frames.append(VpdqFrame(n, quality, digest, seconds))
    return format_vpdq(frames)


def vpdq_to_te(value: str) -> str:
    """opspoor's vPDQ text as python-threatexchange writes its vPDQ signal (frame numbers dropped)."""
    return json.dumps([f"{f.hash},{f.quality},{f.timestamp:.3f}" for f in parse_vpdq(value)])


def _split_line(kind: str, rest: str) -> tuple[str, str]:
    """The signal of a line's rest, and what follows it (``dataset -P``'s collab and opinion)."""
    if kind == "vpdq" and rest.startswith("["):
        try:
            _, end = json.JSONDecoder().raw_decode(rest)
        except ValueError:
            return rest, ""
        return rest[:end], rest[end:].strip()
    signal, _, after = rest.partition(" ")
    return signal, after.strip()


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
            signal, after = _split_line(_kind(m.group(1)), m.group(2))
            kind, value = _signal(m.group(1), signal)
            source, extra = _opinion(after)
        except RecordError as exc:
            report(FormatError(str(exc), opts.where, record=record, line=line_no), opts)
            continue
        yield Entry({kind: value}, source=source or opts.source, extra=extra)


def _opinion(after: str) -> tuple[str | None, dict[str, Any]]:
    """``'collab name' OPINION`` after a ``dataset -P`` signal: the source and the opinion."""
    if not after:
        return None, {}
    m = _OPINION.fullmatch(after)
    if m is None:
        raise RecordError(f"unexpected text after the signal: {after[:80]!r}")
    source = ast.literal_eval(m.group(1)) if m.group(1) else None
    return source, ({"hma": {"category": m.group(2)}} if m.group(2) else {})


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
            # opspoor's own export says the external id apart from the content id (which it
            # makes up where an entry has none)
            external_id=row.get("external_id", content) or None,
            extra=extra,
        )


def _read_table(header_text: str, header_no: int, lines: Iterator[str], opts: ReadOptions) -> Iterator[Entry]:
    header = [c.strip() for c in next(csv.reader([header_text]))]
    fields = [_COLUMNS.get(normalise_column(c)) for c in header]
    group: _Group | None = None
    for record, (line_no, row) in enumerate(csv_rows(lines, header_no), 1):
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


def te_signal(kind: str, value: str) -> tuple[str, str]:
    """A signal as python-threatexchange names and writes it (opspoor's name where it has none)."""
    return TE_TYPE_NAMES.get(kind, kind), vpdq_to_te(value) if kind == "vpdq" else value


def write_hma(entries: Iterable[Entry], stream: BinaryIO, opts: WriteOptions) -> int:
    """CSV, one row per signal; tags are space-separated, so a tag must not contain white space."""
    out = io.TextIOWrapper(stream, encoding="utf-8", newline="")
    n = 0
    try:
        w = csv.writer(out, lineterminator="\n")
        w.writerow(HEADER)
        previous = ""
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
            # rows of one content id in a row are one entry when read: each entry gets its own
            content = e.external_id or ""
            if not content or content == previous:
                content = f"entry-{n}"
            while content == previous:  # (the entry before had the external id "entry-N")
                content += "'"
            previous = content
            for kind, value in e.signals.items():
                w.writerow(
                    (
                        e.source or opts.name or "",
                        content,
                        *te_signal(kind, value),
                        category,
                        " ".join(e.tags),
                        e.external_id or "",
                    )
                )
        out.flush()
    finally:
        out.detach()
    return n


def write_hma_lines(entries: Iterable[Entry], stream: BinaryIO, opts: WriteOptions) -> int:
    """``SIGNAL_TYPE SIGNAL`` lines of the signals python-threatexchange knows (PDQ, vPDQ, MD5,
    SHA-256); entries with none of them are left out (the count says how many were written)."""
    n = 0
    for e in entries:
        lines = [" ".join(te_signal(k, v)) for k, v in e.signals.items() if k in TE_TYPE_NAMES]
        if lines:
            stream.write(("\n".join(lines) + "\n").encode("utf-8"))
            n += 1
    return n
