"""Benign pictures for the clue tests and benchmark: text drawn with Debian's DejaVu fonts on plain
backgrounds and on generated photos, GPS written into EXIF with Pillow."""

from __future__ import annotations

import io

from PIL import Image, ImageDraw, ImageFont

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"

DUTCH = "Dit is een zin in het Nederlands over de fiets en het weer van vandaag"
ENGLISH = "This is a sentence in English about the weather and the bicycle today"
GERMAN = "Das ist ein Satz auf Deutsch über das Wetter und das Fahrrad von heute"


def text_height_font(height: int) -> ImageFont.FreeTypeFont:
    """A DejaVu font whose capital letters with descenders span about ``height`` pixels."""
    size = height
    font = ImageFont.truetype(FONT, size)
    for _ in range(20):
        box = font.getbbox("Hg")
        got = box[3] - box[1]
        if abs(got - height) <= 1:
            break
        size = max(6, round(size * height / max(got, 1)))
        font = ImageFont.truetype(FONT, size)
    return font


def text_picture(
    lines: list[str],
    height: int = 20,
    size: tuple[int, int] | None = None,
    background: Image.Image | tuple[int, int, int] = (235, 232, 220),
    ink: tuple[int, int, int] = (20, 20, 30),
    rotate: int = 0,
) -> Image.Image:
    """``lines`` of text ``height`` px high, on a plain colour or a (generated) photo."""
    font = text_height_font(height)
    width = max(int(font.getlength(t)) for t in lines) + 2 * height
    tall = len(lines) * int(height * 1.8) + 2 * height
    if isinstance(background, Image.Image):
        img = background.convert("RGB").resize(size or (max(width, 320), max(tall, 240)))
    else:
        img = Image.new("RGB", size or (width, tall), background)
    draw = ImageDraw.Draw(img)
    y = height
    for t in lines:
        if isinstance(background, Image.Image):  # a light box under the text, as a sign would have
            box = draw.textbbox((height, y), t, font=font)
            draw.rectangle((box[0] - 4, box[1] - 4, box[2] + 4, box[3] + 4), fill=(240, 240, 235))
        draw.text((height, y), t, fill=ink, font=font)
        y += int(height * 1.8)
    return img.rotate(rotate, expand=True) if rotate else img


def gps_exif(lat: float, lon: float, serial: str | None = None) -> Image.Exif:
    """EXIF with a GPS position (degrees, minutes, seconds as rationals, as cameras write it) and
    optionally a camera body serial number."""

    def dms(v: float) -> tuple[float, float, float]:
        v = abs(v)
        d = int(v)
        m = int((v - d) * 60)
        return (float(d), float(m), round((v - d - m / 60) * 3600, 4))

    ex = Image.Exif()
    ex[0x010F], ex[0x0110] = "DemoCam", "DC-1"
    if serial:
        ex.get_ifd(0x8769)[0xA431] = serial
    g = ex.get_ifd(0x8825)
    g[1], g[2] = ("N" if lat >= 0 else "S"), dms(lat)
    g[3], g[4] = ("E" if lon >= 0 else "W"), dms(lon)
    return ex


def jpeg_bytes(img: Image.Image, exif: Image.Exif | None = None, quality: int = 92) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality, exif=exif if exif is not None else b"")
    return buf.getvalue()


def clue_video(
    path: str,
    subtitle: str | None = None,
    tone_hz: float | None = None,
    frame_text: str | None = None,
    seconds: int = 2,
) -> str:
    """A benign Matroska video (plain colour frames, optionally with text drawn on them), with a
    WebVTT subtitle track (``subtitle``, language tag "dut") and a sine tone as its sound."""
    import fractions

    import av
    import numpy as np

    out = av.open(path, "w", format="matroska")
    v = out.add_stream("mpeg4", rate=10)
    v.width, v.height, v.pix_fmt = 640, 360, "yuv420p"
    s = None
    if subtitle is not None:
        s = out.add_stream("webvtt")
        s.time_base = fractions.Fraction(1, 1000)
        s.metadata["language"] = "dut"
        s.codec_context.subtitle_header = (
            b"[Script Info]\nScriptType: v4.00+\n\n[Events]\n"
            b"Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n"
        )
    a = None
    if tone_hz:
        a = out.add_stream("pcm_s16le", rate=16000)
        a.layout = "mono"
    font = text_height_font(22)
    for i in range(seconds * 10):
        im = Image.new("RGB", (640, 360), (30 + i, 90, 140))
        if frame_text:
            ImageDraw.Draw(im).text((16, 160), frame_text, fill=(255, 255, 255), font=font)
        fr = av.VideoFrame.from_image(im)
        fr.pts = i
        out.mux(v.encode(fr))
    if s is not None and subtitle is not None:
        pk = av.Packet(subtitle.encode())
        pk.stream, pk.pts, pk.dts, pk.duration, pk.time_base = s, 0, 0, 1500, s.time_base
        out.mux(pk)
    if a is not None and tone_hz:
        t = np.arange(16000 * seconds) / 16000
        pcm = (np.sin(2 * np.pi * tone_hz * t) * 12000).astype(np.int16)
        for k in range(0, pcm.size, 1600):
            af = av.AudioFrame.from_ndarray(pcm[None, k : k + 1600], format="s16", layout="mono")
            af.sample_rate, af.pts = 16000, k
            out.mux(a.encode(af))
        out.mux(a.encode(None))
    out.mux(v.encode(None))
    out.close()
    return path
