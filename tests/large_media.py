"""Large benign media for the memory tests and bench/scan_memory.py, generated without holding a
large file in memory: raw (uncompressed) AVI video, BMP written row by row into a zip, and a zip of
such members next to an oversized PNG and a small picture."""

from __future__ import annotations

import hashlib
import io
import struct
import zipfile
from pathlib import Path

import av
import numpy as np

from opspoor.demo.images import generate_image
from opspoor.demo.pngs import png_bytes

MIB = 1 << 20


def raw_video(path: Path, frames: int) -> str:
    """An AVI of uncompressed 1280x720 frames (2.6 MiB each: a grey field, a bright block moving);
    returns its MD5."""
    with av.open(str(path), "w", format="avi") as out:
        stream = out.add_stream("rawvideo", rate=25)
        stream.width, stream.height, stream.pix_fmt = 1280, 720, "bgr24"
        base = np.full((720, 1280, 3), 60, np.uint8)
        base[200:500, 300:700] = 220
        grain = np.random.default_rng(1)
        for i in range(frames):
            pixels = np.roll(base, 8 * i, axis=1)
            pixels[:24] = grain.integers(0, 256, (24, 1280, 3), dtype=np.uint8)  # (no bomb by ratio)
            frame = av.VideoFrame.from_ndarray(pixels, format="bgr24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    md5 = hashlib.md5()
    with path.open("rb") as fh:
        while chunk := fh.read(MIB):
            md5.update(chunk)
    return md5.hexdigest()


def write_bmp(zf: zipfile.ZipFile, name: str, width: int, height: int) -> str:
    """A 24-bit BMP written row by row into the zip (never held whole); returns its MD5."""
    grain = np.random.default_rng(2)
    plain = bytes(range(256)) * (width * 3 // 256) + bytes(width * 3 % 256)
    pixels = len(plain) * height
    head = b"BM" + struct.pack("<IHHI", 54 + pixels, 0, 0, 54)
    head += struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, pixels, 2835, 2835, 0, 0)
    md5 = hashlib.md5(head)
    with zf.open(name, "w", force_zip64=True) as out:
        out.write(head)
        for _ in range(height):
            row = grain.bytes(64) + plain[64:]  # (no bomb by ratio)
            out.write(row)
            md5.update(row)
    return md5.hexdigest()


def jpeg(seed: int) -> bytes:
    buf = io.BytesIO()
    generate_image(seed, 320, 240, style="shapes").save(buf, "JPEG", quality=90)
    return buf.getvalue()


def make_zip(folder: Path, frames: int, bmp_side: int, png_side: int) -> dict[str, str]:
    folder.mkdir(parents=True)
    film = folder.parent / f"{folder.name}-film.avi"
    md5 = {"film.avi": raw_video(film, frames)}
    with zipfile.ZipFile(folder / "big.zip", "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zf.write(film, "film.avi")
        md5["scan.bmp"] = write_bmp(zf, "scan.bmp", bmp_side, bmp_side)
        zf.writestr("huge.png", png_bytes(png_side, png_side))
        zf.writestr("p.jpg", jpeg(7))
    film.unlink()
    md5["p.jpg"] = hashlib.md5(jpeg(7)).hexdigest()
    return md5


def video(width: int, height: int, frames: int, seed: int) -> bytes:
    """An MPEG-4 video of flat colour with a moving block (benign, quick to encode at any size)."""
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        stream = out.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        base = np.full((height, width, 3), 40 + seed * 20, np.uint8)
        for i in range(frames):
            pixels = base.copy()
            x = (i * width // frames) % max(1, width - width // 4)
            pixels[height // 4 : height // 2, x : x + width // 4] = 230
            for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buf.getvalue()
