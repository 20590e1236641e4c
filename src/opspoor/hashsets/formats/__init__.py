"""Hash-set exchange formats by short name. A new format is one module plus one line in ``FORMATS``.

``read_entries`` streams entries from a file or binary stream, detecting the format from the
content when asked (``format="auto"``), one by one or (``.batches()``) as columns, which is how
the store imports them; ``write_entries`` writes them as they come. See
docs/formats.md for every format's mapping of categories and flags.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Iterator
from itertools import chain, islice
from pathlib import Path
from typing import Any, BinaryIO

from opspoor.errors import FormatError, UnknownFormat
from opspoor.hashsets.formats.base import (
    AmbiguousHash,
    CaseInfo,
    EntryBatch,
    ErrorHandler,
    Format,
    ReadOptions,
    WriteOptions,
    binary_kind,
    check_hash_type,
    head_text,
)
from opspoor.hashsets.formats.encase import read_encase, sniff_encase
from opspoor.hashsets.formats.hashdeep import read_hashdeep, sniff_hashdeep
from opspoor.hashsets.formats.hma import read_hma, sniff_hma, sniff_hma_lines, write_hma, write_hma_lines
from opspoor.hashsets.formats.icse import read_icse, sniff_icse, write_icse
from opspoor.hashsets.formats.ncmec import read_ncmec, sniff_ncmec
from opspoor.hashsets.formats.nsrl import (
    read_nsrl,
    read_nsrl_rds3,
    sniff_nsrl,
    sniff_nsrl_rds3,
)
from opspoor.hashsets.formats.plain import (
    read_csv,
    read_plain,
    sniff_csv,
    sniff_plain,
    write_csv,
    write_plain,
)
from opspoor.hashsets.formats.sums import read_sums, sniff_sums
from opspoor.hashsets.formats.vics import (
    read_vics,
    read_vics_batches,
    sniff_vics2,
    sniff_vics13,
)
from opspoor.hashsets.formats.vics_write import write_vics2, write_vics13
from opspoor.hashsets.formats.vpdqfile import read_vpdq, sniff_vpdq, write_vpdq
from opspoor.hashsets.model import Entry

#: in detection order: the first whose ``sniff`` accepts the file's head wins
FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format(
            "encase", "EnCase hash set (.hash, binary MD5 set)", read_encase, None, sniff_encase, binary=True
        ),
        Format(
            "nsrl-rds3",
            "NIST NSRL RDS v3 (SQLite, FILE table)",
            read_nsrl_rds3,
            None,
            sniff_nsrl_rds3,
            binary=True,
        ),
        Format(
            "vics2",
            "Project VIC VICS 2.0 JSON (#Media or #Cases)",
            read_vics,
            write_vics2,
            sniff_vics2,
            read_vics_batches,
        ),
        Format(
            "vics13",
            "Project VIC VICS 1.3 JSON (#Media or #Cases)",
            read_vics,
            write_vics13,
            sniff_vics13,
            read_vics_batches,
        ),
        Format("ncmec", "NCMEC hash-sharing entries (XML)", read_ncmec, None, sniff_ncmec),
        Format("hashdeep", "hashdeep file (HASHDEEP-1.0)", read_hashdeep, None, sniff_hashdeep),
        Format("nsrl", "NIST NSRL RDS 2.x NSRLFile.txt", read_nsrl, None, sniff_nsrl),
        Format("icse", "Interpol ICSE CSV (;-separated)", read_icse, write_icse, sniff_icse),
        Format("vpdq", "vPDQ hash file of one video", read_vpdq, write_vpdq, sniff_vpdq),
        Format("hma", "ThreatExchange / HMA signal list (CSV)", read_hma, write_hma, sniff_hma),
        Format(
            "sums",
            "md5sum / sha1sum / sha256sum (also --tag) and md5deep output",
            read_sums,
            None,
            sniff_sums,
        ),
        Format(
            "hma-lines",
            "python-threatexchange signal file (TYPE SIGNAL lines)",
            read_hma,
            write_hma_lines,
            sniff_hma_lines,
        ),
        Format("csv", "CSV/TSV with a header naming the hash columns", read_csv, write_csv, sniff_csv),
        Format("plain", "one hash per line", read_plain, write_plain, sniff_plain),
    )
}

#: bytes of a file's beginning that detection looks at
HEAD_SIZE = 64 << 10


def get_format(name: str) -> Format:
    try:
        return FORMATS[name.lower()]
    except KeyError:
        raise UnknownFormat(f"unknown format {name!r}; known: auto, {', '.join(FORMATS)}") from None


def detect_format(head: bytes, filename: str | None = None) -> str:
    """The name of the format whose content ``head`` (the file's first bytes) looks like."""
    if not head_text(head).strip():
        raise UnknownFormat("the file is empty", filename)
    what = binary_kind(head)  # None for text
    for fmt in FORMATS.values():
        if (fmt.binary or what is None) and fmt.sniff(head):
            return fmt.name
    if what is not None:
        raise UnknownFormat(f"not a hash list: {what}", filename)
    raise UnknownFormat(
        f"cannot tell the hash-set format from the content; pass --format (one of {', '.join(FORMATS)})",
        filename,
    )


def read_entries(
    path_or_stream: str | os.PathLike[str] | BinaryIO,
    format: str = "auto",
    *,
    hash_type: str | None = None,
    on_error: ErrorHandler | None = None,
    source: str | None = None,
) -> EntryStream:
    """Entries of a hash-set file, one at a time, in constant memory.

    ``hash_type`` says what 64-hex values without a named column are (``sha256`` or ``pdq``).
    Without ``on_error`` the first invalid record raises ``FormatError``; with it each invalid
    record is reported and skipped. File-level faults (syntax errors, truncation, a missing header,
    an ambiguous 64-hex list without ``hash_type``) always raise.

    The result is an iterator of :class:`Entry`; its ``batches()`` gives the same entries as
    :class:`EntryBatch` columns instead, which is several times faster for VICS.
    """
    return EntryStream(path_or_stream, format, hash_type, on_error, source)


#: entries per batch when a format's per-entry reader is grouped into batches
BATCH_SIZE = 10_000


class EntryStream(Iterator[Entry]):
    """The entries of one hash-set file: iterate for :class:`Entry` objects, or call
    :meth:`batches` once for columns. The file is opened on first use and closed at its end."""

    def __init__(
        self,
        source: str | os.PathLike[str] | BinaryIO,
        format: str,
        hash_type: str | None,
        on_error: ErrorHandler | None,
        entry_source: str | None,
    ) -> None:
        self._source = source
        self._format = format
        self._args = (hash_type, on_error, entry_source)
        self._entries: Iterator[Entry] | None = None
        self._batches: Iterator[EntryBatch] | None = None

    def __next__(self) -> Entry:
        if self._entries is None:
            if self._batches is not None:
                raise RuntimeError("this EntryStream is being read as batches")
            self._entries = self._read(batched=False)  # type: ignore[assignment]
        return next(self._entries)  # type: ignore[arg-type]

    def batches(self, size: int = BATCH_SIZE) -> Iterator[EntryBatch]:
        """The entries as columns. A format without a column reader is grouped ``size`` at a time."""
        if self._entries is not None or self._batches is not None:
            raise RuntimeError("this EntryStream is already being read")
        self._batches = self._read(batched=True, size=size)  # type: ignore[assignment]
        return self._batches  # type: ignore[return-value]

    def close(self) -> None:
        for it in (self._entries, self._batches):
            close = getattr(it, "close", None)
            if close is not None:
                close()

    def _read(self, *, batched: bool, size: int = BATCH_SIZE) -> Iterator[Entry | EntryBatch]:
        hash_type, on_error, entry_source = self._args
        check_hash_type(hash_type)
        src = self._source
        if isinstance(src, str | os.PathLike):
            path = Path(src)
            opts = ReadOptions(hash_type, str(path), on_error, entry_source)
            with path.open("rb") as f:
                yield from _read(f, self._format, opts, batched, size)
        else:
            name = getattr(src, "name", None)
            opts = ReadOptions(hash_type, name if isinstance(name, str) else None, on_error, entry_source)
            yield from _read(src, self._format, opts, batched, size)


def _read(
    stream: BinaryIO, format: str, opts: ReadOptions, batched: bool, size: int
) -> Iterator[Entry | EntryBatch]:
    if format == "auto":
        head, stream = _peek(stream)
        format = detect_format(head, opts.where)
    fmt = get_format(format)
    if fmt.batch_reader is not None:
        batches = fmt.batch_reader(stream, opts)
        if batched:
            yield from batches
        else:
            yield from chain.from_iterable(b.entries() for b in batches)
    elif batched:
        entries = fmt.reader(stream, opts)
        while chunk := list(islice(entries, size)):
            yield EntryBatch.from_entries(chunk)
    else:
        yield from fmt.reader(stream, opts)


def _peek(stream: BinaryIO) -> tuple[bytes, BinaryIO]:
    """The first ``HEAD_SIZE`` bytes, and a stream that still starts at the beginning."""
    if stream.seekable():
        start = stream.tell()
        head = stream.read(HEAD_SIZE)
        stream.seek(start)
        return head, stream
    parts = []
    size = 0
    while size < HEAD_SIZE and (part := stream.read(HEAD_SIZE - size)):  # pipes return short reads
        parts.append(part)
        size += len(part)
    head = b"".join(parts)
    return head, io.BufferedReader(_Replay(head, stream))  # type: ignore[return-value]


class _Replay(io.RawIOBase):
    """A non-seekable stream with its already-read head put back in front."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self._head = memoryview(head)
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        if self._head:
            n = min(len(b), len(self._head))
            b[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._rest.read(len(b))
        b[: len(data)] = data
        return len(data)


def write_entries(
    entries: Iterable[Entry], path_or_stream: str | os.PathLike[str] | BinaryIO, format: str, **opts: Any
) -> int:
    """Write entries in ``format``; returns how many were written. Options: see ``WriteOptions``.

    A path is written through a temporary file beside it and renamed at the end, so a failed
    export leaves no half-written file.
    """
    fmt = get_format(format)
    if fmt.writer is None:
        writable = ", ".join(n for n, f in FORMATS.items() if f.writer is not None)
        raise FormatError(f"opspoor reads {fmt.name} but does not write it; write one of {writable}")
    wopts = WriteOptions(**opts)
    if not isinstance(path_or_stream, str | os.PathLike):
        return fmt.writer(entries, path_or_stream, wopts)
    path = Path(path_or_stream)
    tmp = path.with_name(f".{path.name}.partial")
    try:
        # owner-only like every case output; a stale partial of an earlier crash goes first so
        # O_EXCL creates the file with this mode rather than reusing another's
        tmp.unlink(missing_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
        with os.fdopen(fd, "wb") as f:
            n = fmt.writer(entries, f, wopts)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return n


__all__ = [
    "FORMATS",
    "HEAD_SIZE",
    "AmbiguousHash",
    "CaseInfo",
    "EntryBatch",
    "EntryStream",
    "Format",
    "FormatError",
    "ReadOptions",
    "UnknownFormat",
    "WriteOptions",
    "detect_format",
    "get_format",
    "read_entries",
    "write_entries",
]
