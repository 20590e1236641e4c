"""hashdeep's own file format (``HASHDEEP-1.0``), as ``hashdeep -r`` writes it and ``hashdeep -k``
reads it back:

    %%%% HASHDEEP-1.0
    %%%% size,md5,sha256,filename
    ## Invoked from: /home/user
    ## $ hashdeep -r photos
    ##
    6,b1946ac9…,5891b5b5…,/home/user/photos/a.txt

The second header line names the columns; ``##`` lines are comments. ``size`` -> ``size``; ``md5``,
``sha1``, ``sha256`` -> signals; ``filename`` (the last column, which may hold commas) and hashes
opspoor does not store (``tiger``, ``whirlpool``) -> ``extra["hashdeep"]``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, BinaryIO

from opspoor.errors import FormatError
from opspoor.hashsets.formats.base import (
    ReadOptions,
    RecordError,
    canonical_signal,
    check_has_signal,
    head_text,
    parse_size,
    report,
    text_lines,
)
from opspoor.hashsets.model import Entry

MAGIC = "%%%% HASHDEEP-1.0"
_SIGNALS = ("md5", "sha1", "sha256")


def sniff_hashdeep(head: bytes) -> bool:
    return head_text(head).lstrip().startswith(MAGIC)


def read_hashdeep(stream: BinaryIO, opts: ReadOptions) -> Iterator[Entry]:
    lines = text_lines(stream, opts.where)
    columns: list[str] | None = None
    record = 0
    for line_no, line in enumerate(lines, 1):
        s = line.rstrip("\r\n")
        if line_no == 1:
            if s.strip() != MAGIC:
                raise FormatError(f"not a hashdeep file: the first line is not {MAGIC!r}", opts.where, line=1)
            continue
        if columns is None:
            if not s.startswith("%%%% "):
                raise FormatError(
                    "the second line must name the columns ('%%%% size,md5,...,filename')", opts.where, line=2
                )
            columns = [c.strip().lower() for c in s[5:].split(",")]
            if columns[-1] != "filename" or not set(_SIGNALS) & set(columns):
                raise FormatError(
                    f"hashdeep columns {s[5:]!r} name no MD5, SHA-1 or SHA-256, or do not end with filename",
                    opts.where,
                    line=2,
                )
            continue
        if not s.strip() or s.startswith("##"):
            continue
        record += 1
        try:
            yield _entry(columns, s, opts)
        except RecordError as exc:
            report(FormatError(str(exc), opts.where, record=record, line=line_no), opts)
    if columns is None:
        raise FormatError("the file ends inside the hashdeep header", opts.where)


def _entry(columns: list[str], s: str, opts: ReadOptions) -> Entry:
    cells = s.split(",", len(columns) - 1)  # the file name, last, may hold commas
    if len(cells) != len(columns):
        raise RecordError(f"expected {len(columns)} fields as the header names, found {len(cells)}")
    signals: dict[str, str] = {}
    extra: dict[str, Any] = {}
    size = None
    for col, cell in zip(columns, cells, strict=True):
        if col in _SIGNALS:
            signals[col] = canonical_signal(col, cell.strip())
        elif col == "size":
            size = parse_size(cell.strip(), "size")
        elif col == "filename":
            extra["name"] = cell
        else:
            extra[col] = cell.strip()
    check_has_signal(signals)
    return Entry(signals, size=size, source=opts.source, extra={"hashdeep": extra})
