"""The review workspace shows each group's clues with their evidence, in a real browser (Debian's
Chromium through Playwright): a benign generated picture with a rendered Dutch sentence and GPS EXIF
shows the Dutch OCR snippet, the language with its deciding words and the place; the HTML report
shows the same evidence. Nothing in the clues reveals the picture."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest

from clue_pictures import DUTCH, gps_exif, jpeg_bytes, text_picture
from opspoor.casefile.scan import scan_case
from opspoor.demo.images import generate_image
from opspoor.store import import_entries, open_store
from opspoor.triage.config import ScanConfig
from review_case import serve_review
from test_report import browser  # noqa: F401  (the report tests' Chromium fixture, reused)


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("review-clues")
    ev = root / "dump"
    ev.mkdir()
    sign = text_picture([DUTCH, "Bel 06-12345678"], 22)
    (ev / "sign.jpg").write_bytes(jpeg_bytes(sign, gps_exif(52.0116, 4.3571)))  # Delft
    (ev / "plain.jpg").write_bytes(jpeg_bytes(generate_image(41, 640, 480, style="shapes")))
    db = f"sqlite:///{root / 'store.sqlite'}"
    with open_store(db) as store:
        import_entries(store, "known", [], kind="known")
    cfg = ScanConfig(sources=[ev], hashsets=["known"], case_dir=root / "case", db_url=db, workers=1)
    result = scan_case(cfg)
    assert result.reconciled
    summary = json.loads((root / "case" / "summary.json").read_text())
    dutch = next(g for g in summary["clues"] if any(c["kind"] == "language" for c in g["clues"]))
    return {"dir": root / "case", "group": dutch["group"], "summary": summary}


@pytest.fixture(scope="module")
def served(case: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """``opspoor review CASE_DIR`` as a user runs it; the URL it prints."""
    with serve_review(case["dir"]) as run:
        yield {**case, **run}


def test_group_page_shows_each_clue_with_its_evidence(browser: Any, served: dict[str, Any]) -> None:  # noqa: F811
    ctx = browser.new_context(viewport={"width": 1200, "height": 900})
    pg = ctx.new_page()
    pg.goto(served["url"], wait_until="load")
    pg.goto(f"{served['base']}/group/{served['group']}", wait_until="networkidle")
    clues = pg.inner_text("#clues")
    kinds = pg.eval_on_selector_all("#clues li.clue", "els => els.map(e => e.dataset.kind)")
    assert {"text", "language", "gps", "phone"} <= set(kinds), clues
    assert "Nederlands" in clues  # the OCR snippet of the rendered Dutch sentence
    lang = pg.inner_text('#clues li.clue[data-kind="language"]')
    assert lang.startswith("language nl") and "words:" in lang  # the language and the deciding words
    assert "Delft" in pg.inner_text('#clues li.clue[data-kind="gps"]')  # the place
    assert "+31 6 12345678" in pg.inner_text('#clues li.clue[data-kind="phone"]')
    assert pg.locator("#clues img").count() == 0  # words only: nothing of the picture
    # the group without clues shows no clue list
    con = sqlite3.connect(served["dir"] / "case.sqlite")
    ids = [g for (g,) in con.execute("SELECT group_id FROM groups")]
    con.close()
    other = next(g for g in ids if g != served["group"])
    pg.goto(f"{served['base']}/group/{other}", wait_until="networkidle")
    assert pg.locator("#clues").count() == 0
    ctx.close()


def test_report_shows_the_same_evidence(case: dict[str, Any]) -> None:
    html = (case["dir"] / "report.html").read_text()
    badges = re.findall(r"data-clue>([^<]*)<", html)  # a group's badges, a single file's tile lines
    text = " ".join(badges)
    assert "Nederlands" in text and "language nl" in text and "words:" in text
    assert "Delft" in html and "phone +31 6 12345678 (NL) from ocr" in text
