"""Benign generated live streams for tests, demos and benchmarks: a background video into which
known clips (another seed of ``demo.videos``) and known stills (``demo.images``) are spliced at
known times, optionally re-encoded at a low bit rate and with a channel logo in a corner, written
as an HLS playlist (``hls``), MPEG-TS or MP4.

The scenes move ``SLOW`` times slower than ``demo.videos``' (whose shapes cross a fifth of the
frame in a second): a filmed scene changes little within a second, which is what sampling one
frame a second on both sides (vPDQ's default) relies on. Known clips are written with
:func:`clip_frames` too, so their vPDQ frames and a stream's sampled frames show the same scene.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

from opspoor.demo.images import generate_image
from opspoor.demo.videos import _codec, render_frame

#: how much slower than ``demo.videos.render_frame`` the scenes move
SLOW = 20


def clip_frames(seed: int, seconds: float, fps: int, size: tuple[int, int]) -> Iterator[np.ndarray]:
    """A benign clip's frames: ``render_frame(seed, …)`` slowed down ``SLOW`` times."""
    for i in range(round(seconds * fps)):
        yield render_frame(seed, i, fps * SLOW, size)


@dataclass(frozen=True, slots=True)
class Splice:
    """``seconds`` of a known item from stream time ``start``: a clip (``clip_frames(seed, …)``,
    played from its first frame) or, with ``still``, the image ``generate_image(seed, …, "mixed")``."""

    seed: int
    start: float
    seconds: float
    still: bool = False


def add_logo(rgb: np.ndarray, seed: int = 0, alpha: float = 1.0) -> np.ndarray:
    """A broadcaster's logo: a box with a pattern, 1/10 of the width, top right; ``alpha`` < 1
    blends it with the picture, as a translucent on-screen logo."""
    out = rgb.copy()
    h, w = out.shape[:2]
    lw, lh = max(8, w // 10), max(6, h // 14)
    x0, y0 = w - lw - w // 40, h // 30
    rng = np.random.default_rng(1000 + seed)
    colour = rng.integers(40, 220, 3).astype(np.uint8)
    out[y0 : y0 + lh, x0 : x0 + lw] = colour
    stripes = (np.arange(lw) // max(2, lw // 8)) % 2 == 0
    out[y0 + lh // 3 : y0 + 2 * lh // 3, x0 : x0 + lw][:, stripes] = 255 - colour
    if alpha < 1.0:
        box = (slice(y0, y0 + lh), slice(x0, x0 + lw))
        out[box] = np.round(alpha * out[box] + (1 - alpha) * rgb[box]).astype(np.uint8)
    return out


#: the size known stills are generated at (a stream of another shape shows them with bars)
STILL_SIZE = (640, 360)


def still_frame(seed: int, size: tuple[int, int]) -> np.ndarray:
    """The still ``generate_image(seed, *STILL_SIZE, "mixed")`` fitted into a frame of ``size``
    with black bars, as a player shows a photo of another shape."""
    width, height = size
    img = generate_image(seed, *STILL_SIZE, style="mixed").convert("RGB")
    scale = min(width / img.width, height / img.height)
    fitted = img.resize(
        (max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.Resampling.LANCZOS
    )
    out = np.zeros((height, width, 3), np.uint8)
    x0, y0 = (width - fitted.width) // 2, (height - fitted.height) // 2
    out[y0 : y0 + fitted.height, x0 : x0 + fitted.width] = np.asarray(fitted)
    return out


def stream_frames(
    background: int,
    seconds: float,
    fps: int,
    size: tuple[int, int],
    splices: Sequence[Splice] = (),
    logo: bool = False,
) -> Iterator[np.ndarray]:
    """The frames of a generated stream: background ``background`` with ``splices`` over it."""
    stills = {s.seed: still_frame(s.seed, size) for s in splices if s.still}
    for i in range(round(seconds * fps)):
        t = i / fps
        frame = None
        for s in splices:
            if s.start <= t < s.start + s.seconds:
                frame = (
                    stills[s.seed]
                    if s.still
                    else render_frame(s.seed, round((t - s.start) * fps), fps * SLOW, size)
                )
                break
        if frame is None:
            frame = render_frame(background, i, fps * SLOW, size)
        yield add_logo(frame, background) if logo else frame


def write_stream(
    path: Path | str,
    frames: Iterator[np.ndarray],
    *,
    fps: int,
    size: tuple[int, int],
    container: str = "hls",
    bit_rate: int | None = None,
    segment_seconds: int = 2,
    options: dict[str, str] | None = None,
) -> Path | str:
    """Encode ``frames`` to ``path``: an HLS playlist (``.m3u8`` with its ``.ts`` segments beside
    it), or an ``mpegts``/``mp4`` file; or to a URL FFmpeg writes to (``rtmp://…`` with container
    ``flv``; ``options`` are the muxer's and protocol's, e.g. ``{"listen": "1"}`` to serve it).
    ``bit_rate`` (bits/s) lowers the quality, as a re-encode does."""
    width, height = size
    options = dict(options or {})
    if container == "hls":
        assert isinstance(path, Path)
        options |= {
            "hls_time": str(segment_seconds),
            "hls_list_size": "0",
            "hls_playlist_type": "vod",
            "hls_segment_filename": str(path.parent / f"{path.stem}-%03d.ts"),
        }
    with av.open(str(path), mode="w", format=container, options=options) as out:
        stream = out.add_stream(_codec(), rate=Fraction(fps))
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.thread_count = 1
        stream.codec_context.gop_size = fps * segment_seconds  # a key frame at every segment start
        if bit_rate:
            stream.bit_rate = bit_rate
        for rgb in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path
