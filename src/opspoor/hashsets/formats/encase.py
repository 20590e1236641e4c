"""EnCase hash sets (``.hash``, EnCase 4 to 6): a binary set of MD5 values with no per-file data.

EnCase's format is proprietary and unpublished. The layout read here is the one two public
descriptions agree on — the ForensicsWiki page "EnCase hash file format" and The Sleuth Kit's
Autopsy importer (``EncaseHashSetParser``):

- 0x000: 16 bytes ``48 41 53 48 0D 0A FF 00 02 00 00 00 01 00 00 00`` (``HASH\\r\\n`` …);
- 0x010: the number of hashes, unsigned 32-bit little-endian;
- 0x408: the hash set's name, UTF-16LE, 0x50 bytes, zero-padded;
- 0x458: its category, UTF-16LE, 0x28 bytes, zero-padded;
- 0x480: the hashes, 18 bytes each: 16 bytes of MD5 and two zero bytes, to the end of the file.

Each hash is an entry with ``signals["md5"]``; the set's name and category go to
``extra["encase"]``. A count that disagrees with the hashes present, a cut last record or
a record whose two padding bytes are not zero stops the read: the layout is then not the one
described, and guessing would import wrong hashes. EnCase 3 files (another header) and EnCase 7+
hash libraries (``.HashDB``) are not this format and are refused.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import BinaryIO

from opspoor.errors import FormatError
from opspoor.hashsets.formats.base import ReadOptions
from opspoor.hashsets.model import Entry

MAGIC = b"HASH\r\n\xff\x00"
HEADER = MAGIC + b"\x02\x00\x00\x00\x01\x00\x00\x00"
HASHES_AT = 0x480
_NAME = slice(0x408, 0x458)
_CATEGORY = slice(0x458, 0x480)
_RECORD = 18


def sniff_encase(head: bytes) -> bool:
    return head.startswith(MAGIC)


def _text(raw: bytes) -> str:
    return raw.decode("utf-16-le", errors="replace").split("\x00", 1)[0].strip()


def read_encase(stream: BinaryIO, opts: ReadOptions) -> Iterator[Entry]:
    header = stream.read(HASHES_AT)
    if not header.startswith(MAGIC):
        raise FormatError("not an EnCase hash set: it does not start with 'HASH\\r\\n\\xff\\x00'", opts.where)
    if len(header) < HASHES_AT:
        raise FormatError(f"the EnCase header is cut short ({len(header)} of {HASHES_AT} bytes)", opts.where)
    if not header.startswith(HEADER):
        raise FormatError(
            f"an EnCase hash set of another version (header bytes 8-15: {header[8:16].hex(' ')}); "
            "only the EnCase 4-6 layout is read",
            opts.where,
        )
    (count,) = struct.unpack_from("<I", header, 0x10)
    extra = {"encase": {"set": _text(header[_NAME]), "category": _text(header[_CATEGORY])}}
    record = 0
    while rec := stream.read(_RECORD):
        record += 1
        if len(rec) < _RECORD:
            raise FormatError(
                f"the last hash record is cut short ({len(rec)} of {_RECORD} bytes)",
                opts.where,
                record=record,
            )
        if rec[16:] != b"\x00\x00":
            raise FormatError(
                f"hash record {record} does not end with two zero bytes: not the EnCase layout opspoor reads",
                opts.where,
                record=record,
            )
        yield Entry({"md5": rec[:16].hex()}, source=opts.source, extra={"encase": dict(extra["encase"])})
    if record != count:
        raise FormatError(f"the header counts {count:,} hashes but the file holds {record:,}", opts.where)
