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
