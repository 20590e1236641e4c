"""Memory per upload: a budget each decode must fit, and memory given back after a large one.

The budget is checked from the file's header before anything is decoded
(``media.image.decode_memory``: the pixels a decode loads, a JPEG at the reduced DCT scale it is
drafted at): an upload whose decode would not fit is refused with 413, so one 10,000 x 10,000 PNG
(about 500 MB decoded) cannot take a worker's memory. Decodes run on the worker's ``hash_threads``
threads only, so a worker's decoding memory stays below ``hash_threads`` x the budget however many
uploads arrive at once.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from collections.abc import Callable
from typing import TypeVar

from opspoor.media.image import decode_memory
from opspoor.service.problems import Problem

log = logging.getLogger("opspoor.service")
T = TypeVar("T")
MIB = 1 << 20
#: decodes above this give their memory back to the system when they end
TRIM_ABOVE = 32 * MIB


def check_decode_budget(data: bytes, budget: int, what: str = "the upload") -> int:
    """The estimated bytes decoding ``data`` takes; 413 when above ``budget``."""
    need = decode_memory(data)
    if need > budget:
        raise Problem(
            413,
            f"decoding {what} would take about {need / MIB:,.0f} MiB, above this service's limit of "
            f"{budget / MIB:,.0f} MiB per upload (send a smaller picture, or a JPEG)",
            slug="decode-too-large",
        )
    return need


def run_then_trim(fn: Callable[[], T], need: int) -> T:
    """``fn()``, then, after a large decode, the freed memory given back to the system."""
    try:
        return fn()
    finally:
        if need > TRIM_ABOVE:
            trim_heap()


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
    image in 16 MiB blocks, which glibc serves from the hashing thread's own arena once its mmap
    threshold has grown; freed, they stay in that arena and the worker's RSS stays at its peak
    (2.6 GiB after a burst of large PNGs). ``malloc_trim(0)`` returns them from every arena."""
    if _TRIM is not None:
        _TRIM(0)
