"""EXIF clues written with Pillow into generated JPEGs and read back; malformed EXIF never raises."""

from __future__ import annotations

import io
import warnings

import pytest
from PIL import Image, TiffImagePlugin

from opspoor.demo.images import generate_image
from opspoor.media.exif import ExifInfo, read_exif
from opspoor.media.image import decode_image

IFD_EXIF, IFD_GPS = 0x8769, 0x8825


def jpeg_with(exif: Image.Exif | bytes | None, fmt: str = "JPEG") -> bytes:
    buf = io.BytesIO()
    img = generate_image(3, 160, 120, "shapes")
    if exif is None:
        img.save(buf, fmt)
    else:
        img.save(buf, fmt, exif=exif if isinstance(exif, bytes) else exif.tobytes())
    return buf.getvalue()


def full_exif(lat_ref: str = "S", lon_ref: str = "W") -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "ExampleCam"
    exif[0x0110] = "Model 7"
    exif[0x0131] = "Firmware 1.2"
    exif[0x0132] = "2020:01:02 03:04:05"
    exif[0x0112] = 8
    sub = exif.get_ifd(IFD_EXIF)
    sub[0x9003] = "2019:12:31 23:59:58"
    sub[0x9011] = "+02:00"
    sub[0xA431] = "SN-000123"
    gps = exif.get_ifd(IFD_GPS)
    gps[1] = lat_ref
    gps[2] = (52.0, 22.0, 30.0)  # 52.375
    gps[3] = lon_ref
    gps[4] = (4.0, 53.0, 24.0)  # 4.89
    return exif


def read(data: bytes) -> ExifInfo | None:
    # Pillow's JPEG opener itself warns on broken EXIF (it looks for DPI); decode_image silences that
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        im = Image.open(io.BytesIO(data))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # read_exif must not let a warning through
        return read_exif(im)


def test_reads_back_every_field() -> None:
    info = read(jpeg_with(full_exif()))
    assert info == ExifInfo(
        datetime="2019-12-31T23:59:58+02:00",
        make="ExampleCam",
        model="Model 7",
        serial="SN-000123",
        software="Firmware 1.2",
        gps=(-52.375, -4.89),
        orientation=8,
    )


def test_gps_signs_follow_the_references() -> None:
    info = read(jpeg_with(full_exif("N", "E")))
    assert info is not None and info.gps == (52.375, 4.89)


def test_decode_image_carries_exif() -> None:
    decoded = decode_image(jpeg_with(full_exif()))
    assert decoded.exif is not None and decoded.exif.serial == "SN-000123"
    assert decoded.orientation == 8


def test_datetime_falls_back_to_datetime_tag() -> None:
    exif = Image.Exif()
    exif[0x0132] = "2021:06:07 08:09:10"
    info = read(jpeg_with(exif))
    assert info is not None and info.datetime == "2021-06-07T08:09:10"
    assert info.make is None and info.gps is None and info.serial is None


def test_unset_camera_clock_is_no_date() -> None:
    exif = Image.Exif()
    exif[0x0132] = "0000:00:00 00:00:00"
    exif[0x010F] = "ExampleCam"
    info = read(jpeg_with(exif))
    assert info is not None and info.datetime is None and info.make == "ExampleCam"


def test_dng_camera_serial_is_the_fallback() -> None:
    exif = Image.Exif()
    exif[0xC62F] = "BODY-42"
    info = read(jpeg_with(exif))
    assert info is not None and info.serial == "BODY-42"


def test_no_exif_is_none() -> None:
    assert read(jpeg_with(None)) is None
    assert decode_image(jpeg_with(None)).exif is None


def test_png_exif_is_read_too() -> None:
    info = read(jpeg_with(full_exif(), fmt="PNG"))
    assert info is not None and info.make == "ExampleCam"


@pytest.mark.parametrize(
    "payload",
    [
        b"Exif\x00\x00II*\x00\x08\x00\x00\x00\xff\xff",  # IFD claims 65535 entries
        b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x01\x01\x0f\x00\x02\xff\xff\xff\xff\x00\x00\x00\x00",
        b"Exif\x00\x00" + bytes(range(256)),
        b"not exif at all",
    ],
)
def test_malformed_exif_never_raises(payload: bytes) -> None:
    info = read(jpeg_with(payload))
    assert info is None or isinstance(info, ExifInfo)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert decode_image(jpeg_with(payload)).rgb.shape == (120, 160, 3)  # the picture still decodes


def test_malformed_values_become_none() -> None:
    exif = Image.Exif()
    exif[0x0112] = 42  # not an orientation
    exif[0x0132] = "yesterday"
    gps = exif.get_ifd(IFD_GPS)
    gps[1] = "N"
    gps[2] = (TiffImagePlugin.IFDRational(1, 0), 0.0, 0.0)  # zero denominator
    gps[3] = "E"
    gps[4] = (200.0, 0.0, 0.0)  # out of range
    exif[0x010F] = "ExampleCam"
    info = read(jpeg_with(exif))
    assert info is not None
    assert info.orientation is None and info.datetime is None and info.gps is None
    assert info.make == "ExampleCam"
