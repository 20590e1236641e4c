"""Archive members as evidence: zip, tar (plain, gz, bz2, xz), 7z and single-file gz/bz2/xz, nested.

Members are read into memory from the archive stream, within ``Limits``, and never written to disk;
a large member of a zip on disk is only checked here and read by its worker from the zip (zipref).
``expand`` yields an archive's members (recursing into those that are archives) and then the archive
itself: only after its members have been read is it known whether the archive is intact, so the
archive's own record comes last and carries the structural error, if any. A consumer that finished an
archive's record has therefore finished all of its members.

Bytes read: a nested archive is opened from the member bytes already read for its own record. An
archive that is a plain file on disk is read by the consumer (to hash it) and once more here (to list
its members); gz/bz2/xz and tar.* streams read their first kilobytes twice (a tar inside?).
"""

from __future__ import annotations

import bz2
import calendar
import contextlib
import gzip
import io
import lzma
import queue
import struct
import tarfile
import threading
import zipfile
import zlib
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import IO, Any, BinaryIO, ClassVar

from opspoor.errors import (
    ArchiveBomb,
    ArchiveError,
    CorruptArchive,
    DepthLimit,
    EncryptedContent,
    OpspoorError,
    SourceError,
    SymlinkNotFollowed,
    UnreadableSource,
    UnsafeMemberName,
)
from opspoor.media.digests import DigestAccumulator, Digests
from opspoor.media.sniff import SNIFF_BYTES, sniff
from opspoor.sources.evidence import EvidenceItem, UniqueNames, join_member, member_parts, open_readonly
from opspoor.sources.limits import Budget
from opspoor.sources.zipref import ZipMemberRef, member_head, read_through, zip_faults

CHUNK = 1 << 20
_COMPRESSED = ("gzip", "bzip2", "xz")
_TAR_SUFFIX = {"gzip": "tar.gz", "bzip2": "tar.bz2", "xz": "tar.xz"}
# file-name suffixes stripped to name the single member of a .gz/.bz2/.xz (naming only; types come from magic)
_STRIP = {".gz": "", ".gzip": "", ".z": "", ".bz2": "", ".bz": "", ".xz": "", ".lzma": "",
          ".tgz": ".tar", ".tbz2": ".tar", ".tbz": ".tar", ".txz": ".tar"}  # fmt: skip
_7Z_AES = b"\x06\xf1\x07\x01"


def archive_kind(head: bytes) -> str | None:
    """The container type of bytes that start with ``head``, or None. Checks a little more than
    ``sniff`` for the two-byte gzip and three-byte bzip2 magics, so stray bytes are not taken for them."""
    s = sniff(head)
    if s.kind != "archive":
        return None
    if s.type == "gzip" and not (len(head) >= 4 and head[2] == 8 and head[3] & 0xE0 == 0):
        return None
    if s.type == "bzip2" and not (len(head) >= 10 and head[3:4].isdigit() and head[4:10] in (
            b"\x31\x41\x59\x26\x53\x59", b"\x17\x72\x45\x38\x50\x90")):  # fmt: skip
        return None
    return s.type


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


def expand(item: EvidenceItem, kind: str, blob: Blob, budget: Budget) -> Iterator[EvidenceItem]:
    """Yield the members of the archive ``item`` (recursively), then ``item`` with container and error set."""
    item.container = kind
    if item.depth + 1 > budget.limits.max_depth:
        limit = budget.limits.max_depth
        item.error = DepthLimit(f"nested deeper than {limit} archives; not opened", item.path)
        yield item
        return
    names = _Namer(item)
    try:
        if kind == "zip":
            members = _zip_members(item, blob, budget, names)
        elif kind == "tar":
            members = _tar_members(item, blob, budget, names)
        elif kind == "7z":
            members = _sevenzip_members(item, blob, budget, names)
        else:
            members = _compressed_members(item, kind, blob, budget, names)
        for member in members:
            yield from descend(member, budget)
    except OpspoorError as exc:
        item.error = exc if isinstance(exc, SourceError) else CorruptArchive(exc.message, item.path)
    except Exception as exc:  # archive libraries raise many types on hostile input; all are the input's fault
        item.error = CorruptArchive(f"{type(exc).__name__}: {exc}", item.path)
    yield item


#: opens a member that is a disk image (an .E01, .raw, .vmdk … in a zip): set by
#: ``sources.registry``, since disk images are a kind above archives (``sources.disk.open_nested``);
#: it returns None for a member that is not a disk image
nested_opener: Callable[[EvidenceItem, Budget], Iterator[EvidenceItem] | None] | None = None


def descend(member: EvidenceItem, budget: Budget) -> Iterator[EvidenceItem]:
    """Yield a member, expanding it first when its bytes are an archive (even under an unsafe name)
    or a disk image."""
    data = member._data
    kind = archive_kind(data[:SNIFF_BYTES]) if data is not None else None
    if kind is None and nested_opener is not None and member.has_content:
        inside = nested_opener(member, budget)
        if inside is not None:
            yield from inside
            return
    if kind is None or data is None:
        yield member
        return
    budget.held.append(len(data))
    try:
        yield from expand(member, kind, Blob(None, data, len(data)), budget)
    finally:
        budget.held.pop()


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


# --- zip -------------------------------------------------------------------------
def _zip_members(item: EvidenceItem, blob: Blob, budget: Budget, names: _Namer) -> Iterator[EvidenceItem]:
    lim = budget.limits
    with blob.open(item.path) as f:
        declared = _zip_declared_entries(f)
        if declared is not None and declared > lim.max_members:
            raise ArchiveBomb(f"declares {declared} members, more than {lim.max_members}", item.path)
        try:
            zf = zipfile.ZipFile(f)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, struct.error) as exc:
            salvaged = yield from _zip_salvage(item, f, budget, names)
            raise CorruptArchive(
                f"no readable central directory ({exc}); {salvaged} members salvaged from local headers",
                item.path,
            ) from exc
        with zf:
            infos = [(k, i) for k, i in enumerate(zf.infolist()) if not zip_is_dir(i)]
            if len(infos) > lim.max_members:
                raise ArchiveBomb(f"{len(infos)} members, more than {lim.max_members}", item.path)
            # per member by declared sizes; per archive over what was actually read (many small members
            # that each stay under ``ratio_min_bytes``), so one bomb member does not hide the others
            bomb: ArchiveBomb | None = None
            read_u = read_c = 0
            for index, info in infos:
                # orig_filename keeps a NUL and what follows it (zipfile cuts ``filename`` there)
                member = names(info.orig_filename, info.file_size, _zip_mtime(info.date_time))
                if bomb is not None:
                    _fail(member, ArchiveBomb(f"not read: {bomb.message}"))
                    yield member
                    continue
                try:
                    on_disk = (blob.fs_path, index) if blob.fs_path is not None else None
                    set_data(member, _read_zip_member(zf, info, member.path, budget, on_disk), budget)
                except ArchiveError as exc:
                    _fail(member, exc)
                else:
                    read_u, read_c = read_u + info.file_size, read_c + info.compress_size
                    try:
                        budget.check_ratio(read_u, read_c, item.path, "archive")
                    except ArchiveBomb as exc:
                        bomb = exc
                yield member
            if bomb is not None:
                raise bomb


def zip_is_dir(info: zipfile.ZipInfo) -> bool:
    """``ZipInfo.is_dir`` without its IndexError on a member with an empty name."""
    return info.filename.endswith("/")


def _zip_declared_entries(f: BinaryIO) -> int | None:
    """Entry count from the end-of-central-directory record, before zipfile parses every entry."""
    try:
        # zipfile's own EOCD reader (handles zip64); private but unchanged for many Python versions
        rec = zipfile._EndRecData(f)  # type: ignore[attr-defined]
    except (OSError, struct.error, AttributeError):
        return None
    finally:
        f.seek(0)
    return int(rec[4]) if rec else None


def _zip_mtime(date_time: tuple[int, ...]) -> float | None:
    try:
        return float(calendar.timegm((*date_time, 0, 0, 0)))
    except (ValueError, OverflowError, TypeError):
        return None


def _read_zip_member(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, where: str, budget: Budget, on_disk: tuple[str, int] | None
) -> bytes | Streamed | ZipMemberRef:
    """A member's bytes; or, for a large member of a zip on disk (``on_disk``: path, member index) that
    is no archive, a reference its worker reads it by (checked here as it streams past, not kept)."""
    if info.flag_bits & 0x41 or info.compress_type == 99:  # traditional / strong encryption, WinZip AES
        raise EncryptedContent("encrypted member", where)
    budget.check_declared(info.file_size, where)
    budget.check_ratio(info.file_size, info.compress_size, where)
    large = budget.limits.stream_above < info.file_size <= budget.member_cap()
    if on_disk is not None and large and archive_kind(member_head(zf, info, where)) is None:
        ref = read_through(zf, info, *on_disk, where)
        budget.add_uncompressed(ref.size, where)
        return ref
    # zipfile never returns more than the declared file_size; above the room it is hashed as it streams
    with zip_faults(where), zf.open(info) as ext:
        data = read_member(ext, info.file_size, where, budget, None, counted=False)
    size = data.digests.size if isinstance(data, Streamed) else len(data)
    budget.add_uncompressed(size, where)
    if size != info.file_size:
        raise CorruptArchive(f"holds {size} bytes, declared {info.file_size}", where)
    return data


_LOCAL = struct.Struct("<4sHHHHHIIIHH")


def _zip_salvage(
    item: EvidenceItem, f: BinaryIO, budget: Budget, names: _Namer
) -> Generator[EvidenceItem, None, int]:
    """Walk local file headers from the start, for zips whose central directory is lost (truncated
    downloads, carved files). Stored and deflated members with known sizes are recovered; returns how
    many members were recovered intact."""
    off, recovered = 0, 0
    while True:
        f.seek(off)
        hdr = f.read(_LOCAL.size)
        if len(hdr) < _LOCAL.size or hdr[:4] != b"PK\x03\x04":
            return recovered
        _, _, flags, method, _, _, crc, csize, usize, nlen, elen = _LOCAL.unpack(hdr)
        raw_name = f.read(nlen)
        name = raw_name.decode("utf-8" if flags & 0x800 else "cp437", "replace")
        data_off = off + _LOCAL.size + nlen + elen
        if name.endswith("/"):
            off = data_off + csize
            continue
        names.check_count(budget.limits.max_members)
        member = names(name, usize if not flags & 0x08 else None)
        try:
            if flags & 0x41 or method == 99:
                raise EncryptedContent("encrypted member")
            if flags & 0x08 or 0xFFFFFFFF in (csize, usize):
                raise CorruptArchive("sizes are only in the lost central directory; not salvaged")
            budget.check_declared(usize, member.path)
            budget.check_in_memory(usize, member.path)  # (read whole: the local header is all there is)
            budget.check_ratio(usize, csize, member.path)
            if csize > usize + 1024:  # stored and deflate never grow data by more
                raise CorruptArchive(f"compressed size {csize} does not fit its {usize} bytes")
            f.seek(data_off)
            raw = f.read(csize)
            if len(raw) < csize:
                raise CorruptArchive(f"truncated: {len(raw)} of {csize} compressed bytes present")
            set_data(member, _inflate_salvaged(raw, method, usize, crc, member.path, budget))
            recovered += 1
        except ArchiveError as exc:
            _fail(member, exc)
            if member.size is None or (flags & 0x08):
                yield member
                return recovered
        yield member
        off = data_off + csize


def _inflate_salvaged(raw: bytes, method: int, usize: int, crc: int, where: str, budget: Budget) -> bytes:
    if method == 0:
        data = raw
    elif method == 8:
        d = zlib.decompressobj(-15)
        try:
            data = d.decompress(raw, usize + 1)
        except zlib.error as exc:
            raise CorruptArchive(f"deflate data: {exc}", where) from exc
    else:
        raise ArchiveError(f"compression method {method} is not salvaged without a central directory", where)
    budget.add_uncompressed(len(data), where)
    if len(data) > usize:
        raise ArchiveBomb(f"holds more than its declared {usize} bytes", where)
    if len(data) < usize:
        raise CorruptArchive(f"holds {len(data)} bytes, declared {usize}", where)
    if zlib.crc32(data) != crc:
        raise CorruptArchive("bad CRC-32", where)
    return data


# --- tar (plain or compressed, streamed) -------------------------------------
def _watched_tarinfo() -> type[tarfile.TarInfo]:
    """A TarInfo class that remembers a bad header, which tarfile otherwise takes silently for the end."""

    class Watched(tarfile.TarInfo):
        fault: ClassVar[Exception | None] = None

        @classmethod
        def frombuf(cls, buf: bytes, encoding: str, errors: str) -> tarfile.TarInfo:  # type: ignore[override]
            try:
                info = super().frombuf(buf, encoding, errors)  # type: ignore[misc]
                if info.type in _EXTENDED and info.size > _MAX_EXTENDED_HEADER:
                    # tarfile would read the whole extended header into memory
                    raise _INVALID_HEADER(f"extended header of {info.size} bytes")
                return info  # type: ignore[no-any-return]
            except _CLEAN_END:
                raise  # a proper end (zero blocks), or the data simply ends after a member
            except tarfile.HeaderError as exc:
                cls.fault = exc
                raise

    return Watched


_CLEAN_END = (getattr(tarfile, "EOFHeaderError"), getattr(tarfile, "EmptyHeaderError"))  # noqa: B009
_INVALID_HEADER = getattr(tarfile, "InvalidHeaderError")  # noqa: B009
_EXTENDED = (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE, tarfile.GNUTYPE_LONGNAME,
             tarfile.GNUTYPE_LONGLINK)  # fmt: skip
_MAX_EXTENDED_HEADER = 1 << 20
_TAR_ERRORS = (tarfile.TarError, EOFError, OSError, zlib.error, lzma.LZMAError, ValueError)


def _tar_members(item: EvidenceItem, blob: Blob, budget: Budget, names: _Namer) -> Iterator[EvidenceItem]:
    """Stream a tar (any compression) with ``r|*``: one pass, no seeking, members read in order.
    A bomb or a fault stops the whole archive, since the stream cannot skip past it without
    decompressing it."""
    lim = budget.limits
    with blob.open(item.path) as raw:
        counted = _Counting(raw)
        watched = _watched_tarinfo()
        try:
            tf = tarfile.open(fileobj=counted, mode="r|*", tarinfo=watched)  # type: ignore[call-overload]  # noqa: SIM115
        except _TAR_ERRORS as exc:
            raise CorruptArchive(f"not a readable tar: {exc}", item.path) from exc

        def stream_pos() -> tuple[int, int]:
            return int(getattr(tf.fileobj, "pos", 0)), counted.n

        with tf:
            while True:
                try:
                    info = tf.next()
                except _TAR_ERRORS as exc:
                    raise CorruptArchive(f"unreadable after {names.count} members: {exc}", item.path) from exc
                if info is None:
                    break
                if info.isdir():
                    continue
                names.check_count(lim.max_members)
                member = names(info.name, info.size if info.isreg() else None, float(info.mtime))
                if not info.isreg():
                    _tar_special(member, info)
                    yield member
                    continue
                try:
                    budget.check_declared(info.size, member.path)
                    stream = tf.extractfile(info)
                    data = read_member(stream, info.size, member.path, budget, stream_pos)
                    set_data(member, data, budget)
                except ArchiveError as exc:
                    _fail(member, exc)
                    yield member
                    raise type(exc)(f"stopped at {member.path}: {exc.message}", item.path) from exc
                except _TAR_ERRORS as exc:
                    _fail(member, CorruptArchive(f"{type(exc).__name__}: {exc}"))
                    yield member
                    raise CorruptArchive(f"truncated or corrupt at {member.path}", item.path) from exc
                yield member
        if watched.fault is not None:  # type: ignore[attr-defined]
            raise CorruptArchive(f"bad header after {names.count} members: {watched.fault}", item.path)  # type: ignore[attr-defined]


def _tar_special(member: EvidenceItem, info: tarfile.TarInfo) -> None:
    if info.issym() or info.islnk():
        kind = "symlink" if info.issym() else "hard link"
        member.error = SymlinkNotFollowed(f"{kind} member to {info.linkname!r}; not followed", member.path)
    else:
        member.error = UnreadableSource("special member (device or fifo); no content", member.path)


def read_member(
    stream: IO[bytes] | None,
    declared: int | None,
    where: str,
    budget: Budget,
    stream_pos: Callable[[], tuple[int, int]] | None,
    counted: bool = True,
) -> bytes | Streamed:
    """Read a member in chunks, stopping at the archive total or the stream ratio. A member larger
    than the in-memory room is not held: from there on its chunks only feed the digests (any size,
    constant memory), and it comes back as ``Streamed``. ``counted``: add to the archive total here."""
    if stream is None:
        raise CorruptArchive("member has no data", where)
    cap = budget.member_cap()
    chunks: list[bytes] = []
    # declared too large: digests from the first byte (nothing held)
    acc: DigestAccumulator | None = DigestAccumulator() if declared is not None and declared > cap else None
    head = b""
    got = 0
    # a member that fits is read in one piece (one buffer, no join); others in chunks
    want = declared + 1 if acc is None and declared is not None else CHUNK
    while True:
        chunk = stream.read(want)
        want = CHUNK
        if not chunk:
            break
        got += len(chunk)
        if counted:
            budget.add_uncompressed(len(chunk), where)
        if declared is not None and got > declared:
            raise ArchiveBomb(f"holds more than its declared {declared} bytes", where)
        if stream_pos is not None:
            budget.check_ratio(*stream_pos(), where, "stream")
        if acc is None and got > cap:
            acc = DigestAccumulator()
            for held in chunks:
                acc.update(held)
            head = chunks[0][:SNIFF_BYTES] if chunks else b""
            chunks.clear()
        if acc is not None:
            acc.update(chunk)
            if len(head) < SNIFF_BYTES:
                head += chunk[: SNIFF_BYTES - len(head)]
        else:
            chunks.append(chunk)
    if declared is not None and got < declared:
        raise CorruptArchive(f"truncated: {got} of {declared} bytes", where)
    if acc is not None:
        return Streamed(acc.result(), head)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


# --- single-file gz / bz2 / xz ---------------------------------------------------
def _decompressor(kind: str, raw: BinaryIO) -> BinaryIO:
    if kind == "gzip":
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    if kind == "bzip2":
        return bz2.BZ2File(raw)  # type: ignore[return-value]
    return lzma.LZMAFile(raw)  # type: ignore[return-value]


def _compressed_members(
    item: EvidenceItem, kind: str, blob: Blob, budget: Budget, names: _Namer
) -> Iterator[EvidenceItem]:
    """A gz/bz2/xz holds a tar (then it is read as one tar.* container) or one member. A member that
    cannot be decompressed whole is not produced: the compressed file's own record carries the error."""
    try:
        with blob.open(item.path) as raw, _decompressor(kind, raw) as d:
            head = d.read(SNIFF_BYTES)
    except _TAR_ERRORS:
        head = b""
    if sniff(head).type == "tar":
        item.container = _TAR_SUFFIX[kind]
        yield from _tar_members(item, blob, budget, names)
        return
    with blob.open(item.path) as raw:
        counted = _Counting(raw)
        where = join_member(item.path, _stripped_name(item.path))
        try:
            with _decompressor(kind, counted) as d:  # type: ignore[arg-type]
                data = read_member(d, None, where, budget, lambda: (d.tell(), counted.n))
        except (EOFError, OSError, zlib.error, lzma.LZMAError, ValueError) as exc:
            raise CorruptArchive(f"{kind} stream: {type(exc).__name__}: {exc}", item.path) from exc
        except ArchiveError as exc:
            raise type(exc)(f"{exc.message} (in {where})", item.path) from exc
    member = names(_stripped_name(item.path), None)
    set_data(member, data, budget)
    yield member


def _stripped_name(path: str) -> str:
    base = path.rsplit("/", 1)[-1]
    low = base.lower()
    for suffix, repl in _STRIP.items():
        if low.endswith(suffix) and len(base) > len(suffix):
            return base[: -len(suffix)] + repl
    return "data"


# --- 7z ---------------------------------------------------------------------------
def _sevenzip_members(
    item: EvidenceItem, blob: Blob, budget: Budget, names: _Namer
) -> Iterator[EvidenceItem]:
    """7z members are decompressed by py7zr in a producer thread (solid blocks must be decompressed in
    order, in one pass) and handed over one at a time, so at most a couple of members are in memory."""
    import py7zr  # imported here: only scans that meet a 7z pay for it
    from py7zr.exceptions import PasswordRequired

    lim = budget.limits
    with blob.open(item.path) as f:
        try:
            sz = py7zr.SevenZipFile(f, "r")
        except PasswordRequired as exc:
            raise EncryptedContent("archive headers are encrypted", item.path) from exc
        except Exception as exc:  # py7zr raises many types on hostile input
            raise CorruptArchive(f"not a readable 7z: {type(exc).__name__}: {exc}", item.path) from exc
        with sz:
            files = [fi for fi in sz.files if not fi.is_directory]
            if len(files) > lim.max_members:
                raise ArchiveBomb(f"{len(files)} members, more than {lim.max_members}", item.path)
            bombs = _sevenzip_folder_bombs(files, budget, item.path)
            planned: dict[int, EvidenceItem] = {}
            running = budget.uncompressed
            for fi in files:
                member = names(fi.filename, fi.uncompressed, _7z_mtime(fi))
                try:
                    if id(fi.folder) in bombs:
                        raise ArchiveBomb(f"not read: {bombs[id(fi.folder)]}")
                    if fi.is_symlink or fi.is_junction:
                        raise SymlinkNotFollowed("symlink member; not followed")
                    if fi.is_socket:
                        raise UnreadableSource("special member (socket); no content")
                    if fi.emptystream:
                        set_data(member, b"")
                    elif fi.folder is not None and any(c.get("method") == _7Z_AES for c in fi.folder.coders):
                        raise EncryptedContent("encrypted member")
                    else:
                        budget.check_declared(fi.uncompressed, member.path)
                        running += fi.uncompressed
                        if running > lim.max_total_uncompressed:
                            raise ArchiveBomb(f"archive total uncompressed size would exceed "
                                              f"{lim.max_total_uncompressed} bytes")  # fmt: skip
                        planned[fi.id] = member
                        continue
                except (ArchiveError, SymlinkNotFollowed, UnreadableSource) as exc:
                    _fail(member, exc)
                yield member
            if planned:
                yield from _sevenzip_extract(sz, planned, item, budget)
            if bombs:
                raise ArchiveBomb(next(iter(bombs.values())), item.path)


def _sevenzip_folder_bombs(files: list[Any], budget: Budget, where: str) -> dict[int, str]:
    """Ratio per 7z folder (a solid block, or one file when not solid), from the header's sizes:
    a solid block can only be decompressed whole, so a bomb block refuses all its members."""
    sizes: dict[int, list[int]] = {}
    for fi in files:
        if fi.folder is not None:
            s = sizes.setdefault(id(fi.folder), [0, 0])
            s[0] += fi.uncompressed
            s[1] += fi.compressed or 0  # py7zr gives the block's packed size on its first file
    bombs = {}
    for key, (unpacked, packed) in sizes.items():
        try:
            budget.check_ratio(unpacked, packed, where, "block")
        except ArchiveBomb as exc:
            bombs[key] = exc.message
    return bombs


def _7z_mtime(fi: Any) -> float | None:
    try:
        ts = fi.lastwritetime
        return float(ts.totimestamp()) if ts is not None else None
    except Exception:  # a malformed timestamp is not worth an error record
        return None


class _Cancelled(Exception):
    pass


class _SevenZipRun:
    """The producer side: a py7zr writer factory and progress queue that hands out each member once
    py7zr has checked its CRC (py7zr reports ``("e", name, size)`` after the check)."""

    def __init__(
        self, caps: dict[int, int], out: queue.Queue[tuple[Any, ...]], cancel: threading.Event, room: int
    ):
        self.caps = caps
        self.room = room  # a member larger than this is hashed as it streams, not held
        self.out = out
        self.cancel = cancel
        self.current: _SevenZipSink | None = None
        self.pending: _SevenZipSink | None = None

    # WriterFactory
    def create(self, filename: str) -> _SevenZipSink:
        self.current = _SevenZipSink(self, int(filename))
        return self.current

    # the reporter queue py7zr writes progress to
    def put(self, msg: tuple[Any, ...]) -> None:
        if msg and msg[0] == "e" and self.pending is not None:
            sink, self.pending = self.pending, None
            self.emit(("ok", sink.key, sink.content()))

    def closed(self, sink: _SevenZipSink) -> None:
        self.current, self.pending = None, sink

    def emit(self, msg: tuple[Any, ...]) -> None:
        while not self.cancel.is_set():
            try:
                self.out.put(msg, timeout=0.1)
                return
            except queue.Full:
                continue
        raise _Cancelled

    def run(self, worker: Any, fp: Any) -> None:
        try:
            worker.extract(fp, None, parallel=False, q=self)
            if self.pending is not None:  # py7zr reports no end for the last member of some layouts
                self.put(("e",))
            self.emit(("done",))
        except _Cancelled:
            pass
        except BaseException as exc:  # handed to the consumer, which records it
            failing = self.current or self.pending
            with contextlib.suppress(_Cancelled):
                self.emit(("fail", failing.key if failing else None, exc))


class _SevenZipSink:
    """One member's bytes, collected in memory; refuses more than the member declared."""

    def __init__(self, run: _SevenZipRun, key: int) -> None:
        self.run, self.key = run, key
        self.chunks: list[bytes] = []
        self.n = 0
        self.acc = DigestAccumulator() if run.caps[key] > run.room else None
        self.head = b""

    def write(self, s: bytes | bytearray) -> int:
        if self.run.cancel.is_set():
            raise _Cancelled
        self.n += len(s)
        if self.n > self.run.caps[self.key]:
            raise ArchiveBomb(f"holds more than its declared {self.run.caps[self.key]} bytes")
        if self.acc is not None:
            if len(self.head) < SNIFF_BYTES:
                self.head += bytes(s[: SNIFF_BYTES - len(self.head)])
            self.acc.update(memoryview(s))
        else:
            self.chunks.append(bytes(s))
        return len(s)

    def content(self) -> bytes | Streamed:
        return Streamed(self.acc.result(), self.head) if self.acc is not None else b"".join(self.chunks)

    def read(self, size: int | None = None) -> bytes:
        return b""

    def seek(self, offset: int, whence: int = 0) -> int:
        return 0

    def flush(self) -> None:
        pass

    def size(self) -> int:
        return self.n

    def close(self) -> None:
        self.run.closed(self)


def _sevenzip_error(exc: BaseException) -> ArchiveError:
    name = type(exc).__name__
    if isinstance(exc, ArchiveError):
        return exc
    if name == "PasswordRequired":
        return EncryptedContent("encrypted member")
    if name == "DecompressionBombError":
        return ArchiveBomb(str(exc))
    if name == "UnsupportedCompressionMethodError":
        return ArchiveError(f"unsupported compression method: {exc}")
    if name == "CrcError":
        return CorruptArchive("bad CRC")
    return CorruptArchive(f"{name}: {exc}")


def _sevenzip_extract(
    sz: Any, planned: dict[int, EvidenceItem], item: EvidenceItem, budget: Budget
) -> Iterator[EvidenceItem]:
    from py7zr.io import MemIO

    out: queue.Queue[tuple[Any, ...]] = queue.Queue(maxsize=1)
    cancel = threading.Event()
    run = _SevenZipRun({k: m.size or 0 for k, m in planned.items()}, out, cancel, budget.member_cap())
    worker = sz.worker
    worker.max_extract_size = budget.limits.max_total_uncompressed - budget.uncompressed
    for fid in planned:
        worker.register_filelike(fid, MemIO(str(fid), run))  # type: ignore[arg-type]
    thread = threading.Thread(target=run.run, args=(worker, sz.fp), name="opspoor-7z", daemon=True)
    thread.start()
    failure: ArchiveError | None = None
    try:
        while planned:
            msg = out.get()
            if msg[0] == "done":
                break
            if msg[0] == "ok":
                member = planned.pop(msg[1])
                try:
                    size = msg[2].digests.size if isinstance(msg[2], Streamed) else len(msg[2])
                    budget.add_uncompressed(size, member.path)
                    set_data(member, msg[2], budget)
                except ArchiveError as exc:
                    _fail(member, exc)
                    failure = exc
                yield member
                if failure is not None:
                    break
            else:
                failure = _sevenzip_error(msg[2])
                if msg[1] in planned:
                    member = planned.pop(msg[1])
                    _fail(member, _sevenzip_error(msg[2]))
                    yield member
                break
        for member in planned.values():
            _fail(member, CorruptArchive("not read: extraction of the archive stopped before it"))
            yield member
    finally:
        cancel.set()
        thread.join(timeout=5)
    if failure is not None:
        raise type(failure)(f"extraction stopped: {failure.message}", item.path)
