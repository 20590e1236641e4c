"""The layout of an EWF (E01, EnCase 1-7 "EWF1") image, read by us beside libewf, for what libewf
does not say:

- **truncated segments**: libewf cannot read any chunk whose table was lost (and a truncated last
  segment also loses the stored hash, so ``--verify-image`` would only say "no stored hash"). The
  layout walks each segment's chain of sections and names the segment, where it ends and the disk
  bytes that are lost.
- **corrupt chunks**: libewf-python returns a chunk whose checksum fails as zeros, silently (the
  binding offers no list of checksum errors). A chunk read back as all zeros is checked here against
  its stored form (Adler-32 of an uncompressed chunk; a compressed chunk must inflate to its size), so
  flipped bytes become a named region even without ``--verify-image``.
- **salvage**: a chunk libewf refuses (its segment's end is lost, so libewf gives up on the whole
  segment) is read here when its table survived.

Format: each segment file is a 13-byte header then 76-byte section descriptors (type, offset of the
next, size); a ``table`` section lists the segment's chunks as 32-bit offsets (bit 31: compressed)
relative to its base; each chunk ends where the next begins, the last where its ``sectors`` section
ends. EWF2 (Ex01) is not parsed: its images get libewf's reading only.
"""

from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass, field
from typing import BinaryIO

HEADER = 13
DESCRIPTOR = 76
TABLE_HEADER = 24
MAX_ENTRIES = 1 << 20  # a table claiming more is corrupt, not read


@dataclass(frozen=True, slots=True)
class _Table:
    seg: int  # index of the segment file
    first_chunk: int
    count: int
    base: int
    entries_at: int
    end: int  # where the last chunk's stored bytes end


@dataclass
class Truncation:
    segment: str  # the segment file's name
    at: int  # its size: where it ends
    detail: str


@dataclass
class EwfLayout:
    names: list[str]
    files: list[BinaryIO]  # our own read-only handles (libewf's are not shared: it seeks them)
    chunk_size: int
    media_size: int
    tables: list[_Table] = field(default_factory=list)
    truncated: list[Truncation] = field(default_factory=list)
    #: a segment cut inside its ``sectors`` section, whose table is lost: (segment, first chunk's
    #: offset, how many whole chunks remain). Read only as uncompressed chunks, each checked by its
    #: own Adler-32, so a compressed chunk there stays lost rather than misread.
    loose: tuple[int, int, int] | None = None
    _entries: dict[int, tuple[int, ...]] = field(default_factory=dict)

    @property
    def chunks_known(self) -> int:
        return self.tables[-1].first_chunk + self.tables[-1].count if self.tables else 0

    def lost_region(self) -> tuple[int, int] | None:
        """The disk bytes no surviving table locates (from the first lost chunk to the end)."""
        start = (self.chunks_known + (self.loose[2] if self.loose else 0)) * self.chunk_size
        return (start, self.media_size - start) if start < self.media_size else None

    def describe(self) -> str:
        parts = [f"segment {t.segment} is truncated at byte {t.at}: {t.detail}" for t in self.truncated]
        if self.loose and self.loose[2]:
            a = self.chunks_known * self.chunk_size
            b = min(self.media_size, a + self.loose[2] * self.chunk_size)
            parts.append(f"disk bytes {a}-{b - 1} are read from it without its table, chunk by chunk")
        lost = self.lost_region()
        if lost is not None:
            parts.append(f"disk bytes {lost[0]}-{lost[0] + lost[1] - 1} cannot be located (read as zeros)")
        else:
            parts.append("every chunk of the disk is still located")
        return "; ".join(parts)

    # --- chunks ---------------------------------------------------------------------------
    def _table_of(self, chunk: int) -> _Table | None:
        lo, hi = 0, len(self.tables)
        while lo < hi:
            mid = (lo + hi) // 2
            t = self.tables[mid]
            if chunk < t.first_chunk:
                hi = mid
            elif chunk >= t.first_chunk + t.count:
                lo = mid + 1
            else:
                return t
        return None

    def _stored(self, chunk: int) -> tuple[bytes, bool] | None:
        """The chunk as stored, and whether it is compressed; None when no table locates it."""
        t = self._table_of(chunk)
        if t is None:
            return self._loose(chunk)
        key = t.entries_at
        if key not in self._entries:
            if len(self._entries) > 64:
                self._entries.clear()
            f = self.files[t.seg]
            f.seek(t.entries_at)
            raw = f.read(4 * t.count)
            if len(raw) < 4 * t.count:
                return None
            self._entries[key] = struct.unpack(f"<{t.count}I", raw)
        entries = self._entries[key]
        i = chunk - t.first_chunk
        start = t.base + (entries[i] & 0x7FFFFFFF)
        end = t.base + (entries[i + 1] & 0x7FFFFFFF) if i + 1 < t.count else t.end
        if end <= start or end - start > self.chunk_size + 4096:
            return None
        f = self.files[t.seg]
        f.seek(start)
        data = f.read(end - start)
        return (data, bool(entries[i] >> 31)) if len(data) == end - start else None

    def _loose(self, chunk: int) -> tuple[bytes, bool] | None:
        if self.loose is None or not 0 <= chunk - self.chunks_known < self.loose[2]:
            return None
        seg, start, _n = self.loose
        f = self.files[seg]
        f.seek(start + (chunk - self.chunks_known) * (self.chunk_size + 4))
        data = f.read(self.chunk_size + 4)
        return (data, False) if len(data) == self.chunk_size + 4 else None

    def _expected(self, chunk: int) -> int:
        return min(self.chunk_size, self.media_size - chunk * self.chunk_size)

    def chunk_ok(self, chunk: int) -> bool:
        """Whether the stored chunk passes its checksum (True when it cannot be checked here)."""
        stored = self._stored(chunk)
        if stored is None:
            return True
        data, compressed = stored
        if compressed:
            try:
                return len(zlib.decompress(data)) == self._expected(chunk)
            except zlib.error:
                return False
        n = self._expected(chunk)
        if len(data) < n + 4:
            return True  # a layout we do not know: libewf's word stands
        return zlib.adler32(data[:n]) == struct.unpack_from("<I", data, n)[0]

    def read_chunk(self, chunk: int) -> bytes | None:
        """The chunk's bytes when it is stored intact, else None."""
        stored = self._stored(chunk)
        if stored is None or not self.chunk_ok(chunk):
            return None
        data, compressed = stored
        n = self._expected(chunk)
        return zlib.decompress(data) if compressed else data[:n]


def parse_ewf(names: list[str], files: list[BinaryIO]) -> EwfLayout | None:
    """The layout of EWF1 segments (in order); None for EWF2 or a layout this parser does not know."""
    layout = EwfLayout(names, files, 0, 0)
    for seg, (name, f) in enumerate(zip(names, files, strict=True)):
        size = os.fstat(f.fileno()).st_size
        f.seek(0)
        head = f.read(HEADER)
        if head[:8] != b"EVF\x09\x0d\x0a\xff\x00":
            return None
        off, sectors, ended = HEADER, None, False
        while True:
            if off + DESCRIPTOR > size:
                layout.truncated.append(
                    Truncation(name, size, f"its next section, at byte {off}, is missing")
                )
                break
            f.seek(off)
            d = f.read(DESCRIPTOR)
            kind = d[:16].rstrip(b"\0")
            nxt, length = struct.unpack_from("<QQ", d, 16)
            if kind in (b"done", b"next"):
                ended = True
                break
            if kind == b"sectors":
                sectors = (off, length)
            if kind in (b"volume", b"disk") and not layout.chunk_size and off + DESCRIPTOR + 24 <= size:
                f.seek(off + DESCRIPTOR)
                _media, _chunks, per_chunk, sector, sectors_n = struct.unpack("<I I I I Q", f.read(24))
                layout.chunk_size, layout.media_size = per_chunk * sector, sectors_n * sector
            if off + length > size or nxt > size:
                if sectors is not None and layout.chunk_size:  # its chunks, if no table covered them
                    s_off, s_len = sectors
                    whole = (min(size, s_off + s_len) - s_off - DESCRIPTOR) // (layout.chunk_size + 4)
                    layout.loose = (seg, s_off + DESCRIPTOR, max(0, whole))
                layout.truncated.append(
                    Truncation(
                        name,
                        size,
                        f"its {kind.decode('ascii', 'replace')} section at byte {off} needs {length} bytes",
                    )
                )
                break
            if kind == b"table" and sectors is not None:
                sectors_for_table = sectors
                sectors = None  # covered by this table
            else:
                sectors_for_table = None
            if kind == b"table":
                f.seek(off + DESCRIPTOR)
                count, _pad, base = struct.unpack("<IIQ", f.read(16))
                if not 0 < count <= MAX_ENTRIES:
                    return None
                end = sectors_for_table[0] + sectors_for_table[1] if sectors_for_table is not None else off
                layout.tables.append(
                    _Table(seg, layout.chunks_known, count, base, off + DESCRIPTOR + TABLE_HEADER, end)
                )
            if nxt <= off:
                return None  # a loop: not a layout we know
            off = nxt
        if not ended and (not layout.truncated or layout.truncated[-1].segment != name):
            layout.truncated.append(Truncation(name, size, "it ends without a next or done section"))
        if layout.truncated:
            break  # the chunks of later segments cannot be numbered without this one's
    return layout if layout.chunk_size > 0 else None
