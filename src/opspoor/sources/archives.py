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
import gzip
import lzma
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Generator, Iterator
from typing import IO, BinaryIO, ClassVar

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
)
from opspoor.media.digests import DigestAccumulator
from opspoor.media.sniff import SNIFF_BYTES, sniff
from opspoor.sources.archive_members import Blob, Streamed, _Counting, _fail, _Namer, set_data
from opspoor.sources.evidence import EvidenceItem, join_member
from opspoor.sources.limits import Budget
from opspoor.sources.sevenzip import _sevenzip_members
from opspoor.sources.zipref import ZipMemberRef, member_head, read_through, zip_faults

CHUNK = 1 << 20
_COMPRESSED = ("gzip", "bzip2", "xz")
_TAR_SUFFIX = {"gzip": "tar.gz", "bzip2": "tar.bz2", "xz": "tar.xz"}
# file-name suffixes stripped to name the single member of a .gz/.bz2/.xz (naming only; types come from magic)
_STRIP = {".gz": "", ".gzip": "", ".z": "", ".bz2": "", ".bz": "", ".xz": "", ".lzma": "",
          ".tgz": ".tar", ".tbz2": ".tar", ".tbz": ".tar", ".txz": ".tar"}  # fmt: skip


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
