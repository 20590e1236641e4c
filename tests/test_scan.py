"""The triage scan end to end: verdicts, accounting, grouping, outputs, safety, bad input, resume."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import signal
import sqlite3
import stat
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from case_rows import case_rows
from opspoor.casefile.scan import scan_case
from opspoor.demo.images import generate_image
from opspoor.demo.malformed import make_malformed_corpus
from opspoor.demo.videos import generate_video
from opspoor.hashsets.formats import read_entries
from opspoor.hashsets.model import Category, Entry
from opspoor.signals.engine import hash_bytes
from opspoor.store import import_entries, iter_entries, open_store
from opspoor.triage.config import ScanConfig
from pictures import camera_exif, jpeg, soft_picture

STYLE = "shapes"  # high PDQ quality: near-duplicates are reliably near
CONTRACT_KEYS = {
    "path", "size", "type", "md5", "sha1", "sha256", "status", "error", "pdq", "pdq_quality",
    "vpdq_frames", "matches", "group", "exif",
}  # fmt: skip


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A small evidence folder and a store holding a known and an ignorable set (all benign)."""
    root = tmp_path_factory.mktemp("scan")
    ev = root / "dump"
    (ev / "dl").mkdir(parents=True)
    (ev / "cam").mkdir()
    (ev / "sys").mkdir()
    known, ignorable = [], []
    for k in range(4):
        img = generate_image(500 + k, 640, 480, style=STYLE)
        data = jpeg(img)
        s = hash_bytes(data)
        known.append(
            Entry({"md5": s.md5, "pdq": s.pdq}, Category("us-cat", str(1 + k % 2)), external_id=f"k{k}")
        )
        (ev / "dl" / f"exact_{k}.jpg").write_bytes(data)  # exact copy: MD5
        (ev / "dl" / f"small_{k}.png").write_bytes(_png(img.resize((320, 240))))  # resized: PDQ
    mirrored = generate_image(500, 640, 480, style=STYLE).transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    (ev / "dl" / "mirrored_0.jpg").write_bytes(jpeg(mirrored))  # found by the robust query hashes
    icon = _png(generate_image(900, 64, 64, style=STYLE))
    ignorable.append(Entry({"md5": hash_bytes(icon).md5}, Category("us-cat", "5"), external_id="icon"))
    (ev / "sys" / "icon.png").write_bytes(icon)
    # new: a series of three near-duplicates, two unrelated images sharing a camera serial, one loner
    base = generate_image(700, 800, 600, style=STYLE)
    for k in range(3):
        crop = base.crop((k * 4, k * 3, 800 - 8 + k * 4, 600 - 6 + k * 3)).resize((800, 600))
        (ev / "cam" / f"series_{k}.jpg").write_bytes(jpeg(crop, 85))
    for k, seed in enumerate((701, 702)):
        ex = camera_exif("SER-42", gps=(52.0, 4.0) if k == 0 else None)
        (ev / "cam" / f"serial_{k}.jpg").write_bytes(
            jpeg(generate_image(seed, 640, 480, style=STYLE), 85, ex)
        )
    (ev / "cam" / "loner.jpg").write_bytes(jpeg(generate_image(703, 640, 480, style=STYLE)))
    generate_video(ev / "cam" / "clip.mp4", seed=7, seconds=3, fps=5)
    generate_video(ev / "cam" / "clip_small.mp4", seed=7, seconds=3, fps=5, size=(160, 120))
    (ev / "notes.txt").write_text("benign text\n")
    z = io.BytesIO()
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("inner/exact_0.jpg", (ev / "dl" / "exact_0.jpg").read_bytes())
        zf.writestr("inner/readme.txt", "hello")
    (ev / "bundle.zip").write_bytes(z.getvalue())
    db = f"sqlite:///{root / 'store.sqlite'}"
    store = open_store(db)
    import_entries(store, "known", known, kind="known")
    import_entries(store, "icons", ignorable, kind="ignorable")
    store.close()
    return {"root": root, "evidence": ev, "db": db}


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def _scan(corpus: dict[str, object], case: Path, **kw: object) -> dict[str, dict[str, object]]:
    cfg = ScanConfig(
        sources=[corpus["evidence"]],  # type: ignore[list-item]
        hashsets=["known", "icons"],
        case_dir=case,
        db_url=corpus["db"],  # type: ignore[arg-type]
        workers=2,
        **kw,  # type: ignore[arg-type]
    )
    result = scan_case(cfg)
    assert result.reconciled
    return {r["path"]: r for r in map(json.loads, (case / "files.jsonl").read_text().splitlines())}


@pytest.fixture(scope="module")
def scanned(corpus: dict[str, object], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    case = tmp_path_factory.mktemp("cases") / "case1"
    return case, _scan(corpus, case)


def test_verdicts(scanned: tuple[Path, dict]) -> None:
    _, recs = scanned
    for k in range(4):
        exact = recs[f"dump/dl/exact_{k}.jpg"]
        assert exact["status"] == "known"
        assert {"md5", "pdq"} <= {m["signal"] for m in exact["matches"]}
        assert exact["matches"][0]["category"] == {"scheme": "us-cat", "code": str(1 + k % 2)}
        small = recs[f"dump/dl/small_{k}.png"]
        assert small["status"] == "known", small
        assert [m["signal"] for m in small["matches"]] == ["pdq"]
        assert 0 < small["matches"][0]["distance"] <= 31
    mirrored = recs["dump/dl/mirrored_0.jpg"]
    assert mirrored["status"] == "known" and mirrored["matches"][0]["method"].startswith("dihedral/")
    assert recs["dump/sys/icon.png"]["status"] == "ignorable"
    assert recs["dump/bundle.zip!/inner/exact_0.jpg"]["status"] == "known"
    assert recs["dump/notes.txt"]["status"] == "other"
    assert recs["dump/bundle.zip"]["status"] == "other"
    for name in ("series_0", "series_1", "series_2", "serial_0", "serial_1", "loner"):
        assert recs[f"dump/cam/{name}.jpg"]["status"] == "new"
    assert recs["dump/cam/clip.mp4"]["status"] == "new"
    assert len(recs["dump/cam/clip.mp4"]["vpdq_frames"]) == 3


def test_records_follow_the_contract(scanned: tuple[Path, dict]) -> None:
    _, recs = scanned
    for r in recs.values():
        assert set(r) >= CONTRACT_KEYS, r["path"]
        assert (r["error"] is None) == (r["status"] != "error")
        for m in r["matches"]:
            assert {"hashset", "entry_id", "signal", "distance", "category"} <= set(m)
    ex = recs["dump/cam/serial_0.jpg"]["exif"]
    assert ex["make"] == "DemoCam" and ex["serial"] == "SER-42"
    assert ex["gps"] == [pytest.approx(52.0), pytest.approx(4.0)]
    assert ex["datetime"].startswith("2023-05-06")


def test_groups_series_serials_and_videos(scanned: tuple[Path, dict]) -> None:
    case, recs = scanned
    g = {p.split("/")[-1]: r["group"] for p, r in recs.items() if r["status"] == "new"}
    assert g["series_0.jpg"] == g["series_1.jpg"] == g["series_2.jpg"]
    assert g["serial_0.jpg"] == g["serial_1.jpg"] != g["series_0.jpg"]
    assert g["clip.mp4"] == g["clip_small.mp4"]
    assert g["loner.jpg"] not in {g["series_0.jpg"], g["serial_0.jpg"], g["clip.mp4"]}
    assert all(r["group"] is None for r in recs.values() if r["status"] != "new")
    # the group with a location clue (GPS, serial) is reviewed first, then larger groups
    assert g["serial_0.jpg"] == "G0001"
    summary = json.loads((case / "summary.json").read_text())
    assert summary["groups"]["count"] == len(set(g.values()))


def test_summary_reconciles(scanned: tuple[Path, dict], corpus: dict[str, object]) -> None:
    case, recs = scanned
    s = json.loads((case / "summary.json").read_text())
    ev: Path = corpus["evidence"]  # type: ignore[assignment]
    on_disk = sum(1 for p in ev.rglob("*") if p.is_file())
    members = len(zipfile.ZipFile(ev / "bundle.zip").namelist())
    assert s["files_in"] == on_disk + members
    assert s["files_in"] == s["files_accounted"] == len(recs)
    assert s["reconciled"] is True
    assert sum(s["by_status"].values()) == len(recs)
    assert s["by_status"]["known"] == sum(1 for r in recs.values() if r["status"] == "known")
    assert s["by_category"]["us-cat:1"] >= 2


def test_case_outputs_owner_only(scanned: tuple[Path, dict]) -> None:
    case, _ = scanned
    assert stat.S_IMODE(case.stat().st_mode) == 0o700
    names = {p.name for p in case.iterdir()}
    assert {"case.sqlite", "files.jsonl", "summary.json", "report.html", "export-vics.json"} <= names
    for p in case.iterdir():
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, p


def test_vics_export_reads_back(scanned: tuple[Path, dict]) -> None:
    case, recs = scanned
    entries = list(read_entries(case / "export-vics.json"))
    by_md5 = {e.signals["md5"]: e for e in entries}
    exact = recs["dump/dl/exact_0.jpg"]
    e = by_md5[exact["md5"]]
    assert e.category == Category("us-cat", "1")
    paths = {f["FilePath"] for f in e.extra["files"]}
    assert paths == {"dump/dl/exact_0.jpg", "dump/bundle.zip!/inner/exact_0.jpg"}
    assert by_md5[recs["dump/cam/loner.jpg"]["md5"]].category == Category("us-cat", "0")
    assert recs["dump/notes.txt"]["md5"] not in by_md5
    doc = json.loads((case / "export-vics.json").read_text())
    assert all(type(m["MediaID"]) is int for c in doc["value"] for m in c["Media"])


def test_vics_export_imported_as_known_leaves_new_media_out(
    scanned: tuple[Path, dict], tmp_path: Path
) -> None:
    """New media go out uncategorised (category 0): imported as a known set they would hide
    material nobody has looked at, so they are counted and left out (issue 16)."""
    case, recs = scanned
    new = {r["md5"] for r in recs.values() if r["status"] == "new" and r["md5"]}
    with open_store(f"sqlite:///{tmp_path / 's.sqlite'}") as store:
        r = import_entries(store, "from-case", read_entries(case / "export-vics.json"))
        kept = {e.signals["md5"] for e in iter_entries(store, "from-case")}
    assert r.uncategorised == len(new) > 0 and not kept & new
    assert kept == {r["md5"] for r in recs.values() if r["status"] in ("known", "ignorable")}


def _thumbs(html: str) -> list[Image.Image]:
    return [
        Image.open(io.BytesIO(base64.b64decode(b)))
        for b in re.findall(r"data:image/jpeg;base64,([^\"]+)", html)
    ]


def test_report_thumbnails_are_blurred_grayscale(scanned: tuple[Path, dict]) -> None:
    case, _ = scanned
    html = (case / "report.html").read_text()
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "") and "https://" not in html
    thumbs = _thumbs(html)
    assert thumbs, "the report shows thumbnails of new groups"
    for t in thumbs:
        assert t.mode == "L"
        a = np.asarray(t, dtype=np.float32)
        # blurred: no hard edge survives (a Gaussian of radius >= 5 px caps the step between neighbours)
        assert max(np.abs(np.diff(a, axis=0)).max(), np.abs(np.diff(a, axis=1)).max()) < 40
    # the same measure on an unblurred thumbnail of these images finds their hard edges
    sharp = np.asarray(generate_image(703, 640, 480, style=STYLE).convert("L").resize((160, 120)), np.float32)
    assert np.abs(np.diff(sharp, axis=1)).max() > 80
    for section in ("Summary", "Known material", "Errors", "priority order", "Timeline"):
        assert section in html


def test_no_thumbnails(corpus: dict[str, object], tmp_path: Path) -> None:
    _scan(corpus, tmp_path / "c", thumbnails=False)
    html = (tmp_path / "c" / "report.html").read_text()
    assert "data:image/jpeg" not in html
    con = sqlite3.connect(tmp_path / "c" / "case.sqlite")
    assert con.execute("select count(*) from files where thumb is not null").fetchone()[0] == 0


def test_robust_off_is_plain_pdq(corpus: dict[str, object], tmp_path: Path) -> None:
    from opspoor.signals.engine import HashOptions

    recs = _scan(corpus, tmp_path / "c", options=HashOptions(robust=frozenset()))
    assert recs["dump/dl/mirrored_0.jpg"]["status"] == "new"
    assert recs["dump/dl/small_0.png"]["status"] == "known"


def test_sources_are_not_changed(corpus: dict[str, object], tmp_path: Path) -> None:
    ev: Path = corpus["evidence"]  # type: ignore[assignment]
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in ev.rglob("*") if p.is_file()}
    _scan(corpus, tmp_path / "c")
    after = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in ev.rglob("*") if p.is_file()}
    assert before == after


def test_bad_input_becomes_error_records(tmp_path: Path, corpus: dict[str, object]) -> None:
    bad = tmp_path / "bad"
    expected = make_malformed_corpus(bad)
    cfg = ScanConfig(
        sources=[bad], hashsets=["known"], case_dir=tmp_path / "case", db_url=corpus["db"], workers=2
    )  # type: ignore[arg-type]
    result = scan_case(cfg)
    assert result.reconciled
    recs = {
        r["path"]: r for r in map(json.loads, (tmp_path / "case" / "files.jsonl").read_text().splitlines())
    }
    for path, reason in expected.items():
        assert path in recs, path
        assert recs[path]["status"] == "error", (path, recs[path])
        assert recs[path]["error_reason"] == reason, (path, recs[path])
        assert recs[path]["error"]
    summary = json.loads((tmp_path / "case" / "summary.json").read_text())
    assert summary["by_status"]["error"] >= len(expected)
    assert sum(summary["errors_by_reason"].values()) == summary["by_status"]["error"]


def test_other_case_is_refused(corpus: dict[str, object], tmp_path: Path) -> None:
    from opspoor.errors import CaseError

    _scan(corpus, tmp_path / "c")
    cfg = ScanConfig(sources=[tmp_path], hashsets=["known"], case_dir=tmp_path / "c", db_url=corpus["db"])  # type: ignore[arg-type]
    with pytest.raises(CaseError):
        scan_case(cfg)


# --- kill and resume --------------------------------------------------------------------------
def _cli_scan(corpus: dict[str, object], case: Path, workers: int = 1) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "opspoor", "scan", str(corpus["evidence"]), "--hashset", "known", "--hashset",
         "icons", "--case", str(case), "--db", str(corpus["db"]), "--workers", str(workers), "--json-log"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def _records(case: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (case / "files.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_kill_and_resume(corpus: dict[str, object], tmp_path: Path) -> None:
    reference = tmp_path / "ref"
    assert _cli_scan(corpus, reference, workers=2).wait(timeout=300) == 0
    expected = _records(reference)
    # kill at several points: before any result, after some rows, and late (outputs being written)
    for point, rows in enumerate((0, 1, 12, 10_000)):
        case = tmp_path / f"k{point}"
        proc = _cli_scan(corpus, case)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            n = case_rows(case)
            if (
                (rows == 0 and (case / "case.sqlite").exists())
                or (0 < rows <= n)
                or (rows == 10_000 and n == len(expected))
            ):
                break
            time.sleep(0.01)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        done_before = max(0, case_rows(case))
        second = _cli_scan(corpus, case, workers=2)
        assert second.wait(timeout=300) == 0
        got = _records(case)
        assert len(got) == len({r["path"] for r in got}), "no duplicate records after resume"
        assert got == expected, f"kill point {point} ({done_before} rows done before the kill)"


def test_scan_maps_the_index_cached_at_import(
    corpus: dict[str, object], scanned: tuple[Path, dict], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A set cached at import is mapped by the scan, next to a set the scan caches itself."""
    from opspoor.matching import build_index_cache, set_cache_dir
    from opspoor.store import get_hashset

    monkeypatch.setenv("OPSPOOR_CACHE", str(tmp_path / "cache"))
    store = open_store(corpus["db"])  # type: ignore[arg-type]
    build_index_cache(store, "known")  # what `opspoor hashset import` does after the import
    known_dir, icons_dir = (set_cache_dir(store, get_hashset(store, n)) for n in ("known", "icons"))
    files = {f: f.stat().st_mtime_ns for f in known_dir.rglob("*")}
    assert files and not icons_dir.exists()
    records = _scan(corpus, tmp_path / "case")
    assert {f: f.stat().st_mtime_ns for f in known_dir.rglob("*")} == files  # mapped, not rebuilt
    assert icons_dir.is_dir()
    _, first = scanned
    assert {p: r["status"] for p, r in records.items()} == {p: r["status"] for p, r in first.items()}


def test_the_default_scan_finds_a_padded_flat_picture_by_its_low_quality_hash(tmp_path: Path) -> None:
    """The default ``--robust fast`` looks up the low-quality trimmed picture within 12 bits;
    without the low-quality hashes (``--no-low-quality``) the padded copy is new."""
    from opspoor.signals.engine import ROBUST_PRESETS, HashOptions, robust_methods

    def jpeg(img: Image.Image) -> bytes:
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=92)
        return buf.getvalue()

    original = soft_picture(113)
    sig = hash_bytes(jpeg(original))
    db = str(tmp_path / "store.sqlite")
    import_entries(open_store(db), "known", [Entry({"md5": sig.md5, "pdq": sig.pdq}, external_id="soft")])
    evidence = tmp_path / "ev"
    evidence.mkdir()
    padded = Image.new("RGB", (original.width * 6 // 5, original.height * 6 // 5), (0, 0, 0))
    padded.paste(original, (original.width // 10, original.height // 10))
    (evidence / "padded.jpg").write_bytes(jpeg(padded))
    (evidence / "other.jpg").write_bytes(jpeg(soft_picture(104)))

    def scan(case: str, **kw: object) -> dict[str, dict]:
        cfg = ScanConfig(sources=[evidence], hashsets=["known"], case_dir=tmp_path / case, db_url=db, **kw)  # type: ignore[arg-type]
        assert scan_case(cfg).reconciled
        return {
            r["path"]: r for r in map(json.loads, (tmp_path / case / "files.jsonl").read_text().splitlines())
        }

    found = scan("on", workers=1)
    assert found["ev/padded.jpg"]["status"] == "known"
    assert found["ev/padded.jpg"]["matches"][0]["method"].startswith("border")
    assert found["ev/other.jpg"]["status"] == "new"
    off = HashOptions(robust=robust_methods(ROBUST_PRESETS["fast"], low_quality=False))
    assert scan("off", workers=1, options=off)["ev/padded.jpg"]["status"] == "new"
