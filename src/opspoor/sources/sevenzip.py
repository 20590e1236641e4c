"""7z archives, read through py7zr."""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator
from typing import Any

from opspoor.errors import (
    ArchiveBomb,
    ArchiveError,
    CorruptArchive,
    EncryptedContent,
    SymlinkNotFollowed,
    UnreadableSource,
)
from opspoor.media.digests import DigestAccumulator
from opspoor.media.sniff import SNIFF_BYTES
from opspoor.sources.archive_members import Blob, Streamed, _fail, _Namer, set_data
from opspoor.sources.evidence import EvidenceItem
from opspoor.sources.limits import Budget

#: the coder id of 7z's AES encryption
_7Z_AES = b"\x06\xf1\x07\x01"


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
