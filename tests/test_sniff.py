"""The type table that gives a stored record its kind back agrees with what ``sniff`` says."""

from __future__ import annotations

from opspoor.media.sniff import IMAGE_TYPES, VIDEO_TYPES, kind_of, sniff

HEADS = {
    "jpeg": b"\xff\xd8\xff\xe0",
    "png": b"\x89PNG\r\n\x1a\n",
    "gif": b"GIF89a",
    "webp": b"RIFF\0\0\0\0WEBP",
    "bmp": b"BM" + bytes(12),
    "tiff": b"II*\x00",
    "heic": b"\0\0\0\x18ftypheic",
    "heif": b"\0\0\0\x18ftypmif1",
    "avif": b"\0\0\0\x18ftypavif",
    "avi": b"RIFF\0\0\0\0AVI ",
    "3gp": b"\0\0\0\x18ftyp3gp4",
    "mov": b"\0\0\0\x18ftypqt  ",
    "mp4": b"\0\0\0\x18ftypisom",
    "webm": b"\x1a\x45\xdf\xa3webm",
    "mkv": b"\x1a\x45\xdf\xa3matroska",
    "asf": b"\x30\x26\xb2\x75\x8e\x66\xcf\x11",
    "flv": b"FLV\x01",
    "mpeg": b"\x00\x00\x01\xba",
    "mpegts": b"\x47" + bytes(187) + b"\x47",
    "zip": b"PK\x03\x04",
    "pdf": b"%PDF-1.7",
    "unknown": b"hello",
}


def test_kind_of_a_stored_type_is_the_kind_sniff_gave() -> None:
    seen = set()
    for type_, head in HEADS.items():
        found = sniff(head)
        assert found.type == type_, (type_, found)
        assert kind_of(found.type) == (found.kind if found.kind in ("image", "video") else "other")
        seen.add(type_)
    # every image and video type of the table is exercised above: a new one must be added to both
    assert seen >= IMAGE_TYPES | VIDEO_TYPES
    assert kind_of(None) == "other"
