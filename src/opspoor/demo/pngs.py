"""PNG files written row by row with zlib (no picture held in memory): large, benign (a grey or
RGB gradient), or with fewer rows of data than their header promises. For tests and benchmarks."""

from __future__ import annotations

import struct
import zlib


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def png_bytes(width: int, height: int, *, rows: int | None = None, color: int = 2) -> bytes:
    """An 8-bit PNG (colour type 2 RGB, 0 grey) of a horizontal gradient; with ``rows``, the image
    data (a complete zlib stream) holds only that many rows."""
    channels = {0: 1, 2: 3}[color]
    row = b"\x00" + bytes((x * 255 // max(1, width - 1)) for x in range(width) for _ in range(channels))
    z = zlib.compressobj(6)
    parts = [z.compress(row) for _ in range(height if rows is None else rows)]
    data = b"".join(parts) + z.flush()
    head = struct.pack(">IIBBBBB", width, height, 8, color, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", head) + _chunk(b"IDAT", data) + _chunk(b"IEND", b"")
