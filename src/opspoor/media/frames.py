"""Decoded video frames as NumPy arrays, safe in processes forked after a decode.

PyAV keeps one swscale context per thread (``av.video.frame._thread_local``) and by default lets
swscale start slice threads for it. A process forked after its thread scaled a frame inherits that
context without its threads; the child's next scale frees it, and glibc's ``pthread_cond_destroy``
waits for the missing threads for ever (seen: scan workers hung in ``to_ndarray`` after the test
process had decoded a video). So opspoor scales on the calling thread alone (``threads=1``) and a
forked child sets aside, never frees, the context it inherited.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from av.video import frame as _av_frame

_INHERITED: list[Any] = []  # kept for the life of the child: freeing one would hang


def frame_array(frame: Any, **reformat: Any) -> np.ndarray:
    """The frame's pixels (``format``, ``width``, ``height``, ``interpolation`` as ``to_ndarray``)."""
    return np.asarray(frame.to_ndarray(threads=1, **reformat))


def _set_aside_inherited_context() -> None:
    local = getattr(_av_frame, "_thread_local", None)  # PyAV >= 16; older ones kept no such context
    inherited = getattr(local, "reformatter", None)
    if local is not None and inherited is not None:
        _INHERITED.append(inherited)
        local.reformatter = None


os.register_at_fork(after_in_child=_set_aside_inherited_context)
