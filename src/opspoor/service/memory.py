"""Memory per upload: a budget each decode must fit, and memory given back after a large one.

The budget is checked from the file's header before anything is decoded
(``media.image.decode_memory``: the pixels a decode loads, a JPEG at the reduced DCT scale it is
drafted at; ``media.video.video_decode_memory``: a video's frame size times what its decoder holds
per pixel): an upload whose decode would not fit is refused with 413, so one 10,000 x 10,000 PNG
(about 500 MB decoded) or one 8K video cannot take a worker's memory. Decodes run on the worker's
``hash_threads`` threads only, so a worker's decoding memory stays below ``hash_threads`` x the
budget however many uploads arrive at once.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from typing import TypeVar

from opspoor.media.heap import trim_heap
from opspoor.media.image import decode_memory
from opspoor.media.sniff import SNIFF_BYTES, sniff
from opspoor.media.video import video_decode_memory
from opspoor.service.problems import Problem

log = logging.getLogger("opspoor.service")
T = TypeVar("T")
MIB = 1 << 20
#: decodes above this give their memory back to the system when they end
TRIM_ABOVE = 32 * MIB


def check_decode_budget(data: bytes, budget: int, what: str = "the upload") -> int:
    """The estimated bytes decoding ``data`` takes (an image's pixels, a video's frames at their
    size); 413 when above ``budget``."""
    kind = sniff(bytes(data[:SNIFF_BYTES])).kind
    if kind == "video":
        need, advice = video_decode_memory(io.BytesIO(data)), "a video of a smaller frame size"
    else:
        need, advice = decode_memory(data), "a smaller picture, or a JPEG"
    if need > budget:
        raise Problem(
            413,
            f"decoding {what} would take about {need / MIB:,.0f} MiB, above this service's limit of "
            f"{budget / MIB:,.0f} MiB per upload (send {advice})",
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
