"""A file inside a disk image, read where it lies by the worker that hashes it.

The scan's main process walks the image (names, metadata, data runs, carving) but does not read
the files' contents: each worker opens the image itself, read-only and by path, and reads its own
files by their metadata address (inode, MFT entry), so reading is spread over the workers as it is
for a folder and no file's bytes cross a pipe. A worker keeps the image it opened last (one, with
its file systems), so the files of one image do not open it again each.

A region the container cannot give reads as zeros (``ImageReader``); the stream says so afterwards
(``damage``), so the record keeps the hashes of what could be read and names the byte range.
"""

from __future__ import annotations

import io
import os
import threading
from dataclasses import dataclass
from typing import Any

from opspoor.errors import DamagedImage, VanishedSource
from opspoor.readonly import open_readonly
from opspoor.sources.disk_containers import (
    ImageReader,
    damage_within,
    data_runs,
    describe_damage,
    open_image,
    tsk,
    tsk_image,
)


@dataclass(frozen=True, slots=True)
class DiskMemberRef:
    kind: str  # container kind (``open_image``)
    image: str  # the image's (first) file on disk
    fs_offset: int  # byte offset of the file system in the disk
    inode: int  # the file's metadata address in that file system
    size: int
    first: int | None  # image byte offset of its first data run, for messages
    mtime_ns: int  # the image file's modification time when it was walked: a changed image is not read


def image_mtime_ns(path: str, where: str) -> int:
    with open_readonly(path, where, follow_symlinks=True) as f:
        return os.fstat(f.fileno()).st_mtime_ns


class _Open:
    def __init__(self, ref: DiskMemberRef, where: str) -> None:
        self.key = (ref.kind, ref.image, ref.mtime_ns)
        if image_mtime_ns(ref.image, where) != ref.mtime_ns:
            raise VanishedSource("the disk image changed since it was walked", where)
        self.reader: ImageReader = open_image(ref.kind, ref.image, where)
        self.img = tsk_image(self.reader)
        self.fs: dict[int, Any] = {}

    def file_system(self, offset: int, where: str) -> Any:
        if offset not in self.fs:
            try:
                self.fs[offset] = tsk().FS_Info(self.img, offset=offset)
            except OSError as exc:
                msg = f"file system at byte offset {offset} cannot be opened: {exc}"
                raise DamagedImage(msg, where) from exc
        return self.fs[offset]

    def close(self) -> None:
        self.fs.clear()
        self.reader.close()


_lock = threading.Lock()  # pytsk3 and the libyal handles are not for two threads at once
_open: _Open | None = None


def open_disk_member(ref: DiskMemberRef, where: str) -> DiskMemberStream:
    """The file as a readable, seekable stream."""
    global _open
    with _lock:
        if _open is None or _open.key != (ref.kind, ref.image, ref.mtime_ns):
            if _open is not None:
                _open.close()
                _open = None
            _open = _Open(ref, where)
        opened = _open
        fs = opened.file_system(ref.fs_offset, where)
        try:
            f = fs.open_meta(inode=ref.inode)
        except OSError as exc:
            raise DamagedImage(f"metadata entry {ref.inode} cannot be opened: {exc}", where) from exc
        if int(f.info.meta.size) != ref.size:
            raise VanishedSource("the file's size in the image changed since it was walked", where)
        runs = data_runs(f, ref.fs_offset, fs.info.block_size)
    return DiskMemberStream(f, ref.size, where, ref.first, opened.reader, runs)


class DiskMemberStream(io.RawIOBase):
    """A file's content in a disk image; a failed read names the image region (``DamagedImage``);
    ``damage`` says which ranges of the disk were read as zeros while it was read."""

    def __init__(
        self,
        f: Any,
        size: int,
        where: str,
        first: int | None,
        reader: ImageReader,
        runs: list[tuple[int, int]],
    ) -> None:
        self.f, self.size, self.pos, self.where, self.first = f, size, 0, where, first
        self.reader, self.runs = reader, runs

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, n: int | None = -1) -> bytes:
        n = self.size - self.pos if n is None or n < 0 else min(n, self.size - self.pos)
        if n <= 0:
            return b""
        try:
            with _lock:
                b = self.f.read_random(self.pos, n)
        except OSError as exc:
            near = f" (file starts at image byte offset {self.first})" if self.first is not None else ""
            raise DamagedImage(f"read failed at file offset {self.pos}{near}: {exc}", self.where) from exc
        self.pos += len(b)
        return bytes(b)

    def readinto(self, buf: Any) -> int:
        b = self.read(len(buf))
        buf[: len(b)] = b
        return len(b)

    def readall(self) -> bytes:
        return self.read(-1)

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self.pos, 2: self.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def tell(self) -> int:
        return self.pos

    @property
    def damage(self) -> DamagedImage | None:
        hurt = damage_within(self.reader.damaged, self.runs)
        return DamagedImage(describe_damage(hurt), self.where) if hurt else None
