"""Benign generated videos (moving shapes over gradients) for tests, demos and benchmarks."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def _codec() -> str:
    # libx264 where PyAV's FFmpeg has it (smaller, the common case in the field), else MPEG-4 Part 2
    return "libx264" if "libx264" in av.codecs_available else "mpeg4"


def render_frame(seed: int, index: int, fps: int, size: tuple[int, int]) -> np.ndarray:
    """One (H, W, 3) uint8 frame: a drifting two-colour gradient, a grid and moving discs/boxes."""
    width, height = size
    rng = np.random.default_rng(seed)
    c0, c1 = rng.integers(0, 256, (2, 3)).astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    shapes = rng.uniform(0, 1, (6, 7))  # x, y, vx, vy, radius, hue, kind
    t = index / fps
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    u = (np.cos(angle) * x / width + np.sin(angle) * y / height + 0.15 * t) % 1.0
    img = c0 + (c1 - c0) * u[..., None]
    # everything is in relative coordinates, so a resized render is the same picture
    grid = (((x * 12 / width).astype(np.int32) + (y * 9 / height).astype(np.int32)) % 2).astype(np.float32)
    img *= (0.85 + 0.15 * grid)[..., None]
    for sx, sy, vx, vy, r, hue, kind in shapes:
        cx = ((sx + (vx - 0.5) * 0.4 * t) % 1.0) * width
        cy = ((sy + (vy - 0.5) * 0.4 * t) % 1.0) * height
        rad = (0.05 + 0.12 * r) * min(width, height)
        if kind < 0.5:
            mask = (x - cx) ** 2 + (y - cy) ** 2 <= rad**2
        else:
            mask = (np.abs(x - cx) <= rad) & (np.abs(y - cy) <= rad * 0.6)
        colour = 255 * np.array([hue, 1 - hue, (hue * 3) % 1], dtype=np.float32)
        img[mask] = colour
    return np.clip(img, 0, 255).astype(np.uint8)


def generate_video(
    path: Path | str,
    seed: int,
    seconds: float = 3,
    fps: int = 10,
    size: tuple[int, int] = (320, 240),
    container: str = "mp4",
) -> Path:
    """Write a benign video of ``seconds * fps`` frames at ``size`` (width, height); return its path.

    ``container`` is an FFmpeg muxer name: mp4 (default), matroska, avi, mov.
    """
    path = Path(path)
    width, height = size
    if width % 2 or height % 2:
        raise ValueError(f"video size must be even for yuv420p, got {size}")
    with av.open(str(path), mode="w", format=container) as out:
        stream = out.add_stream(_codec(), rate=Fraction(fps))
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.thread_count = 1  # same bytes for the same seed
        for i in range(round(seconds * fps)):
            frame = av.VideoFrame.from_ndarray(render_frame(seed, i, fps, size), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path
