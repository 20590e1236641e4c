"""Decode an image safely and bring it to the pixels PDQ's canonical pipeline hashes.

- The type comes from magic bytes (``opspoor.media.sniff``), never from a name; Pillow is told
  which format to use, so it cannot guess another.
- The declared pixel count is checked against ``max_pixels`` from the header, before any pixel is
  allocated (``MediaTooLarge``). Pillow's own decompression-bomb check is switched off because
  this check replaces it (it would otherwise warn or refuse at its fixed limit).
- Truncated or corrupt data raises ``UndecodableMedia`` with the reason; truncated images are
  never silently completed. Pillow's per-file warnings are caught, not printed.
- EXIF orientation is recorded, not applied: Meta's reference tools hash the stored pixels.

Canonical pipeline (see docs/pdq.md): convert to RGB, then scale down to fit within
``target`` x ``target`` (512 for PDQ), keeping the aspect ratio, exactly as Pillow's
``thumbnail((512, 512))`` does in Meta's Python port (same size rounding, bicubic filter,
``reducing_gap=2.0``). JPEGs are decoded at a reduced DCT scale (Pillow ``draft``, libjpeg's
1/2, 1/4, 1/8 scaling) at the smallest scale that leaves the image no smaller than its target size;
``thumbnail`` itself only drafts down to twice the target, so this is the one deliberate
difference, and the conformance tests bound its effect.

Mode conversion to RGB is Pillow's ``convert("RGB")`` (RGBA and LA drop alpha, CMYK, YCbCr, LAB,
HSV, P and 1 as Pillow maps them), done *before* scaling so palette and 1-bit images are scaled
with the anti-aliasing filter too (Pillow's ``thumbnail`` would fall back to nearest neighbour for
them). 16-bit images (``I;16``) are reduced to 8 bits by their high byte, as image viewers show them;
Pillow's ``convert`` would clip every value above 255 to white (python-threatexchange does that:
``clipped_16bit_rgb`` gives its picture for one more query hash).
"""

from __future__ import annotations

import io
import math
import re
import struct
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numba import njit
from PIL import Image

from opspoor.errors import MediaTooLarge, OpspoorError, UndecodableMedia, UnsupportedMedia
from opspoor.media.exif import ExifInfo, read_exif
from opspoor.media.limits import MAX_PIXELS
from opspoor.media.sniff import SNIFF_BYTES, sniff

DEFAULT_MAX_PIXELS = MAX_PIXELS  # one limit for every caller (media.limits)
PDQ_TARGET = 512

# Our max_pixels check (from the header, before allocation) replaces Pillow's bomb check.
Image.MAX_IMAGE_PIXELS = None

#: sniffed type -> the Pillow format allowed to open it
_PIL_FORMATS: dict[str, tuple[str, ...]] = {
    "jpeg": ("JPEG",),
    "png": ("PNG",),
    "gif": ("GIF",),
    "webp": ("WEBP",),
    "bmp": ("BMP",),
    "tiff": ("TIFF",),
    "heic": ("HEIF",),
    "heif": ("HEIF",),
    "avif": ("AVIF", "HEIF"),
}

_heif_registered = False


def _register_heif() -> None:
    """Register pillow-heif's opener once (lazily: most scans never see a HEIF file)."""
    global _heif_registered
    if not _heif_registered:
        from pillow_heif import register_heif_opener

        register_heif_opener()
        Image.init()
        _heif_registered = True


@dataclass(frozen=True, slots=True)
class LoadedPixels:
    """The pixels a decode loaded before scaling them to its target: a JPEG at its DCT scale
    (``scale``), any other image whole. A larger target that a decode of the same bytes would
    draft at the same scale is scaled from them, to the same pixels, without decoding again."""

    image: Image.Image  # loaded; RGB, L or (a drafted colour JPEG) YCbCr
    width: int  # stored dimensions
    height: int
    scale: int  # the DCT scale drafted at (1: not scaled down)
    box: tuple[float, float, float, float] | None  # the draft's box (None: not drafted)
    ycc: bool  # still YCbCr: converted after scaling, as libjpeg converts

    def fit(self, target: int) -> np.ndarray | None:
        """RGB fit within ``target`` as ``decode_image(target=target)`` gives it, or None when that
        decode would draft at another scale (these pixels are too few, or it would not draft)."""
        size = fit_within(self.width, self.height, target)
        if self.box is not None and (
            size == (self.width, self.height) or _draft_scale(self.width, self.height, size) != self.scale
        ):
            return None
        return _scale_loaded(self, size)  # the same scale: at least ``size`` pixels (draft rounds up)

    def most(self, target: int) -> np.ndarray:
        """RGB fit within ``target`` from these pixels alone: what :meth:`fit` gives when a decode
        for ``target`` would draft at the same scale, else every pixel loaded (a JPEG at its DCT
        scale: fewer than ``target`` asks for, at least the 512 it was drafted for, and no second
        decode, which cost the default scan about a quarter of its time: docs/benchmarks.md)."""
        rgb = self.fit(target)
        if rgb is not None:
            return rgb
        assert self.box is not None  # (fit serves every target of pixels that were not drafted)
        own = max(1, math.floor(max(self.box[2], self.box[3])))
        return _scale_loaded(self, fit_within(self.width, self.height, min(own, target)))


def _draft_scale(width: int, height: int, size: tuple[int, int]) -> int:
    """The DCT scale Pillow's JPEG ``draft`` picks for ``size`` (JpegImagePlugin.draft)."""
    ratio = min(width // size[0], height // size[1])
    return next(s for s in (8, 4, 2, 1) if ratio >= s)


@dataclass(frozen=True, slots=True)
class DecodedImage:
    rgb: np.ndarray  # H, W, 3 uint8, already scaled to fit PDQ's 512x512 target (canonical pipeline)
    width: int  # original stored dimensions
    height: int
    format: str  # jpeg, png, gif, webp, bmp, tiff, heic, heif, avif
    mode: str  # original PIL mode
    orientation: int | None  # EXIF orientation, recorded, NOT applied
    exif: ExifInfo | None
    #: the pixels loaded before scaling, with ``decode_image(keep=True)``: regions are then cut from
    #: a larger picture (``redecoder``) without decoding the file a second time
    loaded: LoadedPixels | None = None


def fit_within(width: int, height: int, target: int) -> tuple[int, int]:
    """Size that fits within target x target keeping the aspect ratio, rounded as Pillow's thumbnail."""
    if width <= target and height <= target:
        return width, height
    aspect = width / height
    x = y = target
    if x / y >= aspect:
        x = _round_aspect(y * aspect, key=lambda n: abs(aspect - n / y))
    else:
        y = _round_aspect(x / aspect, key=lambda n: 0 if n == 0 else abs(aspect - x / n))
    return x, y


def _round_aspect(number: float, key: object) -> int:
    return max(min(math.floor(number), math.ceil(number), key=key), 1)  # type: ignore[call-overload]


def to_rgb(img: Image.Image) -> Image.Image:
    """RGB as Meta's Python port sees it (Pillow ``convert("RGB")``), except 16-bit: high byte."""
    if img.mode == "RGB":
        return img
    if img.mode.startswith("I;16"):
        high = (np.asarray(img).astype(np.uint16) >> 8).astype(np.uint8)
        return Image.fromarray(high, "L").convert("RGB")
    return img.convert("RGB")


def clipped_16bit_rgb(data: bytes, *, where: str | None = None) -> np.ndarray | None:
    """A 16-bit grey image (``I;16``) as python-threatexchange and HMA hash it: Pillow's
    ``convert("RGB")``, which clips every value above 255 to white, at full size (their
    ``pdq_hasher`` gives that array to ``pdqhash.compute``; ``pdq_from_rgb`` of it is their hash);
    None for any other image. A list made that way holds this picture's PDQ, far from the one of
    the high bytes (``to_rgb``). Call it on data that ``decode_image`` accepted (its size checks
    are not repeated)."""
    fmt = sniff(bytes(data[:SNIFF_BYTES])).type
    if fmt not in _PIL_FORMATS:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with _open(data, fmt, where) as img:
            if not img.mode.startswith("I;16"):
                return None
            try:
                return np.asarray(img.convert("RGB"))
            except Exception as exc:
                raise UndecodableMedia(f"cannot decode {fmt}: {_reason(exc)}", where) from None


def _libjpeg_ycc_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """libjpeg's fixed-point YCbCr -> RGB tables (jdcolor.c), so our conversion matches its output."""
    one_half, x = 1 << 15, np.arange(256, dtype=np.int64) - 128

    def fix(v: float) -> int:
        return int(v * (1 << 16) + 0.5)

    cr_r = (fix(1.40200) * x + one_half) >> 16
    cb_b = (fix(1.77200) * x + one_half) >> 16
    cr_g = -fix(0.71414) * x
    cb_g = -fix(0.34414) * x + one_half
    return cr_r.astype(np.int32), cb_b.astype(np.int32), cr_g, cb_g


_CR_R, _CB_B, _CR_G, _CB_G = _libjpeg_ycc_tables()


@njit(cache=True, nogil=True)
def _ycc_to_rgb(ycc: np.ndarray, cr_r, cb_b, cr_g, cb_g) -> np.ndarray:  # type: ignore[no-untyped-def]  # pragma: no cover
    # numba: a per-pixel table lookup; NumPy would need a dozen full-size temporaries
    h, w = ycc.shape[0], ycc.shape[1]
    out = np.empty((h, w, 3), dtype=np.uint8)
    for i in range(h):
        for j in range(w):
            y = np.int64(ycc[i, j, 0])
            cb = ycc[i, j, 1]
            cr = ycc[i, j, 2]
            r = y + cr_r[cr]
            g = y + ((cb_g[cb] + cr_g[cr]) >> 16)
            b = y + cb_b[cb]
            out[i, j, 0] = min(max(r, 0), 255)
            out[i, j, 1] = min(max(g, 0), 255)
            out[i, j, 2] = min(max(b, 0), 255)
    return out


def _load_pixels(img: Image.Image, fmt: str, target: int) -> LoadedPixels:
    width, height = img.size
    size = fit_within(width, height, target)
    box, drafted_ycc, scale = None, False, 1
    if fmt == "jpeg" and size != (width, height):
        # libjpeg DCT scaling, never below the target size. Colour JPEGs stay in YCbCr until
        # they are small: libjpeg then skips its colour conversion (about a fifth of the decode
        # time), and converting after the scale-down differs by rounding only.
        ycc = img.mode == "RGB" and img.info.get("adobe_transform") != 0
        drafted = img.draft("YCbCr" if ycc else None, size)
        if drafted is not None:
            box, drafted_ycc = drafted[1], drafted[0] == "YCbCr"
            scale = round(width / box[2])  # draft's box is (0, 0, width / scale, height / scale)
    img.load()
    if img.mode not in ("RGB", "L") and not drafted_ycc:  # L: converting after scaling is the same
        img = to_rgb(img)
    return LoadedPixels(img, width, height, scale, box, drafted_ycc)


def _scale_loaded(loaded: LoadedPixels, size: tuple[int, int]) -> np.ndarray:
    img = loaded.image
    if img.size != size:
        img = img.resize(size, Image.Resampling.BICUBIC, box=loaded.box, reducing_gap=2.0)
    if loaded.ycc:  # convert as libjpeg does; Pillow's conversion truncates (a -0.4 bias)
        return _ycc_to_rgb(np.asarray(img), _CR_R, _CB_B, _CR_G, _CB_G)
    img = to_rgb(img)
    return np.asarray(img)


def _open(data: bytes, fmt: str, where: str | None) -> Image.Image:
    if fmt in ("heic", "heif", "avif"):
        _register_heif()
    try:
        return Image.open(io.BytesIO(data), formats=_PIL_FORMATS[fmt])
    except Image.DecompressionBombError as exc:  # only if someone re-enabled Pillow's limit
        raise MediaTooLarge(str(exc), where) from None
    except Exception as exc:
        raise UndecodableMedia(f"cannot read {fmt} header: {_reason(exc)}", where) from None


_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


def png_image_bytes(width: int, height: int, depth: int, color: int, interlaced: bool) -> int:
    """The filtered scanline bytes a PNG of this header must inflate to (every pass, each row with
    its filter byte)."""
    bits = depth * _PNG_CHANNELS.get(color, 1)
    passes = _ADAM7 if interlaced else ((0, 0, 1, 1),)
    total = 0
    for x0, y0, dx, dy in passes:
        w, h = -(-(width - x0) // dx), -(-(height - y0) // dy)
        if w > 0 and h > 0:
            total += h * (1 + -(-(w * bits) // 8))
    return total


def check_png_holds_its_pixels(data: bytes, where: str | None) -> None:
    """``UndecodableMedia`` when the image data (IDAT) inflates to fewer bytes than the header
    promises. Pillow (up to 13 at least) ends a PNG whose zlib stream ends early without an error
    and leaves the missing rows black, which would hash as a real, mostly black picture. This
    inflates the data once more, discarding it in 1 MiB steps (memory stays flat)."""
    try:
        width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", data[16:29])
        need = png_image_bytes(width, height, depth, color, interlace == 1)
        inflater, got, pos, seen_idat = zlib.decompressobj(), 0, 8, False
        view = memoryview(data)
        while pos + 8 <= len(data) and got < need and not inflater.eof:
            length, kind = struct.unpack(">I4s", view[pos : pos + 8])
            start, pos = pos + 8, pos + 12 + length
            if kind == b"IDAT":
                seen_idat = True
                # fed 64 KiB at a time: the unconsumed tail zlib copies stays that small
                for at in range(start, min(start + length, len(data)), 1 << 16):
                    piece: bytes | memoryview = view[at : min(at + (1 << 16), start + length)]
                    while piece and got < need and not inflater.eof:
                        got += len(inflater.decompress(piece, 1 << 20))
                        piece = inflater.unconsumed_tail
            elif seen_idat:
                break  # the image data is one run of IDAT chunks
    except (struct.error, zlib.error) as exc:
        raise UndecodableMedia(f"cannot decode png: {_reason(exc)}", where) from None
    if got < need:
        raise UndecodableMedia(
            f"png is truncated: its image data holds {got:,} of the {need:,} bytes its "
            f"{width}x{height} header promises",
            where,
        )


#: bytes per pixel of Pillow's image memory by mode (RGB and the like are stored 4 bytes wide)
_PIL_PIXEL_BYTES = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16B": 2, "I;16L": 2}


def decode_memory(data: bytes, *, target: int = PDQ_TARGET) -> int:
    """Bytes :func:`decode_image` of ``data`` at ``target`` holds at its peak, estimated from the
    header alone (nothing is decoded): the pixels loaded (a JPEG at the DCT scale it will be drafted
    at), a converted copy when its mode is not RGB or L, a quarter more for the scaled
    intermediates, and for a 16-bit grey image its second, full-size decode (clip16). 0 for
    anything that is not an image decoded here, or whose header is unreadable (its decode fails
    early)."""
    sniffed = sniff(bytes(data[:SNIFF_BYTES]))
    if sniffed.kind != "image" or sniffed.type not in _PIL_FORMATS:
        return 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            img = _open(data, sniffed.type, None)
        except OpspoorError:
            return 0
        with img:
            width, height, mode = img.size[0], img.size[1], img.mode
    if width <= 0 or height <= 0:
        return 0
    if sniffed.type == "jpeg":
        size = fit_within(width, height, target)
        if size != (width, height):
            scale = _draft_scale(width, height, size)
            width, height = -(-width // scale), -(-height // scale)
    # a 16-bit grey image is decoded a second time, at full size, for its clip16 query hash
    # (``clipped_16bit_rgb``: the 16-bit pixels and their RGB copy) while the first is still held
    clip16 = width * height * (2 + 3) if mode.startswith("I;16") else 0
    pixels = width * height
    loaded = pixels * _PIL_PIXEL_BYTES.get(mode, 4)
    if sniffed.type in ("webp", "heic", "heif", "avif"):
        loaded *= 3  # their decoders fill a buffer of their own, copied into Pillow's (measured ~3x)
    converted = 0 if mode in ("RGB", "L", "YCbCr") else pixels * 4
    return (loaded + converted) * 5 // 4 + clip16


#: how Python shows an object it has no words for (Pillow names the in-memory stream it was given:
#: "cannot identify image file <_io.BytesIO object at 0x7f…>"), which means nothing to a reader
_OBJECT_REPR = re.compile(r"\s*<[\w.]+ object at 0x[0-9a-fA-F]+>")


def _reason(exc: BaseException) -> str:
    text = _OBJECT_REPR.sub("", str(exc)).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def decode_image(
    data: bytes,
    *,
    where: str | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    target: int = PDQ_TARGET,
    keep: bool = False,
) -> DecodedImage:
    """Decode ``data`` (the whole file) to RGB scaled for PDQ, with its EXIF clues; with ``keep``,
    also the pixels loaded before scaling (``DecodedImage.loaded``, for ``redecoder``).

    Raises ``UnsupportedMedia`` (not an image type we decode), ``MediaTooLarge`` (declared pixel
    count above ``max_pixels``) or ``UndecodableMedia`` (truncated or corrupt), each naming ``where``.
    """
    sniffed = sniff(bytes(data[:SNIFF_BYTES]))
    if sniffed.kind != "image" or sniffed.type not in _PIL_FORMATS:
        raise UnsupportedMedia(f"not an image type opspoor decodes (sniffed {sniffed.type})", where)
    fmt = sniffed.type
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        img = _open(data, fmt, where)
        loaded: LoadedPixels | None = None
        kept = False  # set once everything succeeded: any error closes the image
        try:
            width, height = img.size
            if width <= 0 or height <= 0:
                raise UndecodableMedia(f"{fmt} declares an empty image ({width}x{height})", where)
            if width * height > max_pixels:
                raise MediaTooLarge(
                    f"{fmt} declares {width}x{height} = {width * height:,} pixels, above the limit "
                    f"of {max_pixels:,}",
                    where,
                )
            if fmt == "png":
                check_png_holds_its_pixels(data, where)
            mode = img.mode
            loaded = _load_pixels(img, fmt, target)
            rgb = _scale_loaded(loaded, fit_within(width, height, target))
            exif = read_exif(img)  # after load: PNG may keep its eXIf chunk after the pixels
            kept = keep
        except OpspoorError:
            raise
        except MemoryError:
            raise MediaTooLarge(f"out of memory decoding {fmt} ({width}x{height})", where) from None
        except Exception as exc:
            raise UndecodableMedia(f"cannot decode {fmt}: {_reason(exc)}", where) from None
        finally:
            if not (kept and loaded is not None and loaded.image is img):  # closing drops its pixels
                img.close()
    return DecodedImage(
        rgb=rgb,
        width=width,
        height=height,
        format=fmt,
        mode=mode,
        orientation=exif.orientation if exif else None,
        exif=exif,
        loaded=loaded if kept else None,
    )


#: ``target -> RGB``: the same file brought to fit within ``target`` x ``target``
Redecode = Callable[[int], np.ndarray]


def redecoder(
    data: bytes,
    *,
    where: str | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    loaded: LoadedPixels | None = None,
) -> Redecode:
    """The same file brought to fit a larger target, for hashes of its regions
    (``signals.robust.region_lumas``); the canonical pixels are too few for a region. With
    ``loaded`` (``decode_image(keep=True).loaded``) never decoded again: scaled from those pixels,
    which for a JPEG drafted for 512 are 512 to 1,023 on the long side (more only at the 1/8 scale
    of a very large one), so a target above them gets them all (``LoadedPixels.most``); without,
    decoded again at ``target``."""

    def detail(target: int) -> np.ndarray:
        if loaded is not None:
            return loaded.most(target)
        return decode_image(data, where=where, max_pixels=max_pixels, target=target).rgb

    return detail


def decode_with_detail(
    data: bytes, *, where: str | None = None, max_pixels: int = DEFAULT_MAX_PIXELS, keep: bool = True
) -> tuple[DecodedImage, Redecode]:
    """``decode_image`` and the larger pictures its regions are cut from: from the loaded pixels
    when ``keep`` (drop ``DecodedImage.loaded`` once the regions are hashed: a PNG's are all of it)."""
    img = decode_image(data, where=where, max_pixels=max_pixels, keep=keep)
    return img, redecoder(data, where=where, max_pixels=max_pixels, loaded=img.loaded)
