"""The edits a known picture goes through before it turns up again, each parameterised and seeded.

A transform takes an RGB picture and a random generator and returns either a new picture or the
bytes of a file (for re-encodings). :func:`apply_transform` always returns file bytes, so every
query goes through the same decoder (``opspoor.media.image.decode_image``) as a scanned file:
pictures are written as BMP, which is lossless and costs no compression time.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont, ImageOps

Result = Image.Image | bytes
Step = Callable[[Image.Image, np.random.Generator], Result]


@dataclass(frozen=True)
class Transform:
    name: str  # e.g. "crop 10% off-centre"
    family: (
        str  # groups the table: encode, photometric, overlay, crop, pad, screenshot, dihedral, rotate, combo
    )
    steps: tuple[Step, ...]


def apply_transform(t: Transform, img: Image.Image, rng: np.random.Generator) -> bytes:
    """The bytes of the file that ``t`` makes from ``img`` (RGB)."""
    current: Result = img
    for step in t.steps:
        if isinstance(current, bytes):
            with Image.open(io.BytesIO(current)) as im:
                current = im.convert("RGB")
        current = step(current, rng)
    return current if isinstance(current, bytes) else encode_bmp(current)


def encode_bmp(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.convert("RGB").save(buf, "BMP")
    return buf.getvalue()


# --- encodings ----------------------------------------------------------------------------------


def jpeg(quality: int) -> Step:
    def step(img: Image.Image, rng: np.random.Generator) -> bytes:
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=quality)
        return buf.getvalue()

    return step


def webp(quality: int) -> Step:
    def step(img: Image.Image, rng: np.random.Generator) -> bytes:
        buf = io.BytesIO()
        img.save(buf, "WEBP", quality=quality)
        return buf.getvalue()

    return step


# --- photometric and scale -----------------------------------------------------------------------


def resize(factor: float) -> Step:
    def step(img: Image.Image, rng: np.random.Generator) -> Image.Image:
        size = (max(1, round(img.width * factor)), max(1, round(img.height * factor)))
        return img.resize(size, Image.Resampling.LANCZOS)

    return step


def blur(relative_radius: float) -> Step:
    """Gaussian blur with a radius relative to the longer side (scale-free)."""

    def step(img: Image.Image, rng: np.random.Generator) -> Image.Image:
        return img.filter(ImageFilter.GaussianBlur(relative_radius * max(img.size)))

    return step


def noise(sigma: float) -> Step:
    def step(img: Image.Image, rng: np.random.Generator) -> Image.Image:
        a = np.asarray(img, dtype=np.float32)
        a = a + rng.normal(0.0, sigma, size=a.shape).astype(np.float32)
        return Image.fromarray(np.clip(a + 0.5, 0, 255).astype(np.uint8))

    return step


def gamma(g: float) -> Step:
    lut = [round(255 * (i / 255) ** g) for i in range(256)] * 3

    def step(img: Image.Image, rng: np.random.Generator) -> Image.Image:
        return img.point(lut)

    return step


def contrast(factor: float) -> Step:
    def step(img: Image.Image, rng: np.random.Generator) -> Image.Image:
        return ImageEnhance.Contrast(img).enhance(factor)

    return step


def grayscale(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    return img.convert("L").convert("RGB")


# --- overlays -------------------------------------------------------------------------------------

_WORDS = (
    "when", "the", "monday", "coffee", "finally", "weekend", "nobody", "me", "cat", "plans", "wifi",
    "works", "again", "mood", "every", "time", "my", "code", "compiles", "first", "try", "lunch",
)  # fmt: skip


def _phrase(rng: np.random.Generator, n: int) -> str:
    return " ".join(_WORDS[int(i)] for i in rng.integers(len(_WORDS), size=n)).upper()


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=max(8, size))


def _text_width(
    draw: ImageDraw.ImageDraw, text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont
) -> int:
    box = draw.textbbox((0, 0), text, font=font)
    return int(box[2] - box[0])


def caption(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Meme style: white capitals with a black outline, at the top and the bottom."""
    out = img.copy()
    draw = ImageDraw.Draw(out)
    size = round(0.09 * out.height)
    for y_share in (0.03, 0.85):
        text = _phrase(rng, int(rng.integers(2, 5)))
        font = _font(size)
        while _text_width(draw, text, font) > 0.95 * out.width and size > 8:
            size = int(size * 0.9)
            font = _font(size)
        x = (out.width - _text_width(draw, text, font)) // 2
        draw.text(
            (x, round(y_share * out.height)),
            text,
            font=font,
            fill=(255, 255, 255),
            stroke_width=max(1, size // 12),
            stroke_fill=(0, 0, 0),
        )
    return out


def watermark(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A half-transparent logo (disc and name) in a random corner, about a fifth of the width."""
    base = img.convert("RGBA")
    layer = Image.new("RGBA", base.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    w = round(0.2 * base.width)
    h = round(0.25 * w)
    x = round(0.03 * base.width) if rng.random() < 0.5 else base.width - w - round(0.03 * base.width)
    y = round(0.03 * base.height) if rng.random() < 0.5 else base.height - h - round(0.03 * base.height)
    draw.ellipse(
        (x, y, x + h, y + h), fill=(255, 255, 255, 150), outline=(0, 0, 0, 150), width=max(1, h // 10)
    )
    draw.text((x + h + h // 4, y + h // 8), "PIXSHARE", font=_font(round(0.6 * h)), fill=(255, 255, 255, 160))
    return Image.alpha_composite(base, layer).convert("RGB")


# --- geometry -------------------------------------------------------------------------------------


def crop(fraction: float, off_centre: bool) -> Step:
    """Remove ``fraction`` of the width and of the height; centred, or split at random between sides."""

    def step(img: Image.Image, rng: np.random.Generator) -> Image.Image:
        ax, ay = (rng.uniform(0, 1), rng.uniform(0, 1)) if off_centre else (0.5, 0.5)
        cw, ch = fraction * img.width, fraction * img.height
        left, top = round(cw * ax), round(ch * ay)
        return img.crop((left, top, left + round(img.width - cw), top + round(img.height - ch)))

    return step


def _colour(rng: np.random.Generator) -> tuple[int, int, int]:
    c = rng.integers(0, 256, size=3)
    return int(c[0]), int(c[1]), int(c[2])


def pad(fraction: float, coloured: bool, sides: str = "all") -> Step:
    """Add borders: ``all`` sides (``fraction`` of each dimension, split evenly), or a ``letterbox``
    (``fraction`` of the height, above and below)."""

    def step(img: Image.Image, rng: np.random.Generator) -> Image.Image:
        colour = _colour(rng) if coloured else (0, 0, 0)
        dx = round(fraction * img.width / 2) if sides == "all" else 0
        dy = round(fraction * img.height / 2)
        canvas = Image.new("RGB", (img.width + 2 * dx, img.height + 2 * dy), colour)
        canvas.paste(img, (dx, dy))
        return canvas

    return step


def flip(horizontal: bool) -> Step:
    def step(img: Image.Image, rng: np.random.Generator) -> Image.Image:
        return ImageOps.mirror(img) if horizontal else ImageOps.flip(img)

    return step


def rotate_right_angle(degrees: int) -> Step:
    ops = {90: Image.Transpose.ROTATE_90, 180: Image.Transpose.ROTATE_180, 270: Image.Transpose.ROTATE_270}

    def step(img: Image.Image, rng: np.random.Generator) -> Image.Image:
        return img.transpose(ops[degrees])

    return step


def rotate(degrees: float) -> Step:
    """Rotate about the centre, same size, the uncovered corners black (as an editor does)."""

    def step(img: Image.Image, rng: np.random.Generator) -> Image.Image:
        return img.rotate(degrees, resample=Image.Resampling.BICUBIC, expand=False, fillcolor=(0, 0, 0))

    return step


def rotate_random(low: float, high: float) -> Step:
    """Rotate by an angle drawn uniformly from ``low``..``high`` degrees, either way: angles off
    any grid, so that a grid of stored rotations is not measured only at its own angles."""

    def step(img: Image.Image, rng: np.random.Generator) -> Image.Image:
        degrees = float(rng.uniform(low, high)) * (1 if rng.random() < 0.5 else -1)
        return img.rotate(degrees, resample=Image.Resampling.BICUBIC, expand=False, fillcolor=(0, 0, 0))

    return step


# --- screenshots ------------------------------------------------------------------------------------


def _ui_colours(rng: np.random.Generator) -> tuple[tuple[int, int, int], ...]:
    """Background, panel, bar and text colours of a light or dark theme."""
    if rng.random() < 0.5:
        return (245, 245, 245), (232, 234, 237), (222, 225, 230), (40, 40, 40)
    return (32, 33, 36), (45, 46, 50), (58, 60, 64), (220, 220, 220)


def _text_lines(
    canvas: Image.Image,
    rng: np.random.Generator,
    box: tuple[int, int, int, int],
    background: tuple[int, int, int],
    colour: tuple[int, int, int],
    size: int,
) -> None:
    """Lines of text in ``box``, clipped to it as a user interface clips a list."""
    x0, y0, x1, y1 = box
    panel = Image.new("RGB", (x1 - x0, y1 - y0), background)
    draw = ImageDraw.Draw(panel)
    font = _font(size)
    y = size // 2
    while y + size < panel.height:
        draw.text((size // 2, y), _phrase(rng, int(rng.integers(1, 4))).lower(), font=font, fill=colour)
        y += round(1.8 * size)
    canvas.paste(panel, (x0, y0))


def screenshot_desktop(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """The picture shown in an image viewer: title bar, toolbar, side panel, status bar, margins."""
    bg, panel, bar, text = _ui_colours(rng)
    shown = img.resize(
        (round(img.width * 0.8), round(img.height * 0.8)), Image.Resampling.BICUBIC, reducing_gap=2.0
    )
    side = round(0.3 * shown.width)
    title, tools, status = round(0.05 * shown.height), round(0.06 * shown.height), round(0.04 * shown.height)
    margin_x, margin_y = round(0.06 * shown.width), round(0.06 * shown.height)
    width = side + 2 * margin_x + shown.width
    height = title + tools + 2 * margin_y + shown.height + status
    canvas = Image.new("RGB", (width, height), bg)
    draw = ImageDraw.Draw(canvas)
    left_panel = rng.random() < 0.5
    px = 0 if left_panel else width - side
    draw.rectangle((0, 0, width, title), fill=bar)
    draw.text((title, title // 5), "holiday_0412.jpg - Viewer", font=_font(round(0.6 * title)), fill=text)
    for i in range(3):
        cx = width - (i + 1) * title
        draw.ellipse((cx, title // 4, cx + title // 2, title // 4 + title // 2), fill=text)
    draw.rectangle((0, title, width, title + tools), fill=panel)
    draw.line((0, title + tools, width, title + tools), fill=bar, width=2)
    for i in range(8):
        x = title + i * round(1.5 * tools)
        draw.rectangle((x, title + tools // 4, x + tools // 2, title + 3 * tools // 4), outline=text, width=2)
    draw.rectangle((px, title + tools, px + side, height - status), fill=panel)
    _text_lines(
        canvas, rng, (px, title + tools, px + side, height - status), panel, text, max(8, round(0.35 * tools))
    )
    draw.rectangle((0, height - status, width, height), fill=bar)
    draw.text(
        (status, height - status + status // 5),
        "1 of 24  ·  100 %",
        font=_font(round(0.6 * status)),
        fill=text,
    )
    x = (side if left_panel else 0) + margin_x
    canvas.paste(shown, (x, title + tools + margin_y))
    return canvas


def screenshot_phone(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A phone screen: status bar and app header above the picture (full width), caption and buttons below."""
    bg, panel, bar, text = _ui_colours(rng)
    width = img.width
    shown = img
    status, header = round(0.05 * width), round(0.12 * width)
    below = round(0.45 * width)
    height = status + header + shown.height + below
    canvas = Image.new("RGB", (width, height), bg)
    draw = ImageDraw.Draw(canvas)
    draw.rectangle((0, 0, width, status), fill=bar)
    draw.text((status, status // 6), "12:41", font=_font(round(0.6 * status)), fill=text)
    draw.ellipse((status, status + header // 4, status + header // 2, status + 3 * header // 4), fill=panel)
    draw.text(
        (2 * status + header // 2, status + header // 3), "someone_else", font=_font(header // 3), fill=text
    )
    top = status + header
    canvas.paste(shown, (0, top))
    y = top + shown.height + round(0.03 * width)
    for i in range(4):
        x = round(0.04 * width) + i * round(0.1 * width)
        draw.ellipse((x, y, x + round(0.06 * width), y + round(0.06 * width)), outline=text, width=3)
    _text_lines(canvas, rng, (0, y + round(0.09 * width), width, height), bg, text, round(0.04 * width))
    return canvas


# --- the suite ------------------------------------------------------------------------------------


def _t(name: str, family: str, *steps: Step) -> Transform:
    return Transform(name, family, tuple(steps))


def default_suite() -> list[Transform]:
    """The transforms of ``opspoor eval robustness`` (issue 6), in table order."""
    suite = [
        _t("jpeg q90", "encode", jpeg(90)),
        _t("jpeg q50", "encode", jpeg(50)),
        _t("jpeg q20", "encode", jpeg(20)),
        _t("webp q75", "encode", webp(75)),
        _t("resize 0.5", "photometric", resize(0.5)),
        _t("resize 0.25", "photometric", resize(0.25)),
        _t("blur", "photometric", blur(0.004)),
        _t("noise", "photometric", noise(12.0)),
        _t("gamma 1.6", "photometric", gamma(1.6)),
        _t("contrast 1.5", "photometric", contrast(1.5)),
        _t("grayscale", "photometric", grayscale),
        _t("caption", "overlay", caption),
        _t("watermark", "overlay", watermark),
    ]
    for f in (5, 10, 20):
        suite.append(_t(f"crop {f}% centre", "crop", crop(f / 100, False)))
        suite.append(_t(f"crop {f}% off-centre", "crop", crop(f / 100, True)))
    for sides, label in (("all", "pad"), ("letterbox", "letterbox")):
        for f in (10, 20):
            for coloured in (False, True):
                suite.append(
                    _t(
                        f"{label} {f}% {'colour' if coloured else 'black'}",
                        "pad",
                        pad(f / 100, coloured, sides),
                    )
                )
    suite += [
        _t("screenshot desktop", "screenshot", screenshot_desktop),
        _t("screenshot phone", "screenshot", screenshot_phone),
        _t("flip h", "dihedral", flip(True)),
        _t("flip v", "dihedral", flip(False)),
        _t("rotate 90", "dihedral", rotate_right_angle(90)),
        _t("rotate 180", "dihedral", rotate_right_angle(180)),
        _t("rotate 270", "dihedral", rotate_right_angle(270)),
        _t("rotate -8", "rotate", rotate(-8)),
        _t("rotate -3", "rotate", rotate(-3)),
        _t("rotate +3", "rotate", rotate(3)),
        _t("rotate +5", "rotate", rotate(5)),
        _t("rotate +8", "rotate", rotate(8)),
        _t("rotate ±1–8° random", "rotate", rotate_random(1, 8)),
        # combinations of two
        _t("crop 10% off-centre + jpeg q50", "combo", crop(0.1, True), jpeg(50)),
        _t("flip h + pad 20% colour", "combo", flip(True), pad(0.2, True)),
        _t("screenshot + jpeg q75", "combo", screenshot_desktop, jpeg(75)),
        _t("rotate 90 + letterbox 20%", "combo", rotate_right_angle(90), pad(0.2, False, "letterbox")),
        _t("caption + resize 0.5", "combo", caption, resize(0.5)),
        _t("rotate +3 + jpeg q50", "combo", rotate(3), jpeg(50)),
        _t("grayscale + crop 5% off-centre", "combo", grayscale, crop(0.05, True)),
        _t("watermark + flip h", "combo", watermark, flip(True)),
    ]
    return suite


def select(suite: Sequence[Transform], names: Sequence[str] | None) -> list[Transform]:
    """The transforms whose name or family is in ``names`` (all when ``names`` is empty)."""
    if not names:
        return list(suite)
    wanted = set(names)
    return [t for t in suite if t.name in wanted or t.family in wanted]
