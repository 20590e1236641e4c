"""Build the benign demo case that ``make demo`` scans.

Everything is generated: no photo of a person, nothing fetched. The layout imitates a seized
phone dump: a camera roll with series and EXIF clues, downloads holding copies (exact,
re-encoded, resized, cropped) of images that sit in a demo "known" hash set, system icons in an
"ignorable" set, videos, documents, a nested zip, and a few corrupt files.
"""

from __future__ import annotations

import io
import random
import shutil
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from opspoor.demo.images import generate_image
from opspoor.demo.videos import generate_video
from opspoor.hashsets.model import Category, Entry
from opspoor.signals.engine import hash_bytes

KNOWN_CATEGORIES = (
    Category("us-cat", "1"),
    Category("us-cat", "2"),
    Category("us-cat", "3"),
    Category("us-cat", "4"),
)
#: styles whose PDQ quality is high (flat gradients and clouds are below PDQ's reliable range)
PHOTO_STYLES = ("shapes", "mixed", "mixed", "text")
CAMERAS = (
    ("DemoCam", "DC-100", "DC100-000417", (52.37403, 4.88969)),
    ("Example Optics", "EO-7", "EO7-993021", (51.92250, 4.47917)),
    ("Sample Phone", "SP 12", None, None),
    ("Sample Phone", "SP 12", None, None),
    ("Test Imaging", "TI-3", "TI3-12-4471", None),
)


@dataclass(slots=True)
class DemoCase:
    root: Path
    evidence: Path
    known_entries: list[Entry] = field(default_factory=list)
    ignorable_entries: list[Entry] = field(default_factory=list)


def _jpeg(img: Image.Image, quality: int = 90, exif: Image.Exif | None = None) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality, exif=exif if exif is not None else b"")
    return buf.getvalue()


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def _camera_exif(
    make: str, model: str, serial: str | None, gps: tuple[float, float] | None, when: str
) -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = make
    exif[0x0110] = model
    exif[0x0131] = "DemoFirmware 1.0"
    ifd = exif.get_ifd(0x8769)
    ifd[0x9003] = when  # DateTimeOriginal
    if serial:
        ifd[0xA431] = serial  # BodySerialNumber
    if gps:
        lat, lon = gps
        g = exif.get_ifd(0x8825)
        g[1] = "N" if lat >= 0 else "S"
        g[2] = _dms(abs(lat))
        g[3] = "E" if lon >= 0 else "W"
        g[4] = _dms(abs(lon))
    return exif


def _dms(deg: float) -> tuple[float, float, float]:
    d = int(deg)
    m = int((deg - d) * 60)
    s = round(((deg - d) * 60 - m) * 60, 4)
    return (float(d), float(m), s)


def _entry(data: bytes, category: Category | None, external_id: str, series: str | None = None) -> Entry:
    sig = hash_bytes(data)
    signals = {"md5": sig.md5, "sha1": sig.sha1, "sha256": sig.sha256}
    if sig.pdq:
        signals["pdq"] = sig.pdq
    if sig.vpdq_frames:
        from opspoor.signals.vpdq import format_vpdq

        signals["vpdq"] = format_vpdq(sig.vpdq_frames)
    return Entry(signals=signals, category=category, external_id=external_id, series=series, size=len(data))


def build_demo_case(
    root: Path, n_camera: int = 180, n_known: int = 60, n_icons: int = 24, log: Callable[[str], None] = print
) -> DemoCase:
    """Write the demo evidence folder under ``root/evidence`` and return the hash-set entries."""
    if root.exists():
        shutil.rmtree(root)
    ev = root / "evidence"
    demo = DemoCase(root=root, evidence=ev)
    rnd = random.Random(2026)
    for d in ("DCIM/Camera", "Download", "System/icons", "Movies", "Documents", "Broken", "Archives"):
        (ev / d).mkdir(parents=True, exist_ok=True)

    # camera roll: new material, in series (one scene, small changes) with EXIF clues
    seed, i = 10_000, 0
    while i < n_camera:
        series_len = rnd.choice((1, 1, 2, 3, 5, 8))
        make, model, serial, gps = CAMERAS[rnd.randrange(len(CAMERAS))]
        base = generate_image(seed, 960, 720, style=PHOTO_STYLES[seed % len(PHOTO_STYLES)])
        seed += 1
        for k in range(min(series_len, n_camera - i)):
            img = base
            if k:  # the same scene again: a slight crop and shift, as consecutive shots are
                dx, dy = rnd.randint(0, 24), rnd.randint(0, 18)
                img = base.crop((dx, dy, 960 - 24 + dx, 720 - 18 + dy)).resize((960, 720))
            when = f"2024:{1 + (i // 30) % 12:02d}:{1 + i % 28:02d} 1{i % 10}:{i % 60:02d}:00"
            exif = _camera_exif(make, model, serial, gps if rnd.random() < 0.7 else None, when)
            (ev / "DCIM/Camera" / f"IMG_{1000 + i:04d}.jpg").write_bytes(_jpeg(img, 88, exif))
            i += 1
    log(f"  {n_camera} camera images (series, EXIF)")

    # known material: originals go into the demo hash set; the dump holds copies of them; the
    # originals are kept apart too, for ``opspoor hashset build`` (the README shows it)
    (root / "originals").mkdir()
    for k in range(n_known):
        original = generate_image(50_000 + k, 800, 600, style=PHOTO_STYLES[k % len(PHOTO_STYLES)])
        data = _jpeg(original, 92)
        (root / "originals" / f"known_{k:04d}.jpg").write_bytes(data)
        cat = KNOWN_CATEGORIES[k % len(KNOWN_CATEGORIES)]
        demo.known_entries.append(_entry(data, cat, f"demo-known-{k:04d}", series=f"demo-series-{k % 7}"))
        variant = k % 4
        name = ev / "Download" / f"file_{k:04d}"
        if variant == 0:  # exact copy: MD5 match
            name.with_suffix(".jpg").write_bytes(data)
        elif variant == 1:  # re-encoded
            name.with_suffix(".jpg").write_bytes(_jpeg(original, 60))
        elif variant == 2:  # resized, saved as PNG
            name.with_suffix(".png").write_bytes(_png(original.resize((400, 300))))
        else:  # cropped by 2 %
            name.with_suffix(".jpg").write_bytes(_jpeg(original.crop((8, 6, 792, 594)), 85))
    log(f"  {n_known} copies of known images (exact, re-encoded, resized, cropped)")

    # non-pertinent system icons: an ignorable set
    for k in range(n_icons):
        data = _png(generate_image(70_000 + k, 128, 128, style="shapes"))
        (ev / "System/icons" / f"icon_{k:03d}.png").write_bytes(data)
        demo.ignorable_entries.append(_entry(data, Category("us-cat", "5"), f"icon-{k:03d}"))
    log(f"  {n_icons} system icons (ignorable set)")

    # videos: one known (in the set), two new that share their content, one unrelated
    known_video = root / "known-video.mp4"
    generate_video(known_video, seed=90_001, seconds=4, fps=10)
    vdata = known_video.read_bytes()
    demo.known_entries.append(_entry(vdata, Category("us-cat", "1"), "demo-known-video"))
    generate_video(ev / "Movies/clip_known_reencoded.mp4", seed=90_001, seconds=4, fps=10, size=(256, 192))
    generate_video(ev / "Movies/VID_2024_0001.mp4", seed=91_000, seconds=4, fps=10)
    generate_video(ev / "Movies/VID_2024_0001_small.mp4", seed=91_000, seconds=4, fps=10, size=(240, 180))
    generate_video(ev / "Movies/VID_2024_0002.mp4", seed=92_000, seconds=3, fps=10)
    log("  5 videos")

    # documents: other files
    (ev / "Documents/notes.txt").write_text("shopping list\nmilk\nbread\n")
    (ev / "Documents/table.csv").write_text("a,b\n1,2\n")
    (ev / "Documents/empty.dat").write_bytes(b"")
    (ev / "Documents/readme.pdf").write_bytes(b"%PDF-1.4\n% benign demo file\n%%EOF\n")

    # a zip holding a nested zip, with known copies and new images inside
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as z:
        for k in range(6):
            z.writestr(f"nested/new_{k}.jpg", _jpeg(generate_image(80_000 + k, 640, 480), 85))
        z.writestr(
            "nested/known_copy.jpg", _jpeg(generate_image(50_000, 800, 600, style=PHOTO_STYLES[0]), 92)
        )
    with zipfile.ZipFile(ev / "Archives/holiday.zip", "w") as z:
        for k in range(8):
            z.writestr(f"2019/IMG_{k:03d}.jpg", _jpeg(generate_image(81_000 + k, 640, 480), 85))
        z.writestr("2019/inner.zip", inner.getvalue())
        z.writestr("readme.txt", "benign demo archive\n")
    log("  a zip with a nested zip")

    # corrupt files: each must become an error record, and the scan must go on
    good = _jpeg(generate_image(99_000, 640, 480))
    (ev / "Broken/truncated.jpg").write_bytes(good[: len(good) // 3])
    (ev / "Broken/garbage.jpg").write_bytes(
        b"\xff\xd8\xff\xe0" + bytes(rnd.randrange(256) for _ in range(4000))
    )
    (ev / "Broken/broken.mp4").write_bytes(
        b"\x00\x00\x00\x18ftypmp42" + bytes(rnd.randrange(256) for _ in range(4000))
    )
    bomb = io.BytesIO()
    Image.new("L", (1, 1)).save(bomb, "PNG")
    b = bytearray(bomb.getvalue())
    b[16:24] = (40000).to_bytes(4, "big") * 2  # IHDR claims 40000 x 40000 (1.6 gigapixels)
    b[29:33] = zlib.crc32(bytes(b[12:29])).to_bytes(4, "big")  # a valid CRC: only the size is hostile
    (ev / "Broken/bomb.png").write_bytes(bytes(b))
    log("  4 corrupt files")
    return demo
