"""NIST NSRL Reference Data Sets: lists of known software files, read naturally as an
``ignorable`` hash set.

- ``nsrl``: RDS 2.x ``NSRLFile.txt``, quoted CSV with the header
  ``"SHA-1","MD5","CRC32","FileName","FileSize","ProductCode","OpSystemCode","SpecialCode"``.
- ``nsrl-rds3``: RDS v3, an SQLite database; its ``FILE`` view (``sha256``, ``sha1``, ``md5``,
  ``crc32``, ``file_name``, ``file_size``, ``package_id``) is read row by row. The database is
  opened read-only and immutable, so nothing is written beside it; a database that comes through
  a pipe is first copied to an owner-only temporary file.

Hashes -> signals, file size -> ``size``; CRC32, file name, product / package, OS and special
codes -> ``extra["nsrl"]``. RDS files are not always UTF-8: a file name that is not is kept with
replacement characters (the hashes, plain ASCII, are checked as usual).
"""

from __future__ import annotations

import csv
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO
from urllib.request import pathname2url

from opspoor.errors import FormatError
from opspoor.hashsets.formats.base import (
    ReadOptions,
    RecordError,
    canonical_signal,
    check_has_signal,
    first_lines,
    normalise_column,
    parse_size,
    report,
)
from opspoor.hashsets.model import Entry

#: RDS 2.x columns (normalised) -> field
_RDS2 = {
    "sha1": "sha1",
    "md5": "md5",
    "crc32": "crc32",
    "filename": "name",
    "filesize": "size",
    "productcode": "product_code",
    "opsystemcode": "os_code",
    "specialcode": "special_code",
}
_RDS2_START = ["sha1", "md5", "crc32", "filename", "filesize"]
SQLITE_MAGIC = b"SQLite format 3\x00"
#: RDS v3 FILE columns -> field
_RDS3 = {
    "sha256": "sha256",
    "sha1": "sha1",
    "md5": "md5",
    "crc32": "crc32",
    "file_name": "name",
    "file_size": "size",
    "package_id": "package_id",
}
_SIGNALS = ("md5", "sha1", "sha256")


def sniff_nsrl(head: bytes) -> bool:
    lines = first_lines(head, 1)
    if not lines:
        return False
    cols = [normalise_column(c) for c in next(csv.reader([lines[0]]))]
    return cols[: len(_RDS2_START)] == _RDS2_START


def _lines(stream: BinaryIO) -> Iterator[str]:
    for n, raw in enumerate(stream):
        line = raw.decode("utf-8", errors="replace")  # names only: the hashes are ASCII and checked
        yield line[1:] if n == 0 and line.startswith("\ufeff") else line


def read_nsrl(stream: BinaryIO, opts: ReadOptions) -> Iterator[Entry]:
    lines = _lines(stream)
    header_text = next(lines, "")
    if not header_text.strip():
        raise FormatError("the file is empty (no header line)", opts.where)
    fields = [_RDS2.get(normalise_column(c)) for c in next(csv.reader([header_text]))]
    if not {"sha1", "md5"} & set(fields):
        raise FormatError(f"not an NSRLFile.txt header: {header_text.strip()[:120]!r}", opts.where, line=1)
    rows = csv.reader(lines)
    line_end = 1
    record = 0
    for row in rows:
        line_no = line_end + 1
        line_end = 1 + rows.line_num
        if not row:
            continue
        record += 1
        try:
            if len(row) != len(fields):
                raise RecordError(f"expected {len(fields)} fields as in the header, found {len(row)}")
            yield _entry({f: cell for f, cell in zip(fields, row, strict=True) if f is not None}, opts)
        except RecordError as exc:
            report(FormatError(str(exc), opts.where, record=record, line=line_no), opts)


def _entry(v: dict[str, Any], opts: ReadOptions) -> Entry:
    signals = {}
    for s in _SIGNALS:
        value = v.get(s)
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        signals[s] = canonical_signal(s, value.strip() if isinstance(value, str) else value)
    check_has_signal(signals)
    size = v.get("size")
    extra = {
        k: val for k, val in v.items() if k not in _SIGNALS and k != "size" and val is not None and val != ""
    }
    return Entry(
        signals,
        size=parse_size(size, "file size"),
        source=opts.source,
        extra={"nsrl": extra} if extra else {},
    )


# --- RDS v3 --------------------------------------------------------------------------


def sniff_nsrl_rds3(head: bytes) -> bool:
    return head.startswith(SQLITE_MAGIC)


def read_nsrl_rds3(stream: BinaryIO, opts: ReadOptions) -> Iterator[Entry]:
    name = getattr(stream, "name", None)
    if isinstance(name, str) and os.path.isfile(name):
        yield from _read_db(Path(name), opts)
        return
    fd, tmp = tempfile.mkstemp(suffix=".sqlite")  # owner-only
    try:
        with os.fdopen(fd, "wb") as f:
            shutil.copyfileobj(stream, f)
        yield from _read_db(Path(tmp), opts)
    finally:
        os.unlink(tmp)


def _read_db(path: Path, opts: ReadOptions) -> Iterator[Entry]:
    try:
        db = sqlite3.connect(f"file:{pathname2url(str(path.resolve()))}?mode=ro&immutable=1", uri=True)
    except sqlite3.Error as exc:
        raise FormatError(f"cannot open the SQLite database: {exc}", opts.where) from None
    try:
        try:
            present = [r[1] for r in db.execute('PRAGMA table_info("FILE")')]
        except sqlite3.DatabaseError as exc:
            raise FormatError(f"not a readable SQLite database: {exc}", opts.where) from None
        columns = [c for c in _RDS3 if c in {p.lower() for p in present}]
        if not set(_SIGNALS) & set(columns):
            raise FormatError(
                "an SQLite database without NSRL RDS v3's FILE table (sha256, sha1, md5, file_name, ...)",
                opts.where,
            )
        query = f'SELECT {", ".join(columns)} FROM "FILE"'  # noqa: S608 - names from the fixed list above
        fields = [_RDS3[c] for c in columns]
        try:
            for record, row in enumerate(db.execute(query), 1):
                try:
                    yield _entry(dict(zip(fields, row, strict=True)), opts)
                except RecordError as exc:
                    report(FormatError(str(exc), opts.where, record=record), opts)
        except sqlite3.DatabaseError as exc:
            raise FormatError(f"the SQLite database is damaged: {exc}", opts.where) from None
    finally:
        db.close()
