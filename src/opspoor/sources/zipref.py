"""A large member of a zip that is a file on disk, read where it lies rather than held in memory.

The scan's main process checks such a member as it streams past (CRC, declared size, bombs) but keeps
none of its bytes; the worker that hashes it opens the zip again, read-only, and reads the member as a
seekable stream (``zipfile`` decompresses again from the start on a backward seek), so neither
process ever holds the whole member: a video is decoded from the stream, an image is read into
memory only when it fits the worker's budget. A worker keeps the last zip it opened (one), so the
members of one zip do not parse its central directory again each.
"""

from __future__ import annotations

import contextlib
import io
import lzma
import os
import struct
import threading
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from opspoor.errors import ArchiveError, CorruptArchive, EncryptedContent, VanishedSource
from opspoor.media.sniff import SNIFF_BYTES
from opspoor.readonly import open_readonly

CHUNK = 1 << 20

_ERRORS = (zipfile.BadZipFile, EOFError, zlib.error, lzma.LZMAError, struct.error, ValueError, OSError)


@dataclass(frozen=True, slots=True)
class ZipMemberRef:
    archive: str  # the zip's path on disk
    index: int  # the member's place in the central directory (``ZipFile.infolist()``)
    name: str  # its name as stored (``orig_filename``), checked on opening
    size: int  # declared (and checked) uncompressed size
    mtime_ns: int  # the zip's modification time when it was listed: a changed zip is not read


@contextlib.contextmanager
def zip_faults(where: str) -> Iterator[None]:
    """``zipfile``'s many faults on reading a member, as the typed error that names it."""
    try:
        yield
    except zipfile.BadZipFile as exc:
        raise CorruptArchive(f"{exc} (corrupt data, or a size header that lies)", where) from exc
    except NotImplementedError as exc:
        raise ArchiveError(f"unsupported zip feature: {exc}", where) from exc
    except RuntimeError as exc:  # zipfile's "password required"
        raise EncryptedContent(str(exc), where) from exc
    except (zlib.error, lzma.LZMAError, EOFError, OSError, ValueError, struct.error) as exc:
        raise CorruptArchive(f"{type(exc).__name__}: {exc}", where) from exc


def member_head(zf: zipfile.ZipFile, info: zipfile.ZipInfo, where: str) -> bytes:
    """The first bytes of a member (to tell an archive inside)."""
    with zip_faults(where), zf.open(info) as ext:
        return bytes(ext.read(SNIFF_BYTES))


def read_through(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, archive: str, index: int, where: str
) -> ZipMemberRef:
    """Read a member of the zip on disk ``archive`` through once, keeping nothing (``zipfile`` checks
    its CRC at the end), and return the reference its worker reads it by."""
    got = 0
    with zip_faults(where), zf.open(info) as ext:
        while chunk := ext.read(CHUNK):
            got += len(chunk)
        mtime_ns = os.fstat(zf.fp.fileno()).st_mtime_ns  # type: ignore[union-attr]
    if got != info.file_size:
        raise CorruptArchive(f"holds {got} bytes, declared {info.file_size}", where)
    return ZipMemberRef(archive, index, info.orig_filename, got, mtime_ns)


_lock = threading.Lock()
_open: tuple[str, int, zipfile.ZipFile] | None = None


def _zip_for(ref: ZipMemberRef, where: str) -> zipfile.ZipFile:
    global _open
    with _lock:
        if _open is not None and _open[0] == ref.archive and _open[1] == ref.mtime_ns:
            return _open[2]
        if _open is not None:
            _open[2].close()
            _open = None
        fh = open_readonly(ref.archive, where)
        try:
            if os.fstat(fh.fileno()).st_mtime_ns != ref.mtime_ns:
                raise VanishedSource("the archive changed since it was listed", where)
            zf = zipfile.ZipFile(fh)
        except BaseException:
            fh.close()
            raise
        _open = (ref.archive, ref.mtime_ns, zf)
        return zf


def open_zip_member(ref: ZipMemberRef, where: str) -> BinaryIO:
    """The member as a readable, seekable stream; its faults (bad CRC, truncation) are ``CorruptArchive``."""
    try:
        zf = _zip_for(ref, where)
        infos = zf.infolist()
        info = infos[ref.index] if ref.index < len(infos) else None
        if info is None or info.orig_filename != ref.name or info.file_size != ref.size:
            raise VanishedSource("the archive changed since it was listed", where)
        return _MemberStream(zf.open(info), where)  # type: ignore[return-value]
    except (CorruptArchive, VanishedSource):
        raise
    except _ERRORS as exc:
        raise CorruptArchive(f"{type(exc).__name__}: {exc}", where) from exc


class _MemberStream(io.RawIOBase):
    """A zip member's stream whose read and seek faults name the member (``CorruptArchive``)."""

    def __init__(self, ext: Any, where: str) -> None:
        self.ext, self.where = ext, where

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        try:
            return bytes(self.ext.read(size))
        except _ERRORS as exc:
            raise CorruptArchive(f"{type(exc).__name__}: {exc}", self.where) from exc

    def readinto(self, buf: Any) -> int:
        b = self.read(len(buf))
        buf[: len(b)] = b
        return len(b)

    def seek(self, offset: int, whence: int = 0) -> int:
        try:
            return int(self.ext.seek(offset, whence))
        except _ERRORS as exc:
            raise CorruptArchive(f"{type(exc).__name__}: {exc}", self.where) from exc

    def tell(self) -> int:
        return int(self.ext.tell())

    def close(self) -> None:
        self.ext.close()
        super().close()
