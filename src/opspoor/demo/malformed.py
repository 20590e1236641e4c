"""A corpus of malformed inputs (all benign), and the error each must become in a scan.

Corrupt and truncated images and video, a decompression-bomb PNG, zip and gzip bombs, encrypted
members, path-traversal names, a truncated zip, a bad tar, a truncated tar.gz, archives nested past
the depth limit, a FIFO, a symlink loop and a broken symlink. Everything is generated here, small and
fast (well under a second); nothing is downloaded.
"""

from __future__ import annotations

import gzip
import io
import os
import struct
import tarfile
import zipfile
import zlib
from pathlib import Path

import numpy as np

#: the reason a scan is expected to give a 0-byte file (sources yield it as a normal, empty record)
EMPTY_FILE = "EmptyFile"


def make_malformed_corpus(dir: Path) -> dict[str, str]:
    """Write the corpus into ``dir`` (created if needed) and return ``{evidence path: error kind}``.

    Evidence paths start with ``dir.name`` (as ``opspoor scan dir`` names them); the error kind is the
    ``reason`` of the expected error (an ``OpspoorError`` subclass name). Only items expected to be
    errors are listed; the corpus also holds intact items (archives around bad members, a good PNG).
    Expectations assume the default ``Limits`` and media limits.
    """
    dir.mkdir(parents=True, exist_ok=True)
    root = dir.name
    expected: dict[str, str] = {}

    def put(name: str, data: bytes) -> None:
        (dir / name).write_bytes(data)

    jpeg, png = _jpeg(), _png()
    # images and video
    put("truncated.jpg", jpeg[: len(jpeg) // 2])
    put("truncated.png", png[: len(png) // 2])
    put("garbage.jpg", b"\xff\xd8\xff\xe0" + _noise(4000, seed=1))
    put("bomb.png", _png_header_only(30000, 30000))
    put("corrupt.mp4", b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + _noise(4000, seed=2))
    put("empty.jpg", b"")
    expected |= {
        f"{root}/truncated.jpg": "UndecodableMedia",
        f"{root}/truncated.png": "UndecodableMedia",
        f"{root}/garbage.jpg": "UndecodableMedia",
        f"{root}/bomb.png": "MediaTooLarge",
        f"{root}/corrupt.mp4": "UndecodableMedia",
        f"{root}/empty.jpg": EMPTY_FILE,
    }
    # a bad image inside an intact archive
    put("mixed.zip", _zip([("ok.png", png), ("broken/truncated.jpg", jpeg[: len(jpeg) // 3])]))
    expected[f"{root}/mixed.zip!/broken/truncated.jpg"] = "UndecodableMedia"

    # archive bombs: 32 MiB of zeros; the ratio is judged above 16 MiB by default
    zeros = bytes(32 << 20)
    put("bomb.zip", _zip([("note.txt", b"a harmless note\n"), ("zeros.bin", zeros)]))
    put("bomb.gz", gzip.compress(zeros, compresslevel=9, mtime=0))
    expected[f"{root}/bomb.zip!/zeros.bin"] = "ArchiveBomb"
    expected[f"{root}/bomb.gz"] = "ArchiveBomb"
    put("lying.zip", _lying_zip())
    expected[f"{root}/lying.zip!/liar.txt"] = "CorruptArchive"

    # encryption (no passwords are ever tried)
    put("encrypted.zip", _zip_with_encrypted_flag())
    expected[f"{root}/encrypted.zip!/secret.txt"] = "EncryptedContent"
    put("encrypted.7z", _encrypted_7z())
    expected[f"{root}/encrypted.7z!/secret.txt"] = "EncryptedContent"

    # names that try to leave the archive
    put("traversal.zip", _zip([
        ("../../etc/passwd", b"not really a passwd file\n"),
        ("/abs/x.txt", b"absolute\n"),
        ("..\\..\\win.txt", b"backslashes\n"),
    ]))  # fmt: skip
    expected |= {
        f"{root}/traversal.zip!/%2E%2E/%2E%2E/etc/passwd": "UnsafeMemberName",
        f"{root}/traversal.zip!/%2Fabs/x.txt": "UnsafeMemberName",
        f"{root}/traversal.zip!/..%5C..%5Cwin.txt": "UnsafeMemberName",
    }

    # broken structures
    good = _zip([("first.txt", b"first member\n"), ("second.bin", _noise(20000, seed=3))])
    put("truncated.zip", good[: len(good) * 2 // 3])
    expected[f"{root}/truncated.zip"] = "CorruptArchive"
    expected[f"{root}/truncated.zip!/second.bin"] = "CorruptArchive"
    put("bad.tar", _tar([("kept.txt", b"before the fault\n")], end=False) + _bad_tar_block())
    expected[f"{root}/bad.tar"] = "CorruptArchive"
    tgz = _tar_gz([("a.txt", b"small\n"), ("b.bin", _noise(64000, seed=4))])
    put("truncated.tar.gz", tgz[: len(tgz) * 3 // 5])
    expected[f"{root}/truncated.tar.gz"] = "CorruptArchive"
    expected[f"{root}/truncated.tar.gz!/b.bin"] = "CorruptArchive"
    put("corrupt.gz", b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03" + _noise(300, seed=5))
    expected[f"{root}/corrupt.gz"] = "CorruptArchive"

    # nested deeper than the default depth limit (8): the archive at depth 8 is not opened
    inner = _zip([("leaf.txt", b"the bottom\n")])
    for level in range(8, 0, -1):
        inner = _zip([(f"d{level}.zip", inner)])
    put("deep.zip", inner)
    deepest = "!/".join(f"d{level}.zip" for level in range(1, 9))
    expected[f"{root}/deep.zip!/{deepest}"] = "DepthLimit"

    # file-system oddities
    if hasattr(os, "mkfifo"):
        os.mkfifo(dir / "pipe.fifo")
        expected[f"{root}/pipe.fifo"] = "UnreadableSource"
    if hasattr(os, "symlink"):
        os.symlink("loop.lnk", dir / "loop.lnk")
        os.symlink("nowhere.jpg", dir / "broken.lnk")
        expected[f"{root}/loop.lnk"] = "SymlinkNotFollowed"
        expected[f"{root}/broken.lnk"] = "SymlinkNotFollowed"
    return expected


# --- builders -------------------------------------------------------------------------
def _noise(n: int, seed: int) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


def _image_array() -> np.ndarray:
    """A small benign picture: a colour gradient with noise, enough detail to compress poorly."""
    y, x = np.mgrid[0:96, 0:128]
    img = np.stack([x * 2, y * 2, (x + y)], axis=-1).astype(np.int16)
    img += np.random.default_rng(7).integers(-20, 21, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _encode(fmt: str) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(_image_array()).save(buf, format=fmt)
    return buf.getvalue()


def _jpeg() -> bytes:
    return _encode("JPEG")


def _png() -> bytes:
    return _encode("PNG")


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png_header_only(width: int, height: int) -> bytes:
    """A valid PNG signature and IHDR declaring a huge image, with one tiny IDAT: a decompression bomb
    by its header alone."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + _png_chunk(b"IEND", b"")
    )


def _zip(members: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return buf.getvalue()


def _patch_zip(data: bytes, name: bytes, fn: object) -> bytes:
    """Apply ``fn(buf, header_offset, kind)`` to the local and central headers of member ``name``."""
    buf = bytearray(data)
    for sig, kind in ((b"PK\x03\x04", "local"), (b"PK\x01\x02", "central")):
        pos = buf.find(sig)
        while pos >= 0:
            name_at = pos + (30 if kind == "local" else 46)
            nlen = struct.unpack_from("<H", buf, pos + (26 if kind == "local" else 28))[0]
            if bytes(buf[name_at : name_at + nlen]) == name:
                fn(buf, pos, kind)  # type: ignore[operator]
            pos = buf.find(sig, pos + 4)
    return bytes(buf)


def _zip_with_encrypted_flag() -> bytes:
    """A zip whose member says it is encrypted (flag bit 0); its bytes are plain, nothing is decrypted."""
    data = _zip([("readme.txt", b"readable\n"), ("secret.txt", b"would be encrypted\n")])

    def set_flag(buf: bytearray, pos: int, kind: str) -> None:
        off = pos + (6 if kind == "local" else 8)
        struct.pack_into("<H", buf, off, struct.unpack_from("<H", buf, off)[0] | 0x1)

    return _patch_zip(data, b"secret.txt", set_flag)


def _lying_zip() -> bytes:
    """A member whose headers declare 100 bytes while it inflates to 100 000 (a lying size header)."""
    data = _zip([("liar.txt", b"x" * 100_000), ("honest.txt", b"honest\n")])

    def shrink(buf: bytearray, pos: int, kind: str) -> None:
        struct.pack_into("<I", buf, pos + (22 if kind == "local" else 24), 100)

    return _patch_zip(data, b"liar.txt", shrink)


def _encrypted_7z() -> bytes:
    import py7zr

    buf = io.BytesIO()
    with py7zr.SevenZipFile(buf, "w", password="not-a-real-secret") as sz:
        sz.writestr(b"would be encrypted\n", "secret.txt")
    return buf.getvalue()


def _tar(members: list[tuple[str, bytes]], end: bool = True) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 1_577_836_800
            tf.addfile(info, io.BytesIO(data))
    raw = buf.getvalue()
    if not end:  # drop the end-of-archive zero blocks and padding
        raw = raw.rstrip(b"\x00")
        raw += b"\x00" * (-len(raw) % 512)
    return raw


def _bad_tar_block() -> bytes:
    """A 512-byte block that is neither a valid header nor zeros (its checksum is wrong)."""
    block = bytearray(_tar([("next.txt", b"")], end=False)[:512])
    block[148:156] = b"0000000\x00"
    return bytes(block)


def _tar_gz(members: list[tuple[str, bytes]]) -> bytes:
    return gzip.compress(_tar(members), mtime=0)
