"""The one way opspoor opens evidence: read-only, never blocking on a FIFO or a device, without
changing access times where the kernel allows it. Below every package (the scan's sources, the
signal engine's ``hash_path`` and the report's provenance all read exhibits)."""

from __future__ import annotations

import errno
import os
import stat
from typing import BinaryIO

from opspoor.errors import SymlinkNotFollowed, UnreadableSource, VanishedSource


def open_readonly(fs_path: str, where: str, *, follow_symlinks: bool = False) -> BinaryIO:
    """Open a regular file for reading without following a final symlink (unless asked: a path the
    user named) or blocking on a FIFO.

    The file must still be a regular file once open (it may have been swapped since listing).
    O_NOATIME keeps access times too where the kernel allows it (owner or root).
    """
    nofollow = 0 if follow_symlinks else getattr(os, "O_NOFOLLOW", 0)
    flags = os.O_RDONLY | os.O_NONBLOCK | nofollow | getattr(os, "O_CLOEXEC", 0)
    try:
        try:
            fd = os.open(fs_path, flags | _noatime())
        except PermissionError:
            if not _noatime():
                raise
            fd = os.open(fs_path, flags)
    except FileNotFoundError as exc:
        raise VanishedSource("file vanished before it could be read", where) from exc
    except PermissionError as exc:
        raise UnreadableSource(f"permission denied: {exc.strerror}", where) from exc
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise SymlinkNotFollowed("became a symlink after listing; not followed", where) from exc
        raise UnreadableSource(f"cannot open: {exc.strerror or exc}", where) from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnreadableSource(f"not a regular file ({file_kind(st.st_mode)})", where)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def file_kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISREG, "file"),
        (stat.S_ISDIR, "directory"),
        (stat.S_ISLNK, "symlink"),
        (stat.S_ISFIFO, "fifo"),
        (stat.S_ISSOCK, "socket"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
    ):
        if test(mode):
            return name
    return "unknown type"


def _noatime() -> int:
    return getattr(os, "O_NOATIME", 0)
