"""Disk images as evidence: partitions, file systems, deleted and orphan files, carved files.

An image (``opspoor.sources.disk_containers``) is read by The Sleuth Kit (``pytsk3``): its volume
system (MBR, GPT; none for a bare file system), each partition's file system (FAT, exFAT, NTFS,
ext2/3/4, HFS+, ISO 9660, as far as TSK reads them). Evidence paths name every step::

    laptop.E01!/p2/Users/x/a.jpg              an allocated file on the second partition
    laptop.E01!/p2/$deleted/Users/x/b.jpg     a deleted entry whose content could be read
    laptop.E01!/p2/$deleted/$OrphanFiles/...  an orphan file (no name left in any directory)
    laptop.E01!/p2/$carved/0x1a2b000.jpg      carved from unallocated space at that image offset
    fat.img!/dir/a.jpg                        a bare file system: no partition step

Files are read by the main process, one at a time, into bytes bounded by the scan's in-memory room
(larger ones are hashed as they stream past, as archive members are) and handed to the pool.
Archives inside the image are opened as anywhere else. The image's own item comes last.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import Any

from opspoor.errors import (
    DamagedImage,
    DeletedContentLost,
    OpspoorError,
    SourceError,
    SymlinkNotFollowed,
    UnreadableSource,
)
from opspoor.media.digests import DigestAccumulator
from opspoor.media.sniff import SNIFF_BYTES, sniff
from opspoor.sources.archives import archive_kind, descend, read_member, set_data
from opspoor.sources.carving import carve
from opspoor.sources.disk_containers import (
    ImageReader,
    container_kind,
    damage_within,
    data_runs,
    describe_damage,
    open_image,
    tsk,
    tsk_image,
    verify_image,
)
from opspoor.sources.diskref import DiskMemberRef, image_mtime_ns
from opspoor.sources.evidence import EvidenceItem, encode_component, join_member, open_readonly
from opspoor.sources.kind import SourceKind, WalkOptions
from opspoor.sources.limits import Budget

DELETED = "$deleted"
CARVED = "$carved"


class DiskImageKind(SourceKind):
    name = "disk image"

    def recognise(self, name: str, head: bytes, tail: Callable[[], bytes]) -> str | None:
        kind = container_kind(name, head, tail() if name.lower().endswith(".vhd") else b"")
        if kind == "raw" and sniff(head).kind in ("image", "video", "archive"):
            return None  # named like a raw image but a picture or an archive: read it as that
        return kind

    def expand(self, item: EvidenceItem, kind: str, opts: WalkOptions) -> Iterator[EvidenceItem]:
        assert item.fs_path is not None
        try:
            reader = open_image(kind, item.fs_path, item.path)
        except SourceError as exc:
            item.container, item.error = f"disk:{kind}", exc
            yield item
            return
        own = _ImageDigests(item.fs_path, item.path)  # the image file's own hashes, while it is walked
        try:
            disk = _Disk(item, kind, reader, opts)
            found = yield from disk.walk()
            item.container = f"disk:{kind}"
            item.extra = {"image": disk.summary()}
            if not found:
                item.error = DamagedImage(
                    "no partition table or file system found; the whole image was carved", item.path
                )
            notes = reader.damage_notes() + ([describe_damage(reader.damaged)] if reader.damaged else [])
            if notes:
                item.error = DamagedImage("; ".join(notes), item.path)
            own.result(item)
        finally:
            own.stop()
            reader.close()
        yield item


#: a disk image inside an archive or inside another image is copied to a temporary file (it must
#: be a file for the container libraries) when it is no larger than this; a larger one is hashed only
NESTED_SPILL_MAX = 16 << 30


def nested_kind(name: str, head: bytes) -> str | None:
    """The container kind of an archive member or a file in an image, by its name and first bytes
    (a fixed VHD, known only by its footer, is not recognised there)."""
    kind = container_kind(name, head)
    if kind == "raw" and sniff(head).kind in ("image", "video", "archive"):
        return None
    return kind


def open_nested(
    member: EvidenceItem,
    budget: Budget,
    opener: Callable[[], Any] | None = None,
    head: bytes | None = None,
) -> Iterator[EvidenceItem] | None:
    """A member that is a disk image (``laptop.zip!/disk.E01``, ``laptop.E01!/p1/vm/disk.raw``):
    its content is copied, in pieces, to an owner-only temporary file (removed once the image is
    walked), which is walked like an image on disk, its files read by the main process (a worker
    could find the copy gone). None when the member is not a disk image."""
    name = member.path.rsplit("/", 1)[-1]
    if head is None:
        try:
            with member.open() as f:
                head = f.read(SNIFF_BYTES)
        except (OSError, SourceError):
            return None
    kind = nested_kind(name, head)
    if kind is None or member.depth + 1 > budget.limits.max_depth or (member.size or 0) > NESTED_SPILL_MAX:
        return None
    return _walk_nested(member, kind, opener or member.open, WalkOptions(budget.limits, nested=True))


def _walk_nested(
    member: EvidenceItem, kind: str, opener: Callable[[], Any], opts: WalkOptions
) -> Iterator[EvidenceItem]:
    import shutil
    import tempfile

    tmp = tempfile.mkdtemp(prefix="opspoor-image-")  # mode 0700: the copy is evidence
    try:
        suffix = "." + member.path.rsplit(".", 1)[-1][:8] if "." in member.path.rsplit("/", 1)[-1] else ".raw"
        spill = os.path.join(tmp, "image" + suffix)  # the suffix keeps .E01, .001, .raw for the libraries
        fd = os.open(spill, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as out, opener() as src:
                while chunk := src.read(4 << 20):
                    out.write(chunk)
        except (OSError, SourceError) as exc:
            if member.error is None:
                member.error = exc if isinstance(exc, SourceError) else DamagedImage(str(exc), member.path)
            yield member
            return
        inner = EvidenceItem(path=member.path, size=os.path.getsize(spill), depth=member.depth,
                             mtime=member.mtime, fs_path=spill, extra=member.extra)  # fmt: skip
        for it in DiskImageKind().expand(inner, kind, opts):
            if it is inner:  # the image's own record: its digests were taken; the copy goes away
                it.fs_path = None
                it.extra = {**(member.extra or {}), **(it.extra or {})}
                if it.digests is None:
                    it._data, it.digests = None, None
                    it.error = it.error or DamagedImage("the copy of the image could not be hashed", it.path)
                if member.error is not None and it.error is None:
                    it.error = member.error
            yield it
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class _ImageDigests(threading.Thread):
    """MD5, SHA-1 and SHA-256 of an image file, taken in a thread while the image is walked (hashlib
    lets other threads run while it hashes), so the image's own record needs no second read of the
    whole file at the end of its walk, when nothing else would run beside it."""

    CHUNK = 4 << 20

    def __init__(self, fs_path: str, where: str) -> None:
        super().__init__(name="opspoor-image-digests", daemon=True)
        self.fs_path, self.where = fs_path, where
        self.acc = DigestAccumulator()
        self.head = b""
        self.failed = False
        self.stopping = threading.Event()
        self.start()

    def run(self) -> None:
        try:
            with open_readonly(self.fs_path, self.where) as f:
                while not self.stopping.is_set() and (chunk := f.read(self.CHUNK)):
                    if not self.head:
                        self.head = chunk[:SNIFF_BYTES]
                    self.acc.update(chunk)
        except (OSError, SourceError):
            self.failed = True  # the worker reads it again, and says what is wrong

    def result(self, item: EvidenceItem) -> None:
        """Give the item its digests (else it stays a file on disk for a worker to read)."""
        self.join()
        if not self.failed and not self.stopping.is_set():
            item.digests, item.head = self.acc.result(), self.head

    def stop(self) -> None:
        self.stopping.set()


@dataclass
class _Disk:
    item: EvidenceItem
    kind: str
    reader: ImageReader
    opts: WalkOptions
    counts: dict[str, int] = field(default_factory=lambda: {"allocated": 0, "deleted": 0, "carved": 0})
    partitions: list[dict[str, Any]] = field(default_factory=list)
    verification: dict[str, Any] | None = None
    errors: int = 0
    #: files are handed to the workers by reference (``diskref``) when the image is a file on disk
    ref_ok: bool = True
    image_path: str = ""
    mtime_ns: int = 0

    def __post_init__(self) -> None:
        assert self.item.fs_path is not None
        self.image_path = self.item.fs_path
        if self.opts.nested:  # a temporary copy: its files are read here, before it is removed
            self.ref_ok = False
            return
        try:
            self.mtime_ns = image_mtime_ns(self.image_path, self.item.path)
        except (OSError, SourceError):
            self.ref_ok = False

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "container": self.kind,
            "size": self.reader.size,
            "partitions": self.partitions,
        }
        out["items"] = dict(self.counts)
        if getattr(self.reader, "parents", None):
            out["parents"] = list(self.reader.parents)  # type: ignore[attr-defined]
        if self.verification is not None:
            out["verification"] = self.verification
        return out

    def path(self, parts: list[str]) -> str:
        return join_member(self.item.path, "/".join(parts))

    def walk(self) -> Generator[EvidenceItem, None, bool]:
        """Everything in the image; returns whether a volume system or a file system was found."""
        if self.opts.verify_images:
            self.verification = verify_image(self.reader, self.item.path).as_json()
        img = tsk_image(self.reader)
        pytsk3 = tsk()
        try:
            vs = pytsk3.Volume_Info(img)
        except OSError:
            vs = None
        if vs is None:
            fs = _open_fs(img, 0)
            if fs is None:  # a wiped table, an unknown file system: still carved, and said
                yield from self.carve_range(0, self.reader.size, [])
                return False
            self.partitions.append({"name": "", "offset": 0, "size": self.reader.size})
            yield from self.file_system(fs, 0, self.reader.size, [])
            return True
        bs = vs.info.block_size
        n = 0
        for part in sorted(vs, key=lambda p: p.start):
            start, length = part.start * bs, part.len * bs
            if part.flags & pytsk3.TSK_VS_PART_FLAG_ALLOC and _text(part.desc) == "Apple_partition_map":
                continue  # the Apple partition map lists itself as a partition: it is the table
            if part.flags & pytsk3.TSK_VS_PART_FLAG_ALLOC:
                n += 1
                name = f"p{n}"
                self.partitions.append({"name": name, "offset": start, "size": length,
                                        "description": _text(part.desc)})  # fmt: skip
                fs = _open_fs(img, start)
                if fs is None:
                    self.errors += 1
                    err = DamagedImage(
                        f"no file system The Sleuth Kit reads in partition {name} at byte offset {start} "
                        f"({length} bytes); carved as unallocated space",
                        self.path([name]),
                    )
                    yield EvidenceItem(
                        path=self.path([name]), size=length, depth=self.item.depth + 1, error=err
                    )
                    yield from self.carve_range(start, min(start + length, self.reader.size), [name])
                else:
                    yield from self.file_system(fs, start, length, [name])
            elif part.flags & pytsk3.TSK_VS_PART_FLAG_UNALLOC:
                yield from self.carve_range(start, min(start + length, self.reader.size), [])
        return True

    # --- one file system ------------------------------------------------------------------
    def file_system(self, fs: Any, offset: int, length: int, prefix: list[str]) -> Iterator[EvidenceItem]:
        walk = _FsWalk(self, fs, offset, prefix)
        yield from walk.run()
        end = min(offset + length, self.reader.size)
        for start, stop in _gaps(walk.allocated, offset, end):
            yield from self.carve_range(start, stop, prefix, walk.deleted_starts)

    def carve_range(
        self, start: int, end: int, prefix: list[str], taken: set[int] | None = None
    ) -> Iterator[EvidenceItem]:
        if not self.opts.carve:
            return
        cap = Budget(self.opts.limits).member_cap()
        for hit in carve(self.reader.read, start, end, cap, taken or set()):
            path = self.path([*prefix, CARVED, f"0x{hit.offset:x}.{hit.ext}"])
            member = EvidenceItem(path=path, size=hit.length, depth=self.item.depth + 1)
            member.extra = {"carved": True, "unallocated": True, "offset": hit.offset}
            self.counts["carved"] += 1
            try:
                set_data(member, self.reader.read(hit.offset, hit.length))
            except OSError as exc:
                member.error = DamagedImage(f"read failed at byte offset {hit.offset}: {exc}", path)
            yield from descend(member, Budget(self.opts.limits))


def _open_fs(img: Any, offset: int) -> Any:
    try:
        return tsk().FS_Info(img, offset=offset)
    except OSError:
        return None


def _text(b: Any) -> str:
    return b.decode("utf-8", "replace") if isinstance(b, bytes) else str(b)


def _gaps(allocated: list[tuple[int, int]], start: int, end: int) -> Iterator[tuple[int, int]]:
    """The byte ranges of ``[start, end)`` that no allocated run covers."""
    pos = start
    for a, b in sorted(allocated):
        if a > pos:
            yield pos, min(a, end)
        pos = max(pos, b)
        if pos >= end:
            return
    if pos < end:
        yield pos, end


class _TskStream:
    """A file's content as a stream, for ``read_member``; a failed read names the image region."""

    def __init__(self, f: Any, size: int, where: str, first: int | None) -> None:
        self.f, self.size, self.pos, self.where, self.first = f, size, 0, where, first

    def __enter__(self) -> _TskStream:
        return self

    def __exit__(self, *_exc: object) -> None:
        pass

    def read(self, n: int = -1) -> bytes:
        n = self.size - self.pos if n < 0 else min(n, self.size - self.pos)
        if n <= 0:
            return b""
        try:
            b = self.f.read_random(self.pos, n)
        except OSError as exc:
            near = f" (file starts at image byte offset {self.first})" if self.first is not None else ""
            raise DamagedImage(f"read failed at file offset {self.pos}{near}: {exc}", self.where) from exc
        self.pos += len(b)
        return b


class _FsWalk:
    """Depth-first walk of one file system, directories in name order, each inode entered once."""

    def __init__(self, disk: _Disk, fs: Any, offset: int, prefix: list[str]) -> None:
        self.disk, self.fs, self.offset, self.prefix = disk, fs, offset, prefix
        self.bs = fs.info.block_size
        self.allocated: list[tuple[int, int]] = []  # image byte ranges of allocated files
        self.deleted_starts: set[int] = set()  # first bytes of recovered deleted files (not carved again)
        self.t = tsk()
        self.named: set[int] = set()  # metadata addresses of allocated names
        self.reused: list[tuple[Any, list[str]]] = []  # deleted names whose metadata is allocated

    def run(self) -> Iterator[EvidenceItem]:
        t = self.t
        try:
            root = self.fs.open_dir(inode=self.fs.info.root_inum)
        except OSError as exc:
            self.disk.errors += 1
            where = self.disk.path(self.prefix or [""])
            yield EvidenceItem(path=where, size=None, depth=self.disk.item.depth + 1,
                               error=DamagedImage(f"root directory unreadable: {exc}", where))  # fmt: skip
            return
        visited = {self.fs.info.root_inum}
        try:
            stack: list[Iterator[tuple[Any, list[str], bool]]] = [self._listing(root, [], False)]
        except OSError as exc:
            self.disk.errors += 1
            yield self._error([], False, DamagedImage(f"root directory cannot be listed: {exc}"))
            return
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                stack.pop()
                continue
            f, parts, deleted = nxt
            meta = f.info.meta
            if meta is not None and meta.type in (t.TSK_FS_META_TYPE_DIR, t.TSK_FS_META_TYPE_VIRT_DIR):
                if meta.addr in visited:
                    continue
                visited.add(meta.addr)
                if not deleted:
                    self.allocated.extend(self._runs(f))
                orphans = meta.type == t.TSK_FS_META_TYPE_VIRT_DIR  # TSK's $OrphanFiles
                try:
                    stack.append(self._listing(f.as_directory(), parts, deleted or orphans))
                except OSError as exc:
                    if not deleted:  # a deleted directory's lost listing is expected, not damage
                        self.disk.errors += 1
                        yield self._error(parts, False, DamagedImage(f"directory cannot be listed: {exc}"))
                continue
            if meta is not None and meta.type == t.TSK_FS_META_TYPE_VIRT:
                self.allocated.extend(self._runs(f))  # $MBR, $FAT1: file system metadata, not files
                continue
            if meta is not None and f.info.name.name.endswith(b"(Volume Label Entry)"):
                continue  # TSK shows a FAT volume label as an empty file; it is a label, not a file
            if deleted and meta is not None and meta.flags & t.TSK_FS_META_FLAG_ALLOC:
                self.reused.append((f, parts))  # decided once every allocated name is known
                continue
            if meta is not None and not deleted:
                self.named.add(meta.addr)
            yield from self._file(f, parts, deleted)
        for f, parts in self.reused:
            if f.info.meta.addr in self.named:
                lost = DeletedContentLost(
                    "deleted name whose metadata now belongs to another file; not attributed"
                )
                yield self._error(parts, True, lost)
            else:  # its metadata is still allocated but no name is left: an orphan, readable
                yield from self._file(f, parts, True, unallocated=False)

    def _listing(self, d: Any, parts: list[str], deleted: bool) -> Iterator[tuple[Any, list[str], bool]]:
        """A directory's entries in name order (read whole here, so a broken directory fails here)."""
        entries = sorted(
            (f for f in d if f.info.name.name not in (b".", b"..")), key=lambda f: f.info.name.name
        )
        out = []
        for f in entries:
            name = f.info.name.name.decode("utf-8", "surrogateescape")
            comp = encode_component(name)
            if not parts and comp in (DELETED, CARVED):
                comp = "%24" + comp[1:]  # a real file named like our steps must not read as one
            unalloc = bool(f.info.name.flags & self.t.TSK_FS_NAME_FLAG_UNALLOC)
            out.append((f, [*parts, comp], deleted or unalloc))
        return iter(out)

    def _runs(self, f: Any) -> list[tuple[int, int]]:
        return data_runs(f, self.offset, self.bs)

    def _error(self, parts: list[str], deleted: bool, exc: SourceError) -> EvidenceItem:
        item = self._item(parts, deleted, None)
        exc.where = item.path
        item.error = exc
        return item

    def _item(self, parts: list[str], deleted: bool, size: int | None) -> EvidenceItem:
        steps = [*self.prefix, DELETED, *parts] if deleted else [*self.prefix, *parts]
        item = EvidenceItem(path=self.disk.path(steps), size=size, depth=self.disk.item.depth + 1)
        item.extra = {"deleted": True, "unallocated": True} if deleted else {"deleted": False}
        self.disk.counts["deleted" if deleted else "allocated"] += 1
        return item

    def _free_meta(self, f: Any) -> Any:
        """A deleted NTFS name whose MFT record is not in use: NTFS raised the record's sequence
        number when it deleted the file, so TSK does not pair the two; the record is still the file's
        (nothing has reused it), so it is opened by its address. Else ``f`` as it was."""
        try:
            g = self.fs.open_meta(inode=f.info.name.meta_addr)
        except OSError:
            return f
        m = g.info.meta
        if m is None or m.flags & self.t.TSK_FS_META_FLAG_ALLOC or m.type != self.t.TSK_FS_META_TYPE_REG:
            return f
        return g

    def _file(
        self, f: Any, parts: list[str], deleted: bool, unallocated: bool = True
    ) -> Iterator[EvidenceItem]:
        t, meta = self.t, f.info.meta
        if meta is None and parts[0] == "$OrphanFiles":
            return  # TSK lists unused metadata slots (NTFS 16-23) as orphans: no name, no content
        if meta is None and deleted and f.info.name.meta_addr:
            f = self._free_meta(f)
            meta = f.info.meta
        if meta is None:
            gone: SourceError = (
                DeletedContentLost("entry without metadata; content not recoverable")
                if deleted
                else DamagedImage("entry without metadata")
            )
            yield self._error(parts, deleted, gone)
            return
        if meta.type == t.TSK_FS_META_TYPE_LNK:
            yield self._error(parts, deleted, SymlinkNotFollowed("symlink inside the image; not followed"))
            return
        if meta.type != t.TSK_FS_META_TYPE_REG:
            yield self._error(
                parts, deleted, UnreadableSource("special file (device, fifo, socket); no content")
            )
            return
        runs = self._runs(f)
        first = runs[0][0] if runs else None
        if deleted:
            if first is not None:
                self.deleted_starts.add(first)
        else:
            self.allocated.extend(runs)
        item = self._item(parts, deleted, int(meta.size))
        if deleted and not unallocated:
            assert item.extra is not None
            item.extra["unallocated"] = False
        item.mtime = float(meta.mtime) if meta.mtime else None
        if first is not None:
            assert item.extra is not None
            item.extra["offset"] = first
        budget = Budget(self.disk.opts.limits)
        try:
            stream: Any = _TskStream(f, int(meta.size), item.path, first)
            if meta.size:
                head = stream.read(SNIFF_BYTES)
                size = int(meta.size)
                inside = open_nested(item, budget, lambda: _TskStream(f, size, item.path, first), head)
                if inside is not None:  # a disk image in the image: copied out and walked
                    yield from inside
                    return
                stream.pos = 0
            if not deleted and meta.size and self.disk.ref_ok:
                head = stream.read(SNIFF_BYTES)
                if archive_kind(head) is None and not damage_within(self.disk.reader.damaged, runs):
                    # not an archive: its worker reads it from the image itself (diskref)
                    item.disk_member = DiskMemberRef(
                        self.disk.kind, self.disk.image_path, self.offset, int(meta.addr),
                        int(meta.size), first, self.disk.mtime_ns,
                    )  # fmt: skip
                    yield item
                    return
                stream.pos = 0
            data = read_member(stream, int(meta.size), item.path, budget, None, counted=False)
            set_data(item, data, budget)
            hurt = damage_within(self.disk.reader.damaged, runs)
            if hurt:  # hashed as read, but said: part of it is zeros
                item.error = DamagedImage(describe_damage(hurt), item.path)
        except OpspoorError as exc:
            reason: SourceError = exc if isinstance(exc, DamagedImage) else DamagedImage(exc.message)
            if deleted:
                reason = DeletedContentLost(f"deleted; content not recoverable: {exc.message}")
            reason.where = item.path
            item.error, item._data = reason, None
            yield item
            return
        yield from descend(item, budget)


def last_bytes(fs_path: str, where: str) -> bytes:
    """The last 512 bytes of a file (a fixed VHD's footer is at its end)."""
    with open_readonly(fs_path, where) as f:
        f.seek(0, 2)
        f.seek(max(0, f.tell() - 512))
        return f.read(512)
