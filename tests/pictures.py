"""Benign generated pictures that several test modules share."""

from __future__ import annotations

import numpy as np
from PIL import Image


def soft_picture(seed: int, size: tuple[int, int] = (480, 360)) -> Image.Image:
    """Soft colour blobs on a flat ground: a benign picture PDQ rates below 50 (a plain wallpaper)."""
    rng = np.random.default_rng(seed)
    w, h = size
    y, x = np.mgrid[0:h, 0:w] / max(w, h)
    c = np.zeros((h, w, 3)) + rng.integers(0, 256, 3)
    for _ in range(4):
        cx, cy, r = rng.uniform(0, 1), rng.uniform(0, 0.75), rng.uniform(0.05, 0.2)
        blob = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * r * r))[..., None]
        c = c * (1 - blob) + blob * rng.integers(0, 256, 3)
    return Image.fromarray(np.clip(c, 0, 255).astype(np.uint8))


def busy_picture(seed: int, size: tuple[int, int] = (800, 600)) -> Image.Image:
    """Many small random shapes over the whole frame: corners everywhere, as in a photograph."""
    from PIL import ImageDraw

    rng = np.random.default_rng(seed)
    w, h = size
    img = Image.new("RGB", size, tuple(int(c) for c in rng.integers(0, 256, 3)))
    draw = ImageDraw.Draw(img)
    for _ in range(120):
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        dx, dy = int(rng.integers(8, w // 8)), int(rng.integers(8, h // 8))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            draw.rectangle((x, y, x + dx, y + dy), fill=colour)
        else:
            draw.ellipse((x, y, x + dx, y + dy), fill=colour)
    return img
