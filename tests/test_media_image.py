"""Image decoding: formats and modes, the pixel limit, corrupt data, silence, orientation."""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from opspoor.demo.images import generate_image
from opspoor.errors import MediaTooLarge, UndecodableMedia, UnsupportedMedia
from opspoor.media.image import decode_image, fit_within
from opspoor.signals.pdq import PDQ, pdq_from_rgb, pdq_hash_image

W, H = 900, 600


@pytest.fixture(scope="module")
def picture() -> Image.Image:
    return generate_image(11, W, H, "mixed")


def encode(img: Image.Image, fmt: str, **options: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **options)
    return buf.getvalue()


def as_mode(img: Image.Image, mode: str) -> Image.Image:
    if mode == "I;16":
        return Image.fromarray(np.asarray(img.convert("L")).astype(np.uint16) * 257)
    if mode in ("P", "PA"):
        p = img.quantize(64)
        return p if mode == "P" else p.convert("PA")
    return img.convert(mode)


CASES = [
    ("JPEG", "RGB"), ("JPEG", "L"), ("JPEG", "CMYK"),
    ("PNG", "RGB"), ("PNG", "RGBA"), ("PNG", "L"), ("PNG", "LA"), ("PNG", "P"), ("PNG", "I;16"), ("PNG", "1"),
    ("GIF", "P"), ("GIF", "L"),
    ("WEBP", "RGB"), ("WEBP", "RGBA"),
    ("BMP", "RGB"), ("BMP", "P"), ("BMP", "L"),
    ("TIFF", "RGB"), ("TIFF", "CMYK"), ("TIFF", "I;16"), ("TIFF", "YCbCr"), ("TIFF", "LAB"), ("TIFF", "F"),
    ("TIFF", "I"), ("TIFF", "PA"),
    ("HEIF", "RGB"), ("AVIF", "RGB"),
]  # fmt: skip
SNIFFED = {"JPEG": "jpeg", "PNG": "png", "GIF": "gif", "WEBP": "webp", "BMP": "bmp", "TIFF": "tiff",
           "HEIF": "heic", "AVIF": "avif"}  # fmt: skip


@pytest.mark.parametrize(("fmt", "mode"), CASES, ids=[f"{f}-{m}" for f, m in CASES])
def test_each_format_and_mode_decodes(picture: Image.Image, fmt: str, mode: str) -> None:
    if fmt == "HEIF":
        pytest.importorskip("pillow_heif").register_heif_opener()
    data = encode(as_mode(picture, mode), fmt)
    decoded = decode_image(data, where=f"test.{fmt.lower()}")
    assert decoded.format == SNIFFED[fmt]
    assert (decoded.width, decoded.height) == (W, H)
    assert decoded.rgb.dtype == np.uint8 and decoded.rgb.shape == (341, 512, 3)
    with Image.open(io.BytesIO(data)) as im:
        assert decoded.mode == im.mode
    # every mode lands near the RGB original (1-bit dithering and JPEG CMYK/LAB are the roughest)
    reference = pdq_hash_image(decode_image(encode(picture, "PNG")))
    assert PDQ.distance(pdq_hash_image(decoded).hash, reference.hash) <= 40
    assert pdq_hash_image(decoded).quality >= 50


def test_sixteen_bit_keeps_its_high_byte() -> None:
    grey = np.tile(np.arange(0, 256, dtype=np.uint16), (64, 2))
    img = Image.fromarray(grey * 256 + 77)  # I;16, low byte 77 everywhere
    decoded = decode_image(encode(img, "PNG"))
    assert np.array_equal(decoded.rgb[..., 0], grey.astype(np.uint8))  # not clipped to white


def test_gif_first_frame(picture: Image.Image) -> None:
    frames = [picture, generate_image(99, W, H, "checkers")]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100)
    first = pdq_hash_image(decode_image(buf.getvalue()))
    assert PDQ.distance(first.hash, pdq_hash_image(decode_image(encode(frames[0], "GIF"))).hash) <= 4
    assert PDQ.distance(first.hash, pdq_hash_image(decode_image(encode(frames[1], "GIF"))).hash) > 60


def test_small_images_are_not_scaled(picture: Image.Image) -> None:
    small = picture.resize((300, 200))
    decoded = decode_image(encode(small, "PNG"))
    assert np.array_equal(decoded.rgb, np.asarray(small))


def test_jpeg_reduced_scale_stays_close_to_full_decode() -> None:
    big = generate_image(4, 4000, 3000, "mixed")
    data = encode(big, "JPEG", quality=92)
    decoded = decode_image(data)
    assert decoded.rgb.shape == (384, 512, 3) and (decoded.width, decoded.height) == (4000, 3000)
    with Image.open(io.BytesIO(data)) as im:
        im.thumbnail((512, 512))
        port = pdq_from_rgb(np.asarray(im.convert("RGB")))
    assert PDQ.distance(pdq_hash_image(decoded).hash, port.hash) <= 8


FITS = [((1600, 1004), (512, 321)), ((1004, 1600), (321, 512)), ((513, 2), (512, 2)), ((5000, 10), (512, 1))]


@pytest.mark.parametrize(("size", "target"), [*FITS, ((512, 512), (512, 512))])
def test_fit_within_rounds_like_thumbnail(size: tuple[int, int], target: tuple[int, int]) -> None:
    assert fit_within(*size, 512) == target
    img = Image.new("L", size)
    img.thumbnail((512, 512))
    assert img.size == target


# --- limits and damage ---------------------------------------------------------------------------


def png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG that declares width x height and holds no pixels."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def test_huge_declared_size_is_refused_before_decoding() -> None:
    data = png_header_only(30_000, 30_000)
    assert len(data) < 100
    with pytest.raises(MediaTooLarge) as err:
        decode_image(data, where="bomb.png")
    assert err.value.where == "bomb.png" and "900,000,000" in str(err.value)


def test_max_pixels_is_configurable(picture: Image.Image) -> None:
    data = encode(picture, "JPEG")
    with pytest.raises(MediaTooLarge):
        decode_image(data, max_pixels=W * H - 1)
    assert decode_image(data, max_pixels=W * H).width == W


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF", "TIFF"])
def test_truncated_file_is_undecodable(picture: Image.Image, fmt: str) -> None:
    data = encode(picture, fmt)
    with pytest.raises(UndecodableMedia) as err:
        decode_image(data[: len(data) // 2], where=f"cut.{fmt.lower()}")
    assert err.value.where == f"cut.{fmt.lower()}"
    assert err.value.message  # a reason is given


def test_garbage_behind_magic_is_undecodable() -> None:
    with pytest.raises(UndecodableMedia):
        decode_image(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4, where="x.jpg")
    with pytest.raises(UndecodableMedia):
        decode_image(png_header_only(10, 10), where="empty.png")  # header, no pixel data


def test_non_image_is_unsupported() -> None:
    with pytest.raises(UnsupportedMedia):
        decode_image(b"PK\x03\x04" + b"\x00" * 100, where="a.zip")
    with pytest.raises(UnsupportedMedia):
        decode_image(b"", where="empty")


def test_type_comes_from_magic_bytes_not_from_pillow_guessing(picture: Image.Image) -> None:
    # a PNG body behind JPEG magic must not be decoded as PNG
    png = encode(picture, "PNG")
    with pytest.raises(UndecodableMedia):
        decode_image(b"\xff\xd8\xff" + png[3:])


def test_no_warnings_and_nothing_on_stderr(picture: Image.Image, capfd: pytest.CaptureFixture[str]) -> None:
    p = picture.quantize(16)
    p.info["transparency"] = bytes(range(16))  # Pillow warns about byte transparency on convert
    odd = [
        encode(p, "PNG"),
        encode(picture, "JPEG", exif=b"Exif\x00\x00II*\x00\x08\x00\x00\x00\xff\xff"),  # broken EXIF
        encode(picture.convert("CMYK"), "TIFF"),
    ]
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        for data in odd:
            decode_image(data)
        for bad in (png_header_only(50_000, 50_000), encode(picture, "JPEG")[:3000]):
            with pytest.raises((MediaTooLarge, UndecodableMedia)):
                decode_image(bad)
    assert [str(w.message) for w in seen] == []
    out, err = capfd.readouterr()
    assert err == "" and out == ""


# --- orientation ---------------------------------------------------------------------------------


def test_orientation_recorded_not_applied(picture: Image.Image) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    decoded = decode_image(encode(picture, "JPEG", exif=exif.tobytes()))
    assert decoded.orientation == 6 and decoded.exif is not None and decoded.exif.orientation == 6
    assert decoded.rgb.shape == (341, 512, 3)  # stored pixels, not turned upright
    plain = decode_image(encode(picture, "JPEG"))
    assert plain.orientation is None
    assert PDQ.distance(pdq_hash_image(decoded).hash, pdq_hash_image(plain).hash) <= 2


def test_meta_exif_rotation_files(reference: Path) -> None:
    folder = reference / "pdq" / "data" / "reg-test-input" / "exif-rotn"
    for n in (1, 3, 6, 8):
        data = (folder / f"exif-rotn-{n}.jpg").read_bytes()
        decoded = decode_image(data)
        assert decoded.orientation == n
        with Image.open(io.BytesIO(data)) as im:
            stored = fit_within(*im.size, 512)
            upright = ImageOps.exif_transpose(im).size
        assert decoded.rgb.shape[1::-1] == stored
        if n in (6, 8):
            assert upright[::-1] == (decoded.width, decoded.height)  # applying it would have turned it


@pytest.mark.parametrize(
    ("mode", "fmt", "options"),
    [
        ("RGB", "JPEG", {"quality": 90}),
        ("RGB", "JPEG", {"quality": 90, "progressive": True}),
        ("L", "JPEG", {"quality": 90}),
        ("CMYK", "JPEG", {"quality": 90}),
        ("RGB", "PNG", {}),
        ("P", "PNG", {}),
    ],
)
def test_kept_pixels_give_what_a_second_decode_gives(
    mode: str, fmt: str, options: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regions are cut from the pixels the first decode loaded when a decode at the larger target
    would draft the same ones: bit for bit the same picture, without decoding the file again; a
    larger target than those pixels gets all of them, and still no second decode."""
    from opspoor.media import image as image_mod

    data = encode(as_mode(generate_image(5, 2000, 1500, "mixed"), mode), fmt, **options)
    decoded = decode_image(data, keep=True)
    assert decoded.loaded is not None and decode_image(data).loaded is None  # kept only when asked
    assert np.array_equal(decoded.rgb, decode_image(data).rgb)
    served = 0
    for target in (600, 800, 1000, 1024, 1500, 2048):
        kept = decoded.loaded.fit(target)
        again = decode_image(data, target=target).rgb
        if kept is not None:
            assert np.array_equal(kept, again), target
            served += 1
    # a JPEG drafted at 1/2 for 512 (1000 x 750) serves targets up to 1000; other formats all
    assert served == (3 if fmt == "JPEG" else 6)

    calls: list[int] = []
    real = image_mod.decode_image

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(kwargs.get("target", 0))
        return real(*args, **kwargs)

    monkeypatch.setattr(image_mod, "decode_image", counting)
    detail = image_mod.redecoder(data, loaded=decoded.loaded)
    assert np.array_equal(detail(800), decode_image(data, target=800).rgb)
    assert calls == []  # served from the kept pixels
    if fmt == "JPEG":
        # a decode for 1500 would draft at a larger DCT scale: never decoded again, the kept
        # pixels serve it whole (1000 x 750, drafted at 1/2), as a decode for 1000 gives them
        assert np.array_equal(detail(1500), decode_image(data, target=1000).rgb)
        assert detail(1500).shape == (750, 1000, 3)
    assert calls == []
    # without kept pixels the file is decoded again, at the target asked for
    assert np.array_equal(image_mod.redecoder(data)(1500), decode_image(data, target=1500).rgb)
    assert calls == [1500]


@pytest.mark.parametrize("size", [(2001, 1499), (4100, 3000), (6000, 4200), (700, 500), (1024, 1024)])
def test_kept_jpeg_pixels_serve_exactly_the_targets_a_decode_drafts_alike(size: tuple[int, int]) -> None:
    """Odd sizes (a fractional draft box), the 1/8 scale (4100 is drafted to 513, 6000 to 750),
    scale 1 (700: drafted to YCbCr at full size), and a JPEG drafted to exactly 512 (1024): every
    target served from the kept pixels equals a decode at that target, and those that a decode
    drafts at another scale (or not at all) are left to it."""
    data = encode(generate_image(9, *size, "mixed"), "JPEG", quality=90)
    loaded = decode_image(data, keep=True).loaded
    assert loaded is not None
    served = 0
    for target in (520, 600, 700, 750, 800, 1000, 1100):
        kept = loaded.fit(target)
        if kept is not None:
            assert np.array_equal(kept, decode_image(data, target=target).rgb), target
            served += 1
    # 2001 drafted at 1/2 (1001): up to 1000; 4100 at 1/8 (513): a decode for 520 drafts at 1/4;
    # 6000 at 1/8 (750): up to 750; 700 at 1/1: below its own size; 1024 at 1/2 (512): none
    assert served == {(2001, 1499): 6, (4100, 3000): 0, (6000, 4200): 4, (700, 500): 2, (1024, 1024): 0}[size]
