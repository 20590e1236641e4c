"""Detect a file's type from its magic bytes, never from its name."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

MediaClass = Literal["image", "video", "archive", "other"]

#: bytes of the file's head that ``sniff`` needs (tar's magic sits at offset 257)
SNIFF_BYTES = 512

_HEIF_BRANDS = {
    b"heic": "heic",
    b"heix": "heic",
    b"heim": "heic",
    b"heis": "heic",
    b"hevc": "heic",
    b"hevx": "heic",
    b"mif1": "heif",
    b"msf1": "heif",
    b"avif": "avif",
    b"avis": "avif",
}


@dataclass(frozen=True, slots=True)
class Sniffed:
    kind: MediaClass
    type: str  # short name: jpeg, png, mp4, zip, ...; "unknown" when nothing matched


#: what ``sniff`` calls images and videos, by type: a record that keeps only its type (a case's
#: ``files`` row) gets its kind back from these
IMAGE_TYPES = frozenset({"jpeg", "png", "gif", "webp", "bmp", "tiff", *_HEIF_BRANDS.values()})
VIDEO_TYPES = frozenset({"avi", "3gp", "mov", "mp4", "webm", "mkv", "asf", "flv", "mpeg", "mpegts"})


def kind_of(type_: str | None) -> str:
    """``image``, ``video`` or ``other`` for a type name ``sniff`` gave."""
    return "image" if type_ in IMAGE_TYPES else "video" if type_ in VIDEO_TYPES else "other"


def sniff(head: bytes) -> Sniffed:
    """Classify by magic bytes. ``head`` should be the first ``SNIFF_BYTES`` bytes (fewer is fine)."""
    h = head
    if h.startswith(b"\xff\xd8\xff"):
        return Sniffed("image", "jpeg")
    if h.startswith(b"\x89PNG\r\n\x1a\n"):
        return Sniffed("image", "png")
    if h[:6] in (b"GIF87a", b"GIF89a"):
        return Sniffed("image", "gif")
    if h[:4] == b"RIFF" and h[8:12] == b"WEBP":
        return Sniffed("image", "webp")
    if h[:4] == b"RIFF" and h[8:12] == b"AVI ":
        return Sniffed("video", "avi")
    if h[:2] == b"BM" and len(h) >= 14:
        return Sniffed("image", "bmp")
    if h[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return Sniffed("image", "tiff")
    if h[4:8] == b"ftyp":
        brand = h[8:12]
        if brand in _HEIF_BRANDS:
            return Sniffed("image", _HEIF_BRANDS[brand])
        if brand.startswith(b"3g"):
            return Sniffed("video", "3gp")
        if brand == b"qt  ":
            return Sniffed("video", "mov")
        return Sniffed("video", "mp4")
    if h[4:8] in (b"moov", b"mdat", b"wide", b"free", b"skip") and len(h) >= 8:
        return Sniffed("video", "mov")
    if h.startswith(b"\x1a\x45\xdf\xa3"):
        return Sniffed("video", "webm" if b"webm" in h[:64] else "mkv")
    if h.startswith(b"\x30\x26\xb2\x75\x8e\x66\xcf\x11"):
        return Sniffed("video", "asf")
    if h.startswith(b"FLV\x01"):
        return Sniffed("video", "flv")
    if h.startswith(b"\x00\x00\x01\xba") or h.startswith(b"\x00\x00\x01\xb3"):
        return Sniffed("video", "mpeg")
    if len(h) >= 189 and h[0] == 0x47 and h[188] == 0x47:
        return Sniffed("video", "mpegts")
    if h.startswith(b"PK\x03\x04") or h.startswith(b"PK\x05\x06") or h.startswith(b"PK\x07\x08"):
        return Sniffed("archive", "zip")
    if h.startswith(b"7z\xbc\xaf\x27\x1c"):
        return Sniffed("archive", "7z")
    if h.startswith(b"\x1f\x8b"):
        return Sniffed("archive", "gzip")
    if h.startswith(b"BZh"):
        return Sniffed("archive", "bzip2")
    if h.startswith(b"\xfd7zXZ\x00"):
        return Sniffed("archive", "xz")
    if h[257:262] == b"ustar":
        return Sniffed("archive", "tar")
    if h.startswith(b"%PDF"):
        return Sniffed("other", "pdf")
    return Sniffed("other", "unknown" if h else "empty")
