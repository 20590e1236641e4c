"""A small benign case for the review workspace's tests: a series of near-duplicates (one group),
two pictures sharing a camera serial, loners, a video, a picture inside a zip file, and one picture
that a test hash set already holds (known)."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from opspoor.casefile.scan import scan_case
from opspoor.demo.images import generate_image
from opspoor.demo.videos import generate_video
from opspoor.hashsets.model import Category, Entry
from opspoor.signals.engine import hash_bytes
from opspoor.store import import_entries, open_store
from opspoor.triage.config import ScanConfig


def jpeg(img: Image.Image, exif: Image.Exif | None = None) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=88, exif=exif if exif is not None else b"")
    return buf.getvalue()


def serial_exif(serial: str) -> Image.Exif:
    ex = Image.Exif()
    ex[0x010F], ex[0x0110] = "DemoCam", "DC-1"
    ex.get_ifd(0x8769)[0xA431] = serial
    return ex


def write_evidence(ev: Path) -> dict[str, Any]:
    ev.mkdir(parents=True)
    base = generate_image(700, 800, 600, style="shapes")
    for k in range(3):
        crop = base.crop((k * 4, k * 3, 792 + k * 4, 594 + k * 3)).resize((800, 600))
        (ev / f"series_{k}.jpg").write_bytes(jpeg(crop))
    for k, seed in enumerate((701, 702)):
        (ev / f"serial_{k}.jpg").write_bytes(
            jpeg(generate_image(seed, 640, 480, style="shapes"), serial_exif("SER-9"))
        )
    for k in range(2):
        (ev / f"loner_{k}.jpg").write_bytes(jpeg(generate_image(800 + k, 640, 480, style="shapes")))
    generate_video(ev / "clip.mp4", seed=5, seconds=3, fps=10, size=(160, 120))
    with zipfile.ZipFile(ev / "bundle.zip", "w") as zf:
        zf.writestr("inner/zipped.jpg", jpeg(generate_image(810, 640, 480, style="shapes")))
    known = jpeg(generate_image(900, 640, 480, style="shapes"))
    (ev / "known.jpg").write_bytes(known)
    s = hash_bytes(known)
    return {"known_entry": Entry({"md5": s.md5, "pdq": s.pdq}, Category("us-cat", "1"), external_id="K-1")}


def fresh_copy(case_dir: Path, into: Path) -> Path:
    """A copy of the case folder without its review decisions, so one test's decisions do not
    reach another."""
    out = into / "case"
    shutil.copytree(case_dir, out)
    (out / "review.sqlite").unlink(missing_ok=True)
    return out


def build_case(root: Path) -> dict[str, Any]:
    ev = root / "dump"
    info = write_evidence(ev)
    db = f"sqlite:///{root / 'store.sqlite'}"
    with open_store(db) as store:
        import_entries(store, "known", [info["known_entry"]], kind="known")
    cfg = ScanConfig(sources=[ev], hashsets=["known"], case_dir=root / "case", db_url=db, workers=1)
    result = scan_case(cfg)
    assert result.reconciled
    return {
        "root": root,
        "evidence": ev,
        "dir": root / "case",
        "db": db,
        "cfg": cfg,
        "summary": result.summary,
    }


SRC = str(Path(__file__).resolve().parents[1] / "src")


@contextmanager
def serve_review(case_dir: Path, *options: str) -> Iterator[dict[str, Any]]:
    """``opspoor review CASE_DIR --reviewer alice [options]`` as a user runs it: the one-time URL it
    prints, its base, and the process; stopped at the end."""
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [sys.executable, "-m", "opspoor", "review", str(case_dir), "--reviewer", "alice", *options]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    url = None
    for _ in range(5):
        m = re.search(r"(http://127\.0\.0\.1:\d+)/\?token=(\S+)", proc.stdout.readline())
        if m:
            url = m.group(0)
            break
    if url is None:
        proc.kill()
        pytest.fail("opspoor review printed no URL: " + (proc.stderr.read() if proc.stderr else ""))
    try:
        yield {"url": url, "base": url.split("/?")[0], "proc": proc}
    finally:
        proc.terminate()
        proc.wait(timeout=60)  # (a loaded machine can take a while to shut a server down)
