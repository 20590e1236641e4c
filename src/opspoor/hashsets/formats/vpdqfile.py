"""vPDQ hash files as Meta's ``vpdq`` tools write them: one video per file, one line per kept frame
(``frame_number,quality,pdq_hex,timestamp``). The whole file is one entry with ``signals["vpdq"]``
in canonical text; when read from a named file, the file's name is kept in ``extra["vpdq"]["name"]``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import BinaryIO

from opspoor.errors import FormatError, SignalError
from opspoor.hashsets.formats.base import ReadOptions, WriteOptions, first_lines, report, text_lines
from opspoor.hashsets.model import Entry
from opspoor.signals.vpdq import format_vpdq, looks_like_vpdq_line, parse_vpdq


def sniff_vpdq(head: bytes) -> bool:
    lines = first_lines(head, 3)
    return bool(lines) and all(map(looks_like_vpdq_line, lines))


def read_vpdq(stream: BinaryIO, opts: ReadOptions) -> Iterator[Entry]:
    # one video's frames: small (a line per second), so the file is read whole
    text = "".join(text_lines(stream, opts.where))
    if not text.strip():
        raise FormatError("the file is empty", opts.where)
    try:
        frames = parse_vpdq(text)
    except SignalError as exc:
        detail = exc.message.removeprefix(f"vpdq line {exc.line}: ")
        report(FormatError(detail, opts.where, record=1, line=exc.line), opts)
        return
    extra = {"vpdq": {"name": os.path.basename(opts.where)}} if opts.where else {}
    yield Entry({"vpdq": format_vpdq(frames)}, source=opts.source, extra=extra)


def write_vpdq(entries: Iterable[Entry], stream: BinaryIO, opts: WriteOptions) -> int:
    """The one entry with a vPDQ value; a second one is an error (a vPDQ file holds one video)."""
    n = 0
    for e in entries:
        value = e.signals.get("vpdq")
        if value is None:
            continue
        if n:
            raise FormatError("a vPDQ file holds one video; write one file per entry")
        stream.write(value.encode("utf-8"))
        if not value.endswith("\n"):
            stream.write(b"\n")
        n = 1
    return n
