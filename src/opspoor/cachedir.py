"""The folder opspoor keeps caches in: ``$OPSPOOR_CACHE``, else the user's cache folder.

Caches are rebuilt when missing (index caches, the benchmark photo corpus); an installed package
never reads into a source tree for them. Any layer may import this module.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

from platformdirs import user_cache_dir

CACHE_ENV = "OPSPOOR_CACHE"


def cache_home() -> Path:
    """``$OPSPOOR_CACHE``, else the user's cache folder (``~/.cache/opspoor`` on Linux)."""
    return Path(os.environ.get(CACHE_ENV) or user_cache_dir("opspoor"))


def write_cache_file(path: Path, fill: Callable[[IO[bytes]], None]) -> None:
    """Write a cache file owner-only and all at once: ``fill`` writes a file beside it, which is
    then renamed into place (a reader never sees half of it; two writers leave one whole copy)."""
    for folder in reversed([path.parent, *path.parent.parents]):
        if not folder.exists():
            folder.mkdir(mode=0o700, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            fill(out)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
