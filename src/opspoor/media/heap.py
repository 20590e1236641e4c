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

#: glibc mallopt parameters
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
#: allocations up to this are served from the heap, and twice this of freed memory is kept
KEEP_BYTES = 64 * 2**20


def keep_large_buffers(size: int = KEEP_BYTES) -> bool:
    """Serve allocations up to ``size`` bytes from the heap and keep up to ``2 * size`` of freed
    heap instead of handing it back at once (glibc ``mallopt``; False where that is not glibc).

    A loop that allocates and frees the same few arrays of about a megabyte, as PDQ's filter does
    for each frame of a live stream (four 640x360 float32 buffers a hash), otherwise has glibc
    trim the top of the heap after each hash and grow it again for the next: fresh pages, one
    page fault per 4 KiB. Measured on the robust query hashes of a 640x360 frame (five PDQs):
    7.7 ms without, 2.2 ms with. For long-running loops (``opspoor watch``); ``trim_heap`` still
    gives everything back when called."""
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, size)) and bool(mallopt(_M_TRIM_THRESHOLD, 2 * size))


def trim_heap() -> None:
    """Give free heap memory back to the system (glibc ``malloc_trim``). Pillow allocates a large
    image in 16 MiB blocks, which glibc serves from the decoding thread's own arena once its mmap
    threshold has grown; freed, they stay in that arena and the process's RSS stays at its peak
    (2.6 GiB after a burst of large PNGs in the service). ``malloc_trim(0)`` returns them from every
    arena."""
    if _TRIM is not None:
        _TRIM(0)
