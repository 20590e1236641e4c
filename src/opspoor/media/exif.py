"""EXIF clues of an image: when, with what camera (serial numbers link series), where, how it is turned.

Malformed EXIF never raises: a field that cannot be read is ``None``.
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import astuple, dataclass
from typing import Any

from PIL import Image

# tag numbers (EXIF 2.32 / TIFF 6.0)
_IFD_EXIF = 0x8769
_IFD_GPS = 0x8825
_MAKE, _MODEL, _ORIENTATION, _SOFTWARE, _DATETIME = 0x010F, 0x0110, 0x0112, 0x0131, 0x0132
_DATETIME_ORIGINAL, _OFFSET_TIME, _OFFSET_TIME_ORIGINAL = 0x9003, 0x9010, 0x9011
_BODY_SERIAL = 0xA431
_CAMERA_SERIAL_DNG = 0xC62F  # DNG CameraSerialNumber, in IFD0
_GPS_LAT_REF, _GPS_LAT, _GPS_LON_REF, _GPS_LON = 1, 2, 3, 4

_EXIF_DATETIME = re.compile(r"^\s*(\d{4})[:\-](\d{2})[:\-](\d{2})[ T](\d{2}):(\d{2}):(\d{2})")
_OFFSET = re.compile(r"^\s*([+-]\d{2}:\d{2})\s*$")


@dataclass(frozen=True, slots=True)
class ExifInfo:
    datetime: str | None  # ISO 8601 of DateTimeOriginal, else DateTime (with the offset when recorded)
    make: str | None
    model: str | None
    serial: str | None  # BodySerialNumber (0xA431), else DNG CameraSerialNumber
    software: str | None
    gps: tuple[float, float] | None  # (latitude, longitude), signed decimal degrees
    orientation: int | None  # 1..8, as recorded (not applied)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if not isinstance(value, str):
        value = str(value)
    value = value.replace("\x00", " ").strip()
    return value or None


def _iso_datetime(value: Any, offset: Any = None) -> str | None:
    text = _text(value)
    if text is None:
        return None
    m = _EXIF_DATETIME.match(text)
    if not m:
        return None
    year, month, day, hour, minute, second = (int(g) for g in m.groups())
    # cameras without a set clock write zeros; such a date is no clue
    if year == 0 or not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and second < 61):
        return None
    iso = f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}"
    off = _OFFSET.match(_text(offset) or "")
    return iso + off.group(1) if off else iso


def _rational(v: Any) -> float:
    if isinstance(v, tuple) and len(v) == 2:  # (numerator, denominator) from older writers
        return float(v[0]) / float(v[1])
    return float(v)


def _degrees(dms: Any, ref: Any) -> float | None:
    try:
        parts = [_rational(x) for x in dms]
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    if not parts or len(parts) > 3 or any(not math.isfinite(p) for p in parts):
        return None
    parts += [0.0] * (3 - len(parts))
    value = parts[0] + parts[1] / 60.0 + parts[2] / 3600.0
    r = (_text(ref) or "").upper()[:1]
    return -value if r in ("S", "W") else value


def _gps(gps: Any) -> tuple[float, float] | None:
    if not gps:
        return None
    if _GPS_LAT not in gps or _GPS_LON not in gps:
        return None
    lat = _degrees(gps[_GPS_LAT], gps.get(_GPS_LAT_REF))
    lon = _degrees(gps[_GPS_LON], gps.get(_GPS_LON_REF))
    if lat is None or lon is None or abs(lat) > 90 or abs(lon) > 180:
        return None
    return (round(lat, 7), round(lon, 7))


def _orientation(value: Any) -> int | None:
    try:
        o = int(value)
    except (TypeError, ValueError):
        return None
    return o if 1 <= o <= 8 else None


def _field(read: Any, default: Any = None) -> Any:
    """One field; a malformed one is ``default``, never an exception."""
    try:
        return read()
    except Exception:
        return default


def read_exif(img: Image.Image) -> ExifInfo | None:
    """EXIF clues of an opened Pillow image; ``None`` when it has no (readable) EXIF."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow warns per file on odd tags; not our user's concern
        exif = _field(img.getexif)
        if not exif:
            return None
        sub = _field(lambda: exif.get_ifd(_IFD_EXIF), {}) or {}
        gps_ifd = _field(lambda: exif.get_ifd(_IFD_GPS), {}) or {}
        dt = _field(lambda: _iso_datetime(sub.get(_DATETIME_ORIGINAL), sub.get(_OFFSET_TIME_ORIGINAL)))
        if dt is None:
            dt = _field(lambda: _iso_datetime(exif.get(_DATETIME), sub.get(_OFFSET_TIME)))
        serial = _field(lambda: _text(sub.get(_BODY_SERIAL)) or _text(exif.get(_CAMERA_SERIAL_DNG)))
        info = ExifInfo(
            datetime=dt,
            make=_field(lambda: _text(exif.get(_MAKE))),
            model=_field(lambda: _text(exif.get(_MODEL))),
            serial=serial,
            software=_field(lambda: _text(exif.get(_SOFTWARE))),
            gps=_field(lambda: _gps(gps_ifd)),
            orientation=_field(lambda: _orientation(exif.get(_ORIENTATION))),
        )
    if all(v is None for v in astuple(info)):
        return None
    return info
