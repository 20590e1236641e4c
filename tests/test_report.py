"""The case report: what it says (metadata, evidence, reasons) and how it behaves in a real browser
(Debian's Chromium through Playwright): offline, filters and sort, nothing unblurred, the PDF."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import shutil
import sqlite3
import stat
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from opspoor.casefile.scan import scan_case
from opspoor.demo.images import generate_image
from opspoor.hashsets.model import CATEGORY_NAMES, SCHEMES, Category, Entry, category_name
from opspoor.report.charts import timeline, timeline_series
from opspoor.signals.engine import hash_bytes
from opspoor.store import import_entries, open_store
from opspoor.triage.config import ScanConfig
from pictures import camera_exif, jpeg

STYLE = "shapes"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A benign case: known copies (exact and resized) in two categories, an ignorable icon, a
    series of near-duplicates, two pictures sharing a camera serial (one with GPS), loners, a text
    file, a broken image; two sources, one of them a zip file (so it gets a SHA-256)."""
    root = tmp_path_factory.mktemp("report")
    ev = root / "dump"
    ev.mkdir()
    known = []
    for k in range(3):
        img = generate_image(300 + k, 640, 480, style=STYLE)
        data = jpeg(img, 88)
        s = hash_bytes(data)
        known.append(
            Entry(
                {"md5": s.md5, "pdq": s.pdq},
                Category("us-cat", "1" if k < 2 else "4"),
                external_id=f"ext-{k}",
            )
        )
        (ev / f"copy_{k}.jpg").write_bytes(data)  # exact
        buf = io.BytesIO()
        img.resize((320, 240)).save(buf, "PNG")
        (ev / f"resized_{k}.png").write_bytes(buf.getvalue())  # perceptual only
    icon = io.BytesIO()
    generate_image(900, 64, 64, style=STYLE).save(icon, "PNG")
    (ev / "icon.png").write_bytes(icon.getvalue())
    ignorable = [Entry({"md5": hash_bytes(icon.getvalue()).md5}, Category("us-cat", "5"))]
    base = generate_image(700, 800, 600, style=STYLE)
    for k in range(3):
        crop = base.crop((k * 4, k * 3, 792 + k * 4, 594 + k * 3)).resize((800, 600))
        taken = camera_exif(None, f"2023:0{1 + 2 * k}:06 07:08:09")
        (ev / f"series_{k}.jpg").write_bytes(jpeg(crop, 88, taken))
    for k, seed in enumerate((701, 702)):
        ex = camera_exif("SER-42", gps=(52.0, 4.0) if k == 0 else None)
        (ev / f"serial_{k}.jpg").write_bytes(jpeg(generate_image(seed, 640, 480, style=STYLE), 88, ex))
    for k in range(3):
        (ev / f"loner_{k}.jpg").write_bytes(jpeg(generate_image(800 + k, 640, 480, style=STYLE), 88))
    (ev / "notes.txt").write_text("benign text\n")
    (ev / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 40)
    bundle = root / "bundle.zip"
    with zipfile.ZipFile(bundle, "w") as zf:
        zf.writestr("inner.txt", "hello")
    db = f"sqlite:///{root / 'store.sqlite'}"
    store = open_store(db)
    import_entries(store, "known", known, kind="known")
    import_entries(store, "icons", ignorable, kind="ignorable")
    store.close()
    cfg = ScanConfig(
        sources=[ev, bundle],
        hashsets=["known", "icons"],
        case_dir=root / "case",
        db_url=db,
        workers=2,
        case_number="EX-2026-17",
        examiner="A. Examiner",
    )
    result = scan_case(cfg)
    assert result.reconciled
    return {"root": root, "cfg": cfg, "dir": root / "case", "bundle": bundle, "summary": result.summary}


def _html(case: dict[str, Any]) -> str:
    return (case["dir"] / "report.html").read_text()


# --- what the report says -----------------------------------------------------------------------
def test_case_metadata(case: dict[str, Any]) -> None:
    s = json.loads((case["dir"] / "summary.json").read_text())
    assert s["case_number"] == "EX-2026-17" and s["examiner"] == "A. Examiner"
    by_path = {d["path"]: d for d in s["source_details"]}
    zip_info = by_path[str(case["bundle"])]
    assert zip_info["kind"] == "file"
    assert zip_info["size"] == case["bundle"].stat().st_size
    assert zip_info["sha256"] == hashlib.sha256(case["bundle"].read_bytes()).hexdigest()
    folder = by_path[str(case["root"] / "dump")]
    assert folder["kind"] == "folder" and folder["sha256"] is None and folder["files"] == 17
    sets = {h["name"]: h for h in s["hashset_details"]}
    assert sets["known"]["entries"] == 3 and sets["icons"]["entries"] == 1
    assert sets["known"]["kind"] == "known" and sets["icons"]["kind"] == "ignorable"
    assert sets["known"]["version"] >= 1 and sets["known"]["changed_at"]
    assert s["started"] <= s["ended"] and 0 < s["elapsed_seconds"] <= s["ended"] - s["started"] + 1
    html = _html(case)
    for text in ("EX-2026-17", "A. Examiner", zip_info["sha256"], "opspoor " + s["opspoor_version"]):
        assert text in html
    assert re.search(r"<td>known</td><td>known</td><td class=\"num\">3</td>\s*<td>change #\d+", html)


def test_known_material_is_an_evidence_table(case: dict[str, Any]) -> None:
    s = case["summary"]
    assert s["by_status"]["known"] == 6
    # the exact copies hit by MD5, the resized ones by PDQ only: counted apart
    assert s["known_by_signal"] == {"exact": 3, "perceptual": 3}
    html = _html(case)
    table = html[html.index('id="known-table"') :]
    table = table[: table.index("</table>")]
    rows = re.findall(r"<tr data-set=\"known\".*?</tr>", table, re.S)
    assert len(rows) == 6
    copy0 = next(r for r in rows if "copy_0.jpg" in r)
    assert "CAT-1 child abuse material" in copy0 and "ext-0" in copy0 and "<b>exact</b>: md5" in copy0
    resized2 = next(r for r in rows if "resized_2.png" in r)
    assert "CAT-4 comparison / exemplar" in resized2 and "<b>perceptual</b>: pdq" in resized2
    assert 'data-kind="perceptual"' in resized2
    # ignorable and other files are listed, collapsed; errors with their reasons
    ign = html[html.index('<details id="ignorable">') :]
    assert "dump/icon.png" in ign[: ign.index("</details>")]
    other = html[html.index('<details id="other">') :]
    assert "dump/notes.txt" in other[: other.index("</details>")]
    errors = html[html.index('id="error-table"') :]
    assert "dump/broken.jpg" in errors and "UndecodableMedia" in errors


def test_groups_say_why(case: dict[str, Any]) -> None:
    con = sqlite3.connect(case["dir"] / "case.sqlite")
    groups = {gid: json.loads(info) for gid, info in con.execute("select group_id, info from groups")}
    con.close()
    by_file = {Path(p).name: g for g in groups.values() for p in g["paths"]}
    serial = by_file["serial_0.jpg"]
    # its GPS position lies in the Netherlands, the default country of interest (docs/clues.md)
    assert (
        serial["why_ranked"][0].startswith("points to NL: gps 52.00000,4.00000 (NL) from exif: near ")
        and "SER-42" in serial["why_ranked"][0]
    )
    assert "same camera body serial: SER-42" in serial["why_together"]
    series = by_file["series_0.jpg"]
    assert series["size"] == 3
    assert any(
        re.match(r"near-duplicate images: \d+ pairs? within PDQ distance \d+", w)
        for w in series["why_together"]
    )
    assert "larger groups first" in series["why_ranked"][1]
    loner = by_file["loner_0.jpg"]
    assert loner["size"] == 1 and loner["why_together"] == []
    assert loner["why_ranked"][0] == "no location clue; a single file"
    html = _html(case)
    assert "same camera body serial: SER-42" in html
    assert html.count('class="tile"') == 3  # the loners, in the compact grid
    # the GPS position is a place of the chart, linked to its group (first: it has a location clue)
    places = html[html.index('<figure id="places">') :]
    places = places[: places.index("</figure>")]
    assert '<a href="#G0001">G0001</a>' in places and re.search(r'<td class="num">1</td>', places)


def test_elapsed_is_the_scans_own_time_not_the_gap_before_a_resume(
    case: dict[str, Any], tmp_path: Path
) -> None:
    import dataclasses

    case_dir = tmp_path / "c"
    shutil.copytree(case["dir"], case_dir)
    before = json.loads((case_dir / "summary.json").read_text())
    time.sleep(2.0)  # the case lies idle: not scan time
    t0 = time.time()
    result = scan_case(dataclasses.replace(case["cfg"], case_dir=case_dir, case_number=None, examiner=None))
    run2 = time.time() - t0
    after = result.summary
    assert after["started"] == before["started"]
    assert before["elapsed_seconds"] < after["elapsed_seconds"] <= before["elapsed_seconds"] + run2
    assert (after["ended"] - after["started"]) - after["elapsed_seconds"] >= 2.0
    assert after["runs"] == 2
    assert after["case_number"] == "EX-2026-17"  # kept when a resume does not repeat it


def test_every_category_has_a_name() -> None:
    for scheme, codes in SCHEMES.items():
        assert set(CATEGORY_NAMES[scheme]) == set(codes)
    assert category_name("us-cat", "1") == "CAT-1 child abuse material"
    assert category_name("ncmec", "B2").startswith("NCMEC B2")
    assert category_name("us-cat", "8") == "us-cat:8"  # a publisher's own code stays as given
    assert category_name(None, None) == "uncategorised"


def test_timeline_fills_months_and_labels_them() -> None:
    series, unit = timeline_series([("2023-01", 2), ("2023-04", 5), ("bad", 9)])
    assert unit == "month"
    assert series == [("2023-01", 2), ("2023-02", 0), ("2023-03", 0), ("2023-04", 5)]
    svg = timeline([("2023-01", 2), ("2023-04", 5)])
    assert "Jan 2023" in svg and "Apr 2023" in svg and "7 dated files, by month" in svg
    long, unit = timeline_series([("1990-01", 1), ("2020-06", 3)])
    assert unit == "year" and long[0] == ("1990", 1) and long[-1] == ("2020", 3) and len(long) == 31


def test_places_are_named_offline_or_rounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from opspoor.clues.places import name_places

    with monkeypatch.context() as m:
        m.setitem(sys.modules, "reverse_geocode", None)  # as if not installed
        places, note = name_places([(52.0117, -4.3571)])
        assert places[0].name == "52.01°N 4.36°W" and "rounded" in note
    pytest.importorskip("reverse_geocode")  # in the test extra, so CI runs what follows
    places, note = name_places([(52.0117, 4.3571)])
    assert places[0].name.startswith("near ") and "Netherlands" in places[0].name and "GeoNames" in note


# --- in a real browser --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not os.access(CHROMIUM, os.X_OK):
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing in CI (scripts/install-system-deps.sh installs chromium)")
        pytest.skip(f"{CHROMIUM} is not installed (scripts/install-system-deps.sh installs it)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if os.environ.get("CI"):
            raise
        pytest.skip("Playwright for Python is not installed (the test extra holds it)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any, case: dict[str, Any]) -> Iterator[Any]:
    """The report opened from disk; every request that is not the file itself is aborted and kept."""
    url = (case["dir"] / "report.html").resolve().as_uri()
    pg = browser.new_page()
    pg.outside = []  # type: ignore[attr-defined]
    pg.problems = []  # type: ignore[attr-defined]

    def route(r: Any) -> None:
        if r.request.url == url:
            r.continue_()
        else:
            pg.outside.append(r.request.url)  # type: ignore[attr-defined]
            r.abort()

    pg.route("**/*", route)
    pg.on("console", lambda m: m.type in ("error", "warning") and pg.problems.append(m.text))  # type: ignore[attr-defined]
    pg.on("pageerror", lambda e: pg.problems.append(str(e)))  # type: ignore[attr-defined]
    pg.goto(url, wait_until="load")
    yield pg
    pg.close()


def test_page_loads_offline_and_its_script_runs(page: Any) -> None:
    assert page.outside == [], "the report asked for something outside itself"
    assert page.problems == [], page.problems  # a CSP-blocked script would show here
    assert page.locator("#known .shown").inner_text() == "6 of 6 shown"  # the script ran
    assert page.title().startswith("opspoor case report: EX-2026-17")


def _visible_rows(page: Any) -> list[str]:
    return page.locator("#known-table tbody tr:visible td.path").all_inner_texts()


def test_known_table_filters_and_sorts(page: Any) -> None:
    page.select_option('#known select[data-key="cat"]', "cat-4 comparison / exemplar")
    assert [Path(p).name for p in _visible_rows(page)] == ["copy_2.jpg", "resized_2.png"]
    page.select_option('#known select[data-key="kind"]', "perceptual")
    assert [Path(p).name for p in _visible_rows(page)] == ["resized_2.png"]
    assert page.locator("#known .shown").inner_text() == "1 of 6 shown"
    page.select_option('#known select[data-key="cat"]', "")
    page.select_option('#known select[data-key="kind"]', "")
    page.fill('#known input[data-key="search"]', "ext-1")
    assert sorted(Path(p).name for p in _visible_rows(page)) == ["copy_1.jpg", "resized_1.png"]
    page.fill('#known input[data-key="search"]', "")
    assert len(_visible_rows(page)) == 6
    # sort by distance, descending: the resized copies (PDQ only, some bits apart) before the exact
    # copies (which their PDQ also hit, at 0)
    th = page.locator("#known-table thead th", has_text="Distance")
    th.click()
    th.click()
    assert th.get_attribute("aria-sort") == "descending"
    rows = page.locator("#known-table tbody tr")
    values = [int(c) for c in rows.locator("td:last-child").all_inner_texts()]
    assert values == sorted(values, reverse=True) and values[0] > 0
    assert "resized_" in rows.first.inner_text()
    th.click()
    values = [int(c) for c in rows.locator("td:last-child").all_inner_texts()]
    assert values == sorted(values)
    page.locator("#known-table thead th", has_text="File").click()
    files = page.locator("#known-table tbody tr td.path").all_inner_texts()
    assert files == sorted(files, key=str.lower)


def test_new_material_filter_and_search(page: Any) -> None:
    review = "#review .filters"
    page.select_option(f'{review} select[data-key="show"]', "single")
    assert page.locator("#review .tile:visible").count() == 3
    assert page.locator("#review .group:visible").count() == 0
    page.select_option(f'{review} select[data-key="show"]', "clue")
    visible = page.locator("#review .group:visible")
    assert visible.count() == 1 and "SER-42" in visible.inner_text()
    page.select_option(f'{review} select[data-key="show"]', "")
    page.fill(f'{review} input[data-key="search"]', "series_1")
    assert page.locator("#review .group:visible, #review .tile:visible").count() == 1
    assert "3 files" in page.locator("#review .group:visible h3").inner_text()


def test_no_unblurred_image_in_the_dom(page: Any, case: dict[str, Any]) -> None:
    con = sqlite3.connect(case["dir"] / "case.sqlite")
    stored = {bytes(t) for (t,) in con.execute("select thumb from files where thumb is not null")}
    con.close()
    imgs = page.locator("img")
    assert imgs.count() >= 6
    for i in range(imgs.count()):
        img = imgs.nth(i)
        flt = img.evaluate("e => getComputedStyle(e).filter")
        assert "grayscale(1)" in flt and "blur(" in flt, flt
        src = img.get_attribute("src")
        assert src.startswith("data:image/jpeg;base64,")
        data = base64.b64decode(src.split(",", 1)[1])
        assert data in stored, "every image is a thumbnail the scan made blurred"
        pic = Image.open(io.BytesIO(data))
        a = np.asarray(pic, dtype=np.float32)
        assert pic.mode == "L"
        assert max(np.abs(np.diff(a, axis=0)).max(), np.abs(np.diff(a, axis=1)).max()) < 40
        # and what the browser decoded is that thumbnail: same size, same gray level
        w, h, mean = img.evaluate(
            """e => { const c = document.createElement('canvas'); c.width = e.naturalWidth;
                c.height = e.naturalHeight; const x = c.getContext('2d'); x.drawImage(e, 0, 0);
                const d = x.getImageData(0, 0, c.width, c.height).data; let s = 0;
                for (let k = 0; k < d.length; k += 4) { s += d[k]; }
                return [c.width, c.height, s / (d.length / 4)]; }"""
        )
        assert (w, h) == pic.size and abs(mean - a.mean()) < 3
    others = page.evaluate(
        "document.querySelectorAll('image, canvas, video, picture, object, embed, iframe').length"
    )
    assert others == 0
    bg = page.evaluate(
        "[...document.querySelectorAll('*')]"
        ".filter(e => getComputedStyle(e).backgroundImage !== 'none').length"
    )
    assert bg == 0


def test_pdf_export(case: dict[str, Any], browser: Any, tmp_path: Path) -> None:
    out = tmp_path / "r.pdf"
    cmd = [sys.executable, "-m", "opspoor", "report", "pdf", str(case["dir"]), "-o", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    data = out.read_bytes()
    assert data.startswith(b"%PDF")
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    pages = len(re.findall(rb"/Type\s*/Page(?!s)", data))
    assert pages >= 1
    if shutil.which("pdfinfo"):
        info = subprocess.run(["pdfinfo", str(out)], capture_output=True, text=True, check=True).stdout
        assert int(re.search(r"Pages:\s+(\d+)", info)[1]) >= 1  # type: ignore[index]
        assert "(A4)" in info
    if shutil.which("pdftoppm"):
        png = subprocess.run(
            ["pdftoppm", "-r", "40", "-png", "-f", "1", "-l", "1", str(out)], capture_output=True, check=True
        ).stdout
        first = np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.float32)
        assert first.std() > 10, "the first page is blank"
    elif os.environ.get("CI"):
        pytest.fail("pdftoppm missing in CI (poppler-utils is in scripts/install-system-deps.sh)")
    # an existing file is not replaced without --force
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert again.returncode == 2 and "--force" in again.stderr
    assert subprocess.run([*cmd, "--force"], capture_output=True, timeout=180).returncode == 0


def test_pdf_of_a_folder_without_a_report_is_one_line(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "opspoor", "report", "pdf", str(tmp_path)], capture_output=True, text=True
    )
    assert proc.returncode == 2
    expected = f"error: {tmp_path}: no report.html here: run opspoor scan with --case first"
    assert proc.stderr.strip() == expected
    assert not (tmp_path / "report.pdf").exists()
