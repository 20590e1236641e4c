"""Benign generated pictures that several test modules share."""

from __future__ import annotations

import io

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


def jpeg(img: Image.Image, quality: int = 90, exif: Image.Exif | None = None) -> bytes:
    """``img`` as JPEG bytes, with ``exif`` when given."""
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality, exif=exif if exif is not None else b"")
    return buf.getvalue()


def camera_exif(
    serial: str | None, when: str = "2023:05:06 07:08:09", gps: tuple[float, float] | None = None
) -> Image.Exif:
    """EXIF of a made-up camera (DemoCam DC-1): taken ``when``, body ``serial``, at whole-degree ``gps``."""
    ex = Image.Exif()
    ex[0x010F], ex[0x0110] = "DemoCam", "DC-1"
    ifd = ex.get_ifd(0x8769)
    ifd[0x9003] = when
    if serial:
        ifd[0xA431] = serial
    if gps:
        g = ex.get_ifd(0x8825)
        g[1], g[2], g[3], g[4] = "N", (float(int(gps[0])), 0.0, 0.0), "E", (float(int(gps[1])), 0.0, 0.0)
    return ex
