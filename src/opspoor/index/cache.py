"""The index cache: saved index folders under ``cache_home()/index``, written whole, cleaned up.

One folder per cached thing (named by a hash of its key), one subfolder per state of it. A state's
folder is written beside its place and renamed into it, so a reader finds a whole folder or none;
once a newer state is cached, the folders of earlier states and unfinished ones of processes gone
are deleted. What a key names (a hash set of a store: ``opspoor.matching.cache``) is the caller's;
this module knows folders only.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from opspoor.cachedir import cache_home


def cache_root() -> Path:
    """``$OPSPOOR_CACHE/index``, else ``index`` in the user's cache folder."""
    return cache_home() / "index"


def key_folder(*key: object) -> Path:
    """The folder of the cached thing named by ``key`` (JSON values)."""
    return cache_root() / hashlib.sha256(json.dumps(list(key)).encode()).hexdigest()[:32]


def private_dirs(path: Path) -> None:
    """Create ``path`` and its missing parents, owner-only (folders that exist are left alone)."""
    for folder in reversed([path, *path.parents]):
        if not folder.exists():
            folder.mkdir(mode=0o700, exist_ok=True)


def write_folder(folder: Path, write: Callable[[Path], None]) -> None:
    """Write ``folder`` (which must not exist yet) owner-only and all at once: ``write`` fills a
    folder beside it, which is renamed into place when finished.

    (Modes are set file by file, not by the umask: the umask belongs to the whole process, and a
    scan loads its indexes in a thread while the main thread writes the case.)
    """
    tmp = folder.with_name(f"{folder.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        private_dirs(tmp)
        write(tmp)
        for path in tmp.rglob("*"):
            path.chmod(0o700 if path.is_dir() else 0o600)
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def remove_older(folder: Path) -> None:
    """Delete the cache folders of states before ``folder``'s (named by a number), and unfinished
    ones of processes gone. (A process still mapping a deleted file keeps reading it.)"""
    for other in folder.parent.iterdir():
        if _stale(other.name, int(folder.name)):
            shutil.rmtree(other, ignore_errors=True)


def _stale(name: str, current: int) -> bool:
    """Whether a cache folder ``STATE`` or ``STATE.tmpPID`` (unfinished) can go."""
    state, _, pid = name.partition(".tmp")
    if not state.isdigit():
        return False
    if pid:
        return pid.isdigit() and not _alive(int(pid))
    return int(state) < current


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process
    return True
