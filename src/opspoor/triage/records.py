"""The per-file record of a scan: the ``files.jsonl`` output contract.

Keys (absent values are null): path, size, type, md5, sha1, sha256, status, error, pdq,
pdq_quality, vpdq_frames, matches, group, exif; ``error_reason`` (the error's class, e.g.
``UndecodableMedia``) is added when status is error. ``matches`` items are
``{hashset, entry_id, signal, distance, category: {scheme, code}}``.
"""

from __future__ import annotations

from typing import Any, Literal

from opspoor.signals import SIGNALS

Status = Literal["known", "ignorable", "new", "other", "error"]
STATUSES: tuple[Status, ...] = ("known", "ignorable", "new", "other", "error")
MEDIA_KINDS = ("image", "video")
#: error reason of a 0-byte file
EMPTY_FILE = "EmptyFile"


def signal_kind(signal: str) -> str:
    """``exact`` for a signal found by equal value (a cryptographic hash), ``perceptual`` for PDQ,
    vPDQ and local features (from the signal registry)."""
    found = SIGNALS.get(signal)
    return "exact" if found is not None and found.index == "exact" else "perceptual"


def exif_json(exif: Any) -> dict[str, Any] | None:
    if exif is None:
        return None
    gps = getattr(exif, "gps", None)
    return {
        "datetime": getattr(exif, "datetime", None),
        "make": getattr(exif, "make", None),
        "model": getattr(exif, "model", None),
        "serial": getattr(exif, "serial", None),
        "software": getattr(exif, "software", None),
        "gps": [gps[0], gps[1]] if gps else None,
    }


def verdict(kind: str, matches: list[dict[str, Any]], failed: bool) -> Status:
    """Known beats ignorable beats everything: a match by MD5 counts even if decoding failed."""
    kinds = {m.get("kind") for m in matches}
    if "known" in kinds:
        return "known"
    if "ignorable" in kinds:
        return "ignorable"
    if failed:
        return "error"
    if kind in MEDIA_KINDS:
        return "new"
    return "other"


def error_record(
    path: str, size: int | None, message: str, reason: str, type_: str | None = None
) -> dict[str, Any]:
    rec = new_record(path, size=size, type_=type_, status="error", error=message)
    rec["error_reason"] = reason
    return rec


def new_record(
    path: str,
    *,
    size: int | None = None,
    type_: str | None = None,
    status: Status = "other",
    error: str | None = None,
) -> dict[str, Any]:
    return {
        "path": path,
        "size": size,
        "type": type_,
        "md5": None,
        "sha1": None,
        "sha256": None,
        "status": status,
        "error": error,
        "pdq": None,
        "pdq_quality": None,
        "vpdq_frames": None,
        "matches": [],
        "group": None,
        "exif": None,
    }
