"""Carving: JPEG, PNG, GIF, MP4/MOV and ZIP found by header in unallocated space, ended by their own
structure (or footer), within size limits. Like PhotoRec and IPED, a header counts only where a file
system could have started a file: at a sector boundary (512 bytes). A file is assumed contiguous
from its header, which is how most small files lie on a disk.

The search looks only at the first 8 bytes of each sector (NumPy, over 16 MiB chunks); only a hit is
parsed.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

SECTOR = 512
CHUNK = 16 << 20


@dataclass(frozen=True)
class Signature:
    ext: str
    magic: bytes
    at: int  # where the magic sits from the file's start (MP4's ``ftyp`` is 4 bytes in)
    min_size: int
    max_size: int


SIGNATURES = (
    Signature("jpg", b"\xff\xd8\xff", 0, 256, 20 << 20),
    Signature("png", b"\x89PNG\r\n\x1a\n", 0, 64, 20 << 20),
    Signature("gif", b"GIF8", 0, 64, 10 << 20),
    Signature("mp4", b"ftyp", 4, 1024, 1 << 30),
    Signature("zip", b"PK\x03\x04", 0, 64, 1 << 30),
)


@dataclass(frozen=True)
class Carved:
    offset: int  # byte offset in the image (the PhysicalLocation)
    length: int
    ext: str


Read = Callable[[int, int], bytes]


def find_headers(read: Read, start: int, end: int) -> Iterator[tuple[int, Signature]]:
    """Sector-aligned header hits in ``[start, end)``, in offset order. Only the first 8 bytes of each
    sector can start a file, so they are compared as two big-endian words per sector (NumPy), not
    searched byte by byte."""
    pos = start - start % SECTOR
    while pos < end:
        n = min(CHUNK, end - pos)
        buf = read(pos, n)
        if not buf:
            return
        whole = len(buf) - len(buf) % SECTOR
        sectors = np.frombuffer(buf, dtype=np.uint8, count=whole).reshape(-1, SECTOR)
        w0 = np.ascontiguousarray(sectors[:, :4]).view(">u4").ravel()
        w1 = np.ascontiguousarray(sectors[:, 4:8]).view(">u4").ravel()
        masks = {sig: _match(sig, w0, w1) for sig in SIGNATURES}
        hit_any = np.logical_or.reduce(list(masks.values()))
        for i in np.flatnonzero(hit_any):
            off = pos + int(i) * SECTOR
            if start <= off < end:
                yield off, next(sig for sig, m in masks.items() if m[i])
        pos += n


def _match(sig: Signature, w0: np.ndarray, w1: np.ndarray) -> np.ndarray:
    magic = sig.magic + bytes(8)
    if sig.at == 4:  # MP4: ``ftyp`` is the second word
        return w1 == int.from_bytes(magic[:4], "big")
    if len(sig.magic) == 3:  # JPEG: three bytes, any fourth
        return (w0 >> 8) == int.from_bytes(magic[:3], "big")
    hit = w0 == int.from_bytes(magic[:4], "big")
    if len(sig.magic) > 4:  # PNG: eight bytes
        hit &= w1 == int.from_bytes(magic[4:8], "big")
    return hit


def carve(read: Read, start: int, end: int, cap: int, taken: set[int]) -> Iterator[Carved]:
    """Carved files whose header lies in ``[start, end)``. ``cap``: the largest length read (the
    in-memory room); ``taken``: offsets already accounted for (a recovered deleted file's first byte)."""
    busy_until = start
    for off, sig in find_headers(read, start, end):
        if off < busy_until or off in taken:
            continue
        length = file_length(read, off, sig, min(sig.max_size, cap))
        if length is not None and length >= sig.min_size:
            busy_until = off + length
            yield Carved(off, length, sig.ext)


MORE = -1  # a parser ran out of bytes: read a larger window


def file_length(read: Read, off: int, sig: Signature, limit: int) -> int | None:
    """The length of the file at ``off`` by its structure, or None when it is not one / too large.
    Reads a small window first and a larger one only while the structure goes on."""
    if sig.ext == "mp4":
        return _mp4_length(read, off, limit)
    parse = {"jpg": _jpeg_length, "png": _png_length, "gif": _gif_length, "zip": _zip_length}[sig.ext]
    window = min(256 << 10, limit)
    while True:
        data = read(off, window)
        n = parse(data)
        if n != MORE:
            return n if n is not None and n <= limit else None
        if window >= limit or len(data) < window:
            return None
        window = min(limit, window * 4)


def _jpeg_length(d: bytes) -> int | None:
    if len(d) < 4 or d[3] not in (0xDB, 0xE0, 0xE1, 0xE2, 0xEE, 0xFE, 0xC0, 0xC4):
        return None
    i = 2
    while i + 4 <= len(d):  # segments up to the first scan (skips an EXIF thumbnail whole)
        if d[i] != 0xFF:
            return None
        marker = d[i + 1]
        if marker == 0xFF:
            i += 1
            continue
        seglen = struct.unpack(">H", d[i + 2 : i + 4])[0]
        if seglen < 2:
            return None
        i += 2 + seglen
        if marker == 0xDA:
            end = d.find(b"\xff\xd9", i)
            return MORE if end < 0 else end + 2
    return MORE


def _png_length(d: bytes) -> int | None:
    i = 8
    while i + 12 <= len(d):
        n = struct.unpack(">I", d[i : i + 4])[0]
        kind = d[i + 4 : i + 8]
        if not kind.isalpha():
            return None
        i += 12 + n
        if kind == b"IEND":
            return i if i <= len(d) else MORE
    return MORE


def _gif_length(d: bytes) -> int | None:
    if d[:6] not in (b"GIF87a", b"GIF89a") or len(d) < 13:
        return None
    i = 13
    if d[10] & 0x80:  # global colour table
        i += 3 * (2 << (d[10] & 7))
    while i < len(d):
        b = d[i]
        if b == 0x3B:
            return i + 1
        if b == 0x21:  # extension: label, then sub-blocks
            i += 2
        elif b == 0x2C:  # image descriptor, local colour table, LZW size, sub-blocks
            if i + 10 > len(d):
                return MORE
            flags = d[i + 9]
            i += 10 + (3 * (2 << (flags & 7)) if flags & 0x80 else 0) + 1
        else:
            return None
        while i < len(d) and d[i]:
            i += d[i] + 1
        i += 1
    return MORE


_MP4_BOXES = {b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"uuid", b"meta", b"pdin",
              b"moof", b"mfra", b"styp", b"sidx", b"udta", b"pnot"}  # fmt: skip


def _mp4_length(read: Read, off: int, limit: int) -> int | None:
    """Top-level boxes walked by their headers alone (an ``mdat`` is skipped, not read)."""
    i, seen = 0, set()
    while i + 8 <= limit:
        head = read(off + i, 16)
        if len(head) < 8:
            break
        size, kind = struct.unpack(">I4s", head[:8])
        if kind not in _MP4_BOXES:
            break
        if size == 1:
            if len(head) < 16:
                return None
            size = struct.unpack(">Q", head[8:16])[0]
        if size < 8:
            break
        seen.add(kind)
        i += size
    if i > limit or not {b"moov", b"mdat"} <= seen:
        return None
    return i


def _zip_length(d: bytes) -> int | None:
    end = d.find(b"PK\x05\x06")
    if end < 0 or end + 22 > len(d):
        return MORE
    comment = struct.unpack("<H", d[end + 20 : end + 22])[0]
    return end + 22 + comment
