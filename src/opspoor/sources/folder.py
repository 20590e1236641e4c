"""Walk the sources of a scan (folders and single files) and turn every file into evidence items."""

from __future__ import annotations

import errno
import os
import stat
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from opspoor.errors import (
    SourceError,
    SymlinkNotFollowed,
    UnreadableSource,
    VanishedSource,
)
from opspoor.media.sniff import SNIFF_BYTES
from opspoor.sources.archives import archive_kind, zip_is_dir
from opspoor.sources.disk import last_bytes
from opspoor.sources.evidence import EvidenceItem, UniqueNames, encode_component, file_kind, open_readonly
from opspoor.sources.kind import WalkOptions
from opspoor.sources.limits import Limits
from opspoor.sources.registry import recognise


@dataclass(slots=True)
class _Entry:
    """A directory entry that is not a directory: a file (or a symlink's target inside the source)."""

    fs_path: str
    path: str
    st: os.stat_result


def iter_evidence(
    sources: Sequence[Path | str],
    limits: Limits = Limits(),
    *,
    verify_images: bool = False,
    carve: bool = True,
) -> Iterator[EvidenceItem]:
    """Every file in ``sources``, archive members and disk image contents included, each exactly once.

    Folders are walked depth-first in sorted name order; paths are relative to each source's parent
    (``scan /x/dump`` gives ``dump/a.jpg``). Every non-directory entry gives one item: a FIFO, a broken
    link or an unreadable file gives an item with ``error`` set. Symlinks are followed only to regular
    files inside the same source. An archive's members come before the archive's own item
    (see ``opspoor.sources.archives``), and a disk image's contents before the image's own item
    (``opspoor.sources.disk``; ``verify_images`` checks the acquisition hash an image stores,
    ``carve`` searches its unallocated space).
    """
    opts = WalkOptions(limits, verify_images, carve)
    for entry in _entries(sources):
        if isinstance(entry, EvidenceItem):
            yield entry
        else:
            yield from _file_evidence(entry, opts)


def walk_files(source: Path | str) -> Iterator[tuple[str, str | None, SourceError | None]]:
    """Every non-directory entry of one source, as the scan sees them, without opening archives:
    (path below the source, the file to read or None, the error or None). A FIFO, device, broken
    symlink or loop comes with its reason instead of a file to read (``opspoor hash FOLDER``)."""
    for entry in _entries([source]):
        if isinstance(entry, EvidenceItem):
            error = entry.error or UnreadableSource("cannot be read", entry.path)
            yield entry.path.partition("/")[2], None, error
        elif not stat.S_ISREG(entry.st.st_mode):
            reason = UnreadableSource(
                f"not a regular file ({file_kind(entry.st.st_mode)}); not read", entry.path
            )
            yield entry.path.partition("/")[2], None, reason
        else:
            yield entry.path.partition("/")[2], entry.fs_path, None


def count_evidence(
    sources: Sequence[Path | str], limits: Limits = Limits(), *, zip_members: bool = False
) -> int:
    """A quick count for progress bars: directory entries from stat alone; with ``zip_members``, plus the
    members listed in each top-level zip's central directory. Nested members and tar members are not
    counted, so the count can be lower than what ``iter_evidence`` yields."""
    n = 0
    for entry in _entries(sources):
        n += 1
        if zip_members and isinstance(entry, _Entry) and stat.S_ISREG(entry.st.st_mode):
            n += _zip_member_count(entry, limits)
    return n


def _zip_member_count(entry: _Entry, limits: Limits) -> int:
    try:
        with open_readonly(entry.fs_path, entry.path) as f:
            if archive_kind(f.read(SNIFF_BYTES)) != "zip":
                return 0
            f.seek(0)
            with zipfile.ZipFile(f) as zf:
                return min(sum(1 for i in zf.infolist() if not zip_is_dir(i)), limits.max_members)
    except (SourceError, OSError, zipfile.BadZipFile, ValueError, EOFError):
        return 0


def _file_evidence(entry: _Entry, opts: WalkOptions) -> Iterator[EvidenceItem]:
    st = entry.st
    item = EvidenceItem(path=entry.path, size=st.st_size, mtime=st.st_mtime, fs_path=entry.fs_path)
    if not stat.S_ISREG(st.st_mode):
        item.fs_path, item.size = None, None
        item.error = UnreadableSource(f"not a regular file ({file_kind(st.st_mode)})", entry.path)
        yield item
        return
    if st.st_size == 0:
        yield item
        return
    try:
        with open_readonly(entry.fs_path, entry.path) as f:
            head = f.read(SNIFF_BYTES)
    except SourceError as exc:
        item.fs_path, item.error = None, exc
        yield item
        return
    except OSError as exc:
        item.fs_path = None
        item.error = UnreadableSource(f"read failed: {exc.strerror or exc}", entry.path)
        yield item
        return
    found = recognise(os.path.basename(entry.fs_path), head, lambda: last_bytes(entry.fs_path, entry.path))
    if found is None:
        yield item
    else:
        yield from found[0].expand(item, found[1], opts)


# --- walking ------------------------------------------------------------------------
def source_names(sources: Sequence[Path | str]) -> list[str]:
    """Each source's own evidence path (the first step of every path under it)."""
    unique = UniqueNames()
    names = (os.path.basename(os.path.abspath(os.fspath(s))) for s in sources)
    return [unique(encode_component(n or "root")) for n in names]


def _entries(sources: Sequence[Path | str]) -> Iterator[_Entry | EvidenceItem]:
    for src, name in zip(sources, source_names(sources), strict=True):
        yield from _source_entries(os.path.abspath(os.fspath(src)), name)


def _error(path: str, exc: SourceError) -> EvidenceItem:
    exc.where = path
    return EvidenceItem(path=path, size=None, error=exc)


def _source_entries(fs: str, name: str) -> Iterator[_Entry | EvidenceItem]:
    try:
        st = os.stat(fs)  # a source named by the user may itself be a symlink: follow it
    except FileNotFoundError:
        yield _error(name, VanishedSource("source not found"))
        return
    except OSError as exc:
        yield _error(name, _os_error(exc))
        return
    real = os.path.realpath(fs)
    if stat.S_ISDIR(st.st_mode):
        yield from _walk(real, name, st)
    else:
        yield _Entry(real, name, st)


def _os_error(exc: OSError) -> SourceError:
    if exc.errno == errno.ELOOP:
        return SymlinkNotFollowed("symlink loop")
    if isinstance(exc, FileNotFoundError):
        return VanishedSource("vanished while the folder was walked")
    return UnreadableSource(f"{exc.strerror or exc}")


def _walk(root: str, name: str, root_st: os.stat_result) -> Iterator[_Entry | EvidenceItem]:
    """Depth-first, sorted, without recursion (deep trees) and without entering a directory twice
    (bind mounts can make loops even without symlinks)."""
    visited = {(root_st.st_dev, root_st.st_ino)}
    stack = [_listing(root, name)]
    while stack:
        nxt = next(stack[-1], None)
        if nxt is None:
            stack.pop()
            continue
        if isinstance(nxt, EvidenceItem):
            yield nxt
            continue
        fs, path = nxt
        try:
            lst = os.lstat(fs)
        except OSError as exc:
            yield _error(path, _os_error(exc))
            continue
        if stat.S_ISDIR(lst.st_mode):
            key = (lst.st_dev, lst.st_ino)
            if key in visited:
                yield _error(path, SymlinkNotFollowed("directory already walked (mount loop); not entered"))
            else:
                visited.add(key)
                stack.append(_listing(fs, path))
        elif stat.S_ISLNK(lst.st_mode):
            yield _follow_link(root, fs, path)
        else:
            yield _Entry(fs, path, lst)


def _listing(directory: str, path: str) -> Iterator[tuple[str, str] | EvidenceItem]:
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_NOFOLLOW", 0))
        try:
            names = sorted(os.listdir(fd))
        finally:
            os.close(fd)
    except OSError as exc:
        err = _os_error(exc)
        yield _error(path, type(err)(f"directory cannot be listed: {err.message}"))
        return
    for n in names:
        yield os.path.join(directory, n), f"{path}/{encode_component(n)}"


def _follow_link(root: str, fs: str, path: str) -> _Entry | EvidenceItem:
    """Follow a symlink only to a regular file inside the source; anything else is an error record."""
    try:
        shown = os.readlink(fs)
    except OSError:
        shown = "?"
    try:
        target = os.path.realpath(fs, strict=True)
    except FileNotFoundError:
        return _error(path, SymlinkNotFollowed(f"broken symlink to {shown!r}"))
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return _error(path, SymlinkNotFollowed(f"symlink loop via {shown!r}"))
        return _error(path, _os_error(exc))
    if os.path.commonpath([root, target]) != root:
        return _error(path, SymlinkNotFollowed(f"symlink to {shown!r} leaves the source; not followed"))
    try:
        st = os.stat(target)
    except OSError as exc:
        return _error(path, _os_error(exc))
    if stat.S_ISDIR(st.st_mode):
        return _error(path, SymlinkNotFollowed(f"symlink to directory {shown!r}; not followed"))
    return _Entry(target, path, st)
