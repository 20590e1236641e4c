"""The clue index across cases in the store (migration 0012), on SQLite and PostgreSQL: a scan
records its case's camera serials, places, phone numbers, postcodes, plates and domains; a later
case sharing a serial and a phone number is told "serial ... was also seen in case 2024-017 (2
files)" without naming the earlier case folder, and the earlier case, grouped again, is told of the
later one; values seen in one case only link nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from clue_pictures import DUTCH, gps_exif, jpeg_bytes, text_picture
from opspoor.casefile.scan import scan_case
from opspoor.demo.images import generate_image
from opspoor.review.web import ReviewConfig, create_review_app
from opspoor.store import import_entries, open_store
from opspoor.store.clue_index import cases_with, record_case_clues
from opspoor.triage.config import ScanConfig
from opspoor.triage.links import case_keys, clue_keys
from opspoor.triage.rematch import rematch_case_db

SHARED = "DC100-000417"


def _evidence(root: Path, seed: int, other_serial: str, ink: tuple[int, int, int]) -> Path:
    ev = root / f"dump{seed}"
    ev.mkdir(parents=True)
    for k in range(2 if seed == 1 else 1):
        pic = generate_image(seed * 10 + k, 640, 480, style="shapes")
        (ev / f"cam_{k}.jpg").write_bytes(jpeg_bytes(pic, gps_exif(10.0 + seed, 20.0 + k, serial=SHARED)))
    pic = generate_image(seed * 10 + 5, 640, 480, style="clouds")
    (ev / "other.jpg").write_bytes(jpeg_bytes(pic, gps_exif(-30.0 - seed, 140.0, serial=other_serial)))
    sign = text_picture([DUTCH, "Bel 06-12345678"], 22, ink=ink)
    (ev / "sign.jpg").write_bytes(jpeg_bytes(sign))
    return ev


def _scan(ev: Path, case: Path, db: str, number: str) -> dict[str, Any]:
    cfg = ScanConfig(
        sources=[ev], hashsets=["known"], case_dir=case, db_url=db, workers=1, case_number=number
    )
    assert scan_case(cfg).reconciled
    return json.loads((case / "summary.json").read_text())


def _links(summary: dict[str, Any]) -> list[str]:
    return [line for g in summary["links"] for line in g["links"]]


def _review_page_says(case_dir: Path, line: str) -> None:
    """The review workspace's group page lists the link among the group's clues."""
    cfg = ReviewConfig(case_dir=case_dir, reviewer="alice")
    app = create_review_app(cfg)
    c = TestClient(app, base_url="http://127.0.0.1")
    assert c.get(f"/?token={cfg.secret}", follow_redirects=False).status_code == 303
    try:
        pages = [c.get(f"/group/{g.id}").text for g in app.state.view.groups]
        assert any(f'<li class="link"><b>other case</b> {line}</li>' in p for p in pages)
    finally:
        app.state.view.close()
        app.state.review.close()


def test_two_cases_sharing_a_serial_and_a_phone_link_to_each_other(db_url: str, tmp_path: Path) -> None:
    with open_store(db_url) as store:
        import_entries(store, "known", [], kind="known")
    first = _scan(_evidence(tmp_path, 1, "AAA-1", (20, 20, 30)), tmp_path / "a", db_url, "2024-017")
    assert _links(first) == []  # nothing in the index yet
    second = _scan(_evidence(tmp_path, 2, "BBB-2", (60, 10, 10)), tmp_path / "b", db_url, "2024-031")
    links = _links(second)
    assert f"serial {SHARED} was also seen in case 2024-017 (2 files)" in links
    assert "phone +31 6 12345678 was also seen in case 2024-017 (1 file)" in links
    # unrelated values (the other serial, the places) link nothing
    assert not any("AAA-1" in line or "BBB-2" in line or "place" in line for line in links), links
    report = (tmp_path / "b" / "report.html").read_text()
    assert f"serial {SHARED} was also seen in case 2024-017 (2 files)" in report
    _review_page_says(tmp_path / "b", f"serial {SHARED} was also seen in case 2024-017 (2 files)")
    # the earlier case, grouped again, hears of the later one (no --link-case either way)
    again = rematch_case_db(tmp_path / "a", db_url=db_url)
    back = [line for g in again.groups for line in g.links]
    assert f"serial {SHARED} was also seen in case 2024-031 (1 file)" in back
    assert "phone +31 6 12345678 was also seen in case 2024-031 (1 file)" in back
    # a case scanned again replaces its rows, it does not add to them
    _scan(tmp_path / "dump2", tmp_path / "b", db_url, "2024-031")
    with open_store(db_url) as store:
        seen = cases_with(store, [("serial", SHARED)], besides="none")
    assert seen == {"2024-017": {("serial", SHARED): 2}, "2024-031": {("serial", SHARED): 1}}


def test_keys_are_normalised_and_recorded_per_case(db_url: str) -> None:
    rec = {
        "exif": {"serial": " dc100-000417 ", "gps": [52.01161, 4.35712]},
        "clues": {
            "found": [
                {"kind": "url", "value": "www.Voorbeeld.NL"},
                {"kind": "postcode", "value": "2611  bc"},
                {"kind": "language", "value": "nl"},  # not a link: every Dutch case shares it
            ]
        },
    }
    assert clue_keys(rec) == {
        ("serial", SHARED),
        ("place", "52.01,4.36"),
        ("domain", "voorbeeld.nl"),
        ("postcode", "2611 BC"),
    }
    with open_store(db_url) as store:
        record_case_clues(store, "/cases/x", "x", case_keys([rec, rec]))
        record_case_clues(store, "/cases/y", "y", case_keys([{"exif": {"serial": "OTHER"}}]))
        assert cases_with(store, [("serial", SHARED), ("domain", "voorbeeld.nl")], besides="/cases/y") == {
            "x": {("serial", SHARED): 2, ("domain", "voorbeeld.nl"): 2}
        }
        assert cases_with(store, [("serial", SHARED)], besides="/cases/x") == {}
        assert cases_with(store, [("serial", "NOWHERE")], besides="") == {}
