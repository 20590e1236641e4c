"""Memory given back to the system after a large decode (scan workers and the service alike)."""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable


def _load_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    try:
        fn = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError, TypeError):  # not glibc: nothing to trim
        return None
    fn.argtypes, fn.restype = [ctypes.c_size_t], ctypes.c_int
    return fn  # type: ignore[no-any-return]


_TRIM = _load_trim()


def trim_heap() -> None:
    """Give free heap memory back to the system (glibc ``malloc_trim``). Pillow allocates a large
    image in 16 MiB blocks, which glibc serves from the decoding thread's own arena once its mmap
    threshold has grown; freed, they stay in that arena and the process's RSS stays at its peak
    (2.6 GiB after a burst of large PNGs in the service). ``malloc_trim(0)`` returns them from every
    arena."""
    if _TRIM is not None:
        _TRIM(0)
