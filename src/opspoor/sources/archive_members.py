"""What every archive reader shares: the archive's bytes (``Blob``), unique member names, and
setting a member's content or error."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any, BinaryIO

from opspoor.errors import (
    ArchiveBomb,
    SourceError,
    UnsafeMemberName,
)
from opspoor.media.digests import Digests
from opspoor.sources.evidence import EvidenceItem, UniqueNames, join_member, member_parts, open_readonly
from opspoor.sources.limits import Budget
from opspoor.sources.zipref import ZipMemberRef


@dataclass(slots=True)
class Blob:
    """Where an archive's bytes come from: a file on disk or bytes in memory."""

    fs_path: str | None
    data: bytes | None
    size: int

    def open(self, where: str) -> BinaryIO:
        if self.data is not None:
            return io.BytesIO(self.data)
        assert self.fs_path is not None
        return open_readonly(self.fs_path, where)


class _Counting(io.RawIOBase):
    """Counts the compressed bytes a decompressor has consumed, for stream ratio checks."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.n = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        b = self.raw.read(size)
        self.n += len(b)
        return b

    def readinto(self, buf: Any) -> int:
        b = self.read(len(buf))
        buf[: len(b)] = b
        return len(b)


class _Namer:
    """Evidence paths of one archive's members: sanitised, unique, flagged when the name is unsafe."""

    def __init__(self, archive: EvidenceItem) -> None:
        self.archive = archive
        self.unique = UniqueNames()
        self.count = 0

    def __call__(self, name: str, size: int | None, mtime: float | None = None) -> EvidenceItem:
        self.count += 1
        parts, unsafe = member_parts(name)
        path = self.unique(join_member(self.archive.path, "/".join(parts)))
        item = EvidenceItem(path=path, size=size, depth=self.archive.depth + 1, mtime=mtime)
        if not name:
            item.error = UnsafeMemberName("member has an empty name", path)
        elif "\x00" in name:
            item.error = UnsafeMemberName(f"member name holds a NUL byte: {name!r}", path)
        elif unsafe:
            item.error = UnsafeMemberName(f"member name escapes the archive: {name!r}", path)
        return item

    def check_count(self, limit: int) -> None:
        """Called before naming one more member."""
        if self.count >= limit:
            raise ArchiveBomb(f"more than {limit} members", self.archive.path)


def set_data(
    member: EvidenceItem, data: bytes | Streamed | ZipMemberRef, budget: Budget | None = None
) -> None:
    if isinstance(data, ZipMemberRef):  # large, in a zip on disk: its worker reads it there
        member._data, member.zip_member, member.size = None, data, data.size
        return
    if isinstance(data, Streamed):  # too large to hold: hashed as it streamed past, not decoded
        member._data, member.digests, member.head = None, data.digests, data.head
        member.size = data.digests.size
        if member.error is None and budget is not None:
            member.error = budget.too_large(member.size, member.path)
        return
    member._data = data
    member.size = len(data)


@dataclass(slots=True)
class Streamed:
    digests: Digests
    head: bytes


def _fail(member: EvidenceItem, exc: SourceError) -> None:
    """Record a read failure on a member; the failure replaces a name warning (the path still shows it)."""
    exc.where = member.path
    member.error = exc
    member._data = None
