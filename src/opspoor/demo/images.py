"""Benign generated images: gradients, shapes, smooth noise ("clouds"), stripes, checkers and text.

Deterministic for a seed, vectorised (a 4000x3000 image takes well under a second), and varied
enough in structure that PDQ hashes of different seeds are far apart. Used by the tests, the demo
and the benchmarks; nothing here resembles a person.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

STYLES = ("gradient", "shapes", "clouds", "stripes", "checkers", "text", "mixed")

_WORDS = (
    "harbour", "meadow", "granite", "lantern", "orbit", "maple", "quartz", "river", "signal", "tundra",
    "violet", "walnut", "zephyr", "beacon", "cobalt", "delta", "ember", "fjord", "glacier", "horizon",
)  # fmt: skip


#: smooth backgrounds (gradients, clouds) are computed at most this large and scaled up
_SMOOTH_SIZE = 256
#: regular patterns (stripes, checkers) are computed at most this large and scaled up
_PATTERN_SIZE = 1024


def generate_image(seed: int, width: int, height: int, style: str | None = None) -> Image.Image:
    """An RGB image of ``width`` x ``height``; ``style`` from ``STYLES`` or chosen by the seed."""
    if width < 1 or height < 1:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    rng = np.random.default_rng(seed)
    if style is None:
        style = STYLES[int(rng.integers(len(STYLES)))]
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; known: {', '.join(STYLES)}")
    size = (width, height)
    if style in ("stripes", "checkers"):
        # modulated by clouds: perfectly regular patterns leave most DCT coefficients at zero,
        # which makes PDQ bits coin flips; real pictures are never that regular
        make = _stripes if style == "stripes" else _checkers
        pattern = np.asarray(_at_size(make, rng, size, _PATTERN_SIZE), dtype=np.float32)
        shade = np.asarray(_at_size(_clouds, rng, size, _SMOOTH_SIZE), dtype=np.float32)
        mix = rng.uniform(0.25, 0.5)
        img = Image.fromarray(np.clip(pattern * (1 - mix) + shade * mix, 0, 255).astype(np.uint8))
    elif style == "clouds":
        img = _at_size(_clouds, rng, size, _SMOOTH_SIZE)
    elif style == "mixed":
        img = _at_size(_clouds if rng.random() < 0.5 else _gradient, rng, size, _SMOOTH_SIZE)
        _draw_shapes(rng, img, int(rng.integers(3, 9)))
        _draw_text(rng, img, int(rng.integers(1, 4)))
    elif style == "gradient":
        img = _at_size(_gradient, rng, size, _SMOOTH_SIZE)
        _draw_shapes(rng, img, 2)  # a plain gradient has almost no PDQ structure
    else:
        img = _at_size(_gradient, rng, size, _SMOOTH_SIZE).point(lambda v: v // 2 + 96)
        if style == "shapes":
            _draw_shapes(rng, img, int(rng.integers(6, 16)))
        else:
            _draw_text(rng, img, int(rng.integers(3, 8)))
    return _add_grain(rng, img)


def _at_size(make, rng: np.random.Generator, size: tuple[int, int], limit: int) -> Image.Image:  # type: ignore[no-untyped-def]
    """``make(rng, w, h)`` computed at most ``limit`` px wide or high, then scaled to ``size``."""
    width, height = size
    scale = min(1.0, limit / max(width, height))
    w, h = max(1, round(width * scale)), max(1, round(height * scale))
    img = Image.fromarray(make(rng, w, h))
    return img if (w, h) == size else img.resize(size, Image.Resampling.BICUBIC)


def _add_grain(rng: np.random.Generator, img: Image.Image) -> Image.Image:
    """Mild sensor-like noise, so that scaling filters meet some fine texture as in photos."""
    amp = int(rng.integers(0, 7))
    if amp == 0:
        return img
    a = np.asarray(img, dtype=np.int16)
    noise = rng.integers(-amp, amp + 1, size=a.shape[:2], dtype=np.int16)[..., None]
    return Image.fromarray(np.clip(a + noise, 0, 255).astype(np.uint8))


def _colours(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(0, 256, size=(n, 3)).astype(np.float32)


def _grid(width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    y = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    x = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :]
    return x, y


def _gradient(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    x, y = _grid(width, height)
    c0, c1, c2 = _colours(rng, 3)
    angle = rng.uniform(0, 2 * np.pi)
    t = (np.cos(angle) * x + np.sin(angle) * y).astype(np.float32)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    r = np.sqrt((x - rng.random()) ** 2 + (y - rng.random()) ** 2)
    u = np.clip(r / max(float(r.max()), 1e-6), 0, 1)
    out = c0 * (1 - t)[..., None] + c1 * t[..., None]
    out = out * (1 - 0.5 * u)[..., None] + c2 * (0.5 * u)[..., None]
    return np.clip(out, 0, 255).astype(np.uint8)


def _clouds(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """Smooth noise: octaves of random grids, upsampled with a smooth filter."""
    acc = np.zeros((height, width), dtype=np.float32)
    amp, total = 1.0, 0.0
    for cells in (3, 6, 12, 24):
        small = rng.random((cells, cells)).astype(np.float32)
        layer = Image.fromarray(small, "F").resize((width, height), Image.Resampling.BICUBIC)
        acc += amp * np.asarray(layer, dtype=np.float32)
        total += amp
        amp *= 0.5
    acc = (acc / total - acc.min() / total) / max(float(np.ptp(acc) / total), 1e-6)
    lo, hi = _colours(rng, 2)
    return np.clip(lo + (hi - lo) * acc[..., None], 0, 255).astype(np.uint8)


def _stripes(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    x, y = _grid(width, height)
    angle = rng.uniform(0, np.pi)
    period = rng.uniform(0.03, 0.25)
    t = (np.cos(angle) * x * width + np.sin(angle) * y * height) / max(width, height)
    wave = 0.5 + 0.5 * np.sin(2 * np.pi * t / period)
    if rng.random() < 0.5:
        wave = (wave > 0.5).astype(np.float32)
    c0, c1 = _colours(rng, 2)
    return np.clip(c0 + (c1 - c0) * wave[..., None], 0, 255).astype(np.uint8)


def _checkers(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    x, y = _grid(width, height)
    nx, ny = rng.uniform(2, 12), rng.uniform(2, 12)
    a = rng.uniform(-0.4, 0.4)
    u = (np.cos(a) * x - np.sin(a) * y) * nx + rng.random()
    v = (np.sin(a) * x + np.cos(a) * y) * ny + rng.random()
    cells = (np.floor(u) + np.floor(v)) % 2
    c0, c1 = _colours(rng, 2)
    out = c0 + (c1 - c0) * cells[..., None]
    shade = 0.75 + 0.25 * x  # a light gradient so that flips of the board differ
    return np.clip(out * shade[..., None], 0, 255).astype(np.uint8)


def _draw_shapes(rng: np.random.Generator, img: Image.Image, count: int) -> None:
    draw = ImageDraw.Draw(img)
    w, h = img.size
    for _ in range(count):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        x0, x1 = sorted(int(v) for v in rng.integers(0, w, 2))
        y0, y1 = sorted(int(v) for v in rng.integers(0, h, 2))
        x1, y1 = max(x1, x0 + max(w // 20, 1)), max(y1, y0 + max(h // 20, 1))
        kind = int(rng.integers(4))
        if kind == 0:
            draw.rectangle((x0, y0, x1, y1), fill=colour)
        elif kind == 1:
            draw.ellipse((x0, y0, x1, y1), fill=colour)
        elif kind == 2:
            pts = [(int(rng.integers(0, w)), int(rng.integers(0, h))) for _ in range(3)]
            draw.polygon(pts, fill=colour)
        else:
            width = max(1, int(min(w, h) * rng.uniform(0.005, 0.04)))
            draw.line((x0, y0, x1, y1), fill=colour, width=width)


def _draw_text(rng: np.random.Generator, img: Image.Image, count: int) -> None:
    draw = ImageDraw.Draw(img)
    w, h = img.size
    for _ in range(count):
        size = max(8, int(min(w, h) * rng.uniform(0.05, 0.2)))
        font = ImageFont.load_default(size=size)
        words = " ".join(_WORDS[int(i)] for i in rng.integers(0, len(_WORDS), int(rng.integers(1, 3))))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        draw.text((int(rng.integers(0, max(w - size, 1))), int(rng.integers(0, max(h - size, 1)))), words,
                  fill=colour, font=font)  # fmt: skip
