"""The pictures a reviewer sees, made on demand from the evidence, opened read-only through its
evidence path (an archive member, nested ones included, is found by expanding its container again).

Two kinds leave the server: the *veiled* view (grayscale and blurred before it is encoded, made by
``media.thumbs.safe_thumbnail``), which is all a page ever loads by itself, and a *reveal* (one
item, in colour, at most ``REVEAL_SIZE`` px unless full size is asked), which only a reviewer's
held key or button asks for, and which is recorded. A video is a grid of sampled frames, never a
playable stream: nothing can autoplay or make a sound.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from opspoor.errors import CaseError
from opspoor.media.image import decode_image
from opspoor.media.thumbs import safe_thumbnail
from opspoor.media.video import iter_video_frames
from opspoor.readonly import open_readonly
from opspoor.sources import CONTAINER_SEP, iter_evidence

REVEAL_SIZE = 512
#: a video's frame grid: 4 columns x 5 rows (IPED's Layout = 320,4,5)
GRID_COLUMNS, GRID_ROWS = 4, 5
VEIL_SIZE = 320
#: full-size reveals are still bounded, so one request cannot ask for an enormous picture
FULL_SIZE_LIMIT = 4096


def read_evidence(path: str, sources: Sequence[Path]) -> bytes:
    """The bytes of the evidence at ``path`` (as the scan named it: relative to its source's parent,
    ``dump/Photos.zip!/2019/a.jpg``), read-only."""
    outer, _, _ = path.partition(CONTAINER_SEP)
    for src in sources:
        parent = src.parent
        fs = os.path.normpath(os.path.join(parent, outer))
        if not (fs == str(src) or fs.startswith(str(src) + os.sep)):
            continue  # (also keeps ``..`` in a path from leaving the sources)
        if CONTAINER_SEP not in path:
            if os.path.lexists(fs):
                with open_readonly(fs, path) as fh:
                    return fh.read()
            continue
        prefix = os.path.dirname(outer)
        for item in iter_evidence([fs]):
            name = f"{prefix}/{item.path}" if prefix else item.path
            if name == path and item.has_content:
                return item.read()
    raise CaseError("evidence not found under the case's sources (moved or not mounted?)", path)


def _frames(data: bytes, path: str, count: int) -> list[np.ndarray]:
    """About ``count`` frames spread over the video (one a second first, then thinned evenly)."""
    every: list[np.ndarray] = []
    for f in iter_video_frames(io.BytesIO(data), every_seconds=0.5, where=path):
        every.append(f.rgb)
        if len(every) >= count * 8:
            break
    if len(every) <= count:
        return every
    picks = np.linspace(0, len(every) - 1, count).round().astype(int)
    return [every[i] for i in picks]


def frame_grid(frames: Sequence[np.ndarray], cell: int) -> np.ndarray:
    """The frames as one RGB picture, ``GRID_COLUMNS`` wide, each fitted into ``cell`` px."""
    rows = max(1, -(-len(frames) // GRID_COLUMNS))
    sheet = Image.new("RGB", (GRID_COLUMNS * cell, rows * cell), (40, 40, 40))
    for k, rgb in enumerate(frames):
        im = Image.fromarray(np.ascontiguousarray(rgb[..., :3]), "RGB")
        im.thumbnail((cell, cell))
        x, y = (k % GRID_COLUMNS) * cell, (k // GRID_COLUMNS) * cell
        sheet.paste(im, (x + (cell - im.width) // 2, y + (cell - im.height) // 2))
    return np.asarray(sheet)


def _pixels(data: bytes, path: str, kind: str | None, size: int) -> np.ndarray:
    if kind == "video":
        frames = _frames(data, path, GRID_COLUMNS * GRID_ROWS)
        if not frames:
            raise CaseError("no frame could be decoded", path)
        return frame_grid(frames, max(32, size // GRID_COLUMNS))
    return decode_image(data, where=path, target=size).rgb


def veiled_view(data: bytes, path: str, kind: str | None) -> bytes:
    """JPEG of the item grayscale and blurred (a video: its frame grid, veiled as a whole)."""
    return safe_thumbnail(_pixels(data, path, kind, VEIL_SIZE), size=VEIL_SIZE)


def revealed_view(data: bytes, path: str, kind: str | None, *, full_size: bool = False) -> bytes:
    """JPEG of the item itself, at most ``REVEAL_SIZE`` px (``FULL_SIZE_LIMIT`` when full size)."""
    size = FULL_SIZE_LIMIT if full_size else REVEAL_SIZE
    rgb = _pixels(data, path, kind, size)
    img = Image.fromarray(np.ascontiguousarray(rgb[..., :3]), "RGB")
    img.thumbnail((size, size))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=85)
    return buf.getvalue()
