"""Location clues in a scan: read per media file in the workers, stored in the case, groups pointing
to the country of interest ranked first with the clue that did it, shown with their evidence in
summary.json and report.html; videos (frames, subtitles); the spoken-language plugin slot."""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from clue_pictures import DUTCH, ENGLISH, clue_video, gps_exif, jpeg_bytes, text_picture
from opspoor.casefile.scan import scan_case
from opspoor.clues import speech
from opspoor.clues.extract import ClueOptions, video_clues
from opspoor.clues.ocr import ocr_available
from opspoor.demo.images import generate_image
from opspoor.hashsets.model import Category, Entry
from opspoor.store import import_entries, open_store
from opspoor.triage.config import ScanConfig

pytestmark = pytest.mark.skipif(ocr_available() is not None, reason=f"no OCR here: {ocr_available()}")
pytest.importorskip("reverse_geocode")


@pytest.fixture(scope="module")
def evidence(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("clues")
    ev = root / "dump"
    for d in ("WhatsApp/Media", "cam", "misc", "series"):
        (ev / d).mkdir(parents=True)
    sign = text_picture([DUTCH, "Bel 06-12345678", "Oude Delft 1, 2611 BC Delft"], 22)
    (ev / "WhatsApp/Media/IMG-20240112-WA0003.jpg").write_bytes(jpeg_bytes(sign))
    photo = generate_image(31, 800, 600, style="clouds")
    (ev / "cam/delft.jpg").write_bytes(jpeg_bytes(photo, gps_exif(52.0116, 4.3571, "DC100-000417")))
    (ev / "cam/berlin.jpg").write_bytes(
        jpeg_bytes(generate_image(32, 800, 600, style="shapes"), gps_exif(52.52, 13.405))
    )
    english = text_picture([ENGLISH, "Call +44 20 7946 0018"], 22)
    (ev / "misc/english.jpg").write_bytes(jpeg_bytes(english))
    base = generate_image(40, 800, 600, style="shapes")
    for k in range(3):  # a series without clues: the largest group
        crop = base.crop((k * 4, k * 3, 792 + k * 4, 594 + k * 3)).resize((800, 600))
        (ev / f"series/s_{k}.jpg").write_bytes(jpeg_bytes(crop))
    (ev / "misc/plain.jpg").write_bytes(jpeg_bytes(generate_image(41, 640, 480, style="gradient")))
    clue_video(str(ev / "misc/clip.mkv"), subtitle="Hallo, dit is een ondertitel in het Nederlands.")
    db = f"sqlite:///{root / 'store.sqlite'}"
    store = open_store(db)
    other = jpeg_bytes(generate_image(99, 320, 240, style="clouds"))
    import hashlib

    import_entries(store, "known", [Entry({"md5": hashlib.md5(other).hexdigest()}, Category("us-cat", "1"))])
    store.close()
    return {"root": root, "evidence": ev, "db": db}


def _scan(evidence: dict[str, Any], name: str, **kw: Any) -> tuple[Path, dict[str, Any]]:
    case = evidence["root"] / name
    cfg = ScanConfig(
        sources=[evidence["evidence"]],
        hashsets=["known"],
        case_dir=case,
        db_url=evidence["db"],
        workers=2,
        **kw,
    )
    result = scan_case(cfg)
    assert result.reconciled
    return case, json.loads((case / "summary.json").read_text())


@pytest.fixture(scope="module")
def scanned_nl(evidence: dict[str, Any]) -> tuple[Path, dict[str, Any]]:
    return _scan(evidence, "case-nl", case_number="2024-017")


def _groups(case: Path) -> list[dict[str, Any]]:
    con = sqlite3.connect(case / "case.sqlite")
    try:
        return [json.loads(i) for (i,) in con.execute("SELECT info FROM groups ORDER BY rank")]
    finally:
        con.close()


def test_groups_pointing_to_nl_come_first_and_say_which_clue(scanned_nl: tuple[Path, dict[str, Any]]) -> None:
    case, _ = scanned_nl
    groups = _groups(case)
    first = [g for g in groups if g["points_to_country"]]
    assert {p for g in first for p in g["paths"]} == {
        "dump/WhatsApp/Media/IMG-20240112-WA0003.jpg",
        "dump/cam/delft.jpg",
        "dump/misc/clip.mkv",
    }
    assert groups[: len(first)] == first  # all of them before any other group
    sign = next(g for g in first if "WA0003" in g["paths"][0])
    assert sign["why_ranked"][0].startswith("points to NL: ")
    assert "+31 6 12345678" in sign["why_ranked"][0]
    delft = next(g for g in first if "delft" in g["paths"][0])
    assert "gps" in delft["why_ranked"][0] and "Delft" in delft["why_ranked"][0]
    # other countries' clues next (Berlin GPS, a British number), then the larger clueless series
    rest = [g["paths"][0] for g in groups[len(first) :]]
    assert set(rest[:2]) == {"dump/cam/berlin.jpg", "dump/misc/english.jpg"}
    assert rest[2].startswith("dump/series/")


def test_clues_are_stored_per_file_in_the_case(scanned_nl: tuple[Path, dict[str, Any]]) -> None:
    case, _ = scanned_nl
    con = sqlite3.connect(case / "case.sqlite")
    recs = {p: json.loads(r) for p, r in con.execute("SELECT path, record FROM files")}
    con.close()
    found = recs["dump/WhatsApp/Media/IMG-20240112-WA0003.jpg"]["clues"]["found"]
    kinds = {(c["kind"], c["value"]) for c in found}
    assert {("filename", "WhatsApp"), ("phone", "+31 6 12345678"), ("postcode", "2611 BC")} <= kinds
    assert ("language", "nl") in kinds
    assert not [c for c in recs["dump/misc/plain.jpg"]["clues"]["found"] if c["kind"] != "filename"]
    video = {(c["kind"], c["value"], c["source"]) for c in recs["dump/misc/clip.mkv"]["clues"]["found"]}
    assert ("language", "nl", "subtitle#1 (dut)") in video


def test_summary_and_report_show_each_clue_with_its_evidence(scanned_nl: tuple[Path, dict[str, Any]]) -> None:
    case, summary = scanned_nl
    assert summary["country_of_interest"] == "NL"
    assert summary["groups"]["pointing_to_country"] == 3
    clues = {(c["kind"], c["value"]): c for g in summary["clues"] for c in g["clues"]}
    phone = clues[("phone", "+31 6 12345678")]
    assert phone["countries"] == ["NL"] and "06-12345678" in phone["evidence"]  # the OCR snippet
    assert "Delft" in next(
        c["evidence"] for k, c in clues.items() if k[0] == "gps" and c["countries"] == ["NL"]
    )
    assert clues[("language", "nl")]["detail"]["deciding_words"]
    # evidence is text: nothing that reveals the picture
    assert "base64" not in json.dumps(summary["clues"]) and "thumb" not in json.dumps(summary["clues"])
    html = (case / "report.html").read_text()
    assert "phone +31 6 12345678 (NL) from ocr" in html
    assert "postcode 2611 BC (NL)" in html
    assert "points to NL" in html


def test_country_of_interest_changes_the_order(evidence: dict[str, Any]) -> None:
    case, summary = _scan(evidence, "case-de", country="DE")
    groups = _groups(case)
    assert groups[0]["paths"] == ["dump/cam/berlin.jpg"]
    assert (
        groups[0]["why_ranked"][0].startswith("points to DE: gps") and "Berlin" in groups[0]["why_ranked"][0]
    )
    assert summary["groups"]["pointing_to_country"] == 1


def test_no_clues_scans_without_them(evidence: dict[str, Any]) -> None:
    case, summary = _scan(evidence, "case-none", clues=False)
    con = sqlite3.connect(case / "case.sqlite")
    recs = [json.loads(r) for (r,) in con.execute("SELECT record FROM files")]
    con.close()
    assert not any("clues" in r for r in recs)
    # EXIF GPS is still a clue (it is read with the hashes): Delft first, named offline
    assert _groups(case)[0]["paths"] == ["dump/cam/delft.jpg"]


def test_video_frames_are_read(tmp_path: Path) -> None:
    path = clue_video(str(tmp_path / "v.mkv"), frame_text="Welkom in Delft, bel 070-1234567")
    found = video_clues(path, "v.mkv", ClueOptions())
    assert any(
        c.kind == "phone" and c.value == "+31 70 123 4567" and c.source.startswith("frame@")
        for c in found.clues
    )


def _from(case: str, lines: list[str]) -> list[str]:
    return [line for line in lines if f" in case {case} (" in line]


def test_links_to_an_earlier_case(evidence: dict[str, Any], scanned_nl: tuple[Path, dict[str, Any]]) -> None:
    earlier, _ = scanned_nl
    ev2 = evidence["root"] / "dump2"
    ev2.mkdir()
    (ev2 / "same_camera.jpg").write_bytes(
        jpeg_bytes(generate_image(50, 800, 600, style="clouds"), gps_exif(48.8566, 2.3522, "DC100-000417"))
    )
    (ev2 / "same_number.jpg").write_bytes(jpeg_bytes(text_picture(["Bel 06-12345678"], 24)))
    (ev2 / "same_place.jpg").write_bytes(  # about 100 m from the earlier case's Delft photo
        jpeg_bytes(generate_image(52, 800, 600, style="shapes"), gps_exif(52.0121, 4.3580))
    )
    (ev2 / "unrelated.jpg").write_bytes(jpeg_bytes(generate_image(51, 640, 480, style="gradient")))
    case = evidence["root"] / "case-later"
    cfg = ScanConfig(
        sources=[ev2],
        hashsets=["known"],
        case_dir=case,
        db_url=evidence["db"],
        workers=2,
        link_cases=[earlier],
    )
    summary = scan_case(cfg).summary
    # (the store's clue index also knows the other scans of this module's evidence: only the
    # named case's lines are compared)
    links = {g["paths"][0]: _from("2024-017", g["links"]) for g in _groups(case)}
    assert links["dump2/same_camera.jpg"] == ["serial DC100-000417 was also seen in case 2024-017 (1 file)"]
    assert links["dump2/same_number.jpg"] == ["phone +31 6 12345678 was also seen in case 2024-017 (1 file)"]
    assert links["dump2/same_place.jpg"] == [
        "place 52.01,4.36 (about 1 km) was also seen in case 2024-017 (1 file)"
    ]
    assert links["dump2/unrelated.jpg"] == []
    assert len(summary["links"]) == 3
    assert "serial DC100-000417 was also seen in case 2024-017 (1 file)" in (case / "report.html").read_text()


def test_cli_country_and_link_case(evidence: dict[str, Any], scanned_nl: tuple[Path, dict[str, Any]]) -> None:
    from typer.testing import CliRunner

    from opspoor.cli import app

    earlier, _ = scanned_nl
    ev3 = evidence["root"] / "dump3"
    ev3.mkdir()
    (ev3 / "berlin_again.jpg").write_bytes(
        jpeg_bytes(generate_image(60, 800, 600, style="clouds"), gps_exif(52.52, 13.405, "DC100-000417"))
    )
    (ev3 / "plain.jpg").write_bytes(jpeg_bytes(generate_image(61, 640, 480, style="gradient")))
    case = evidence["root"] / "case-cli"
    res = CliRunner().invoke(
        app,
        ["scan", str(ev3), "--hashset", "known", "--db", evidence["db"], "--case", str(case),
         "--country", "DE", "--link-case", str(earlier), "--workers", "1"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    first = _groups(case)[0]
    assert first["paths"] == ["dump3/berlin_again.jpg"]
    assert first["why_ranked"][0].startswith("points to DE: gps") and "Berlin" in first["why_ranked"][0]
    assert _from(
        "2024-017", first["links"]
    ) == [  # the earlier case's Berlin photo, and its Delft photo's camera
        "place 52.52,13.40 (about 1 km) was also seen in case 2024-017 (1 file)",
        "serial DC100-000417 was also seen in case 2024-017 (1 file)",
    ]


def test_link_case_that_is_no_case_is_refused_before_work(evidence: dict[str, Any], tmp_path: Path) -> None:
    from opspoor.errors import CaseError

    (tmp_path / "notacase").mkdir()
    (tmp_path / "notacase" / "case.sqlite").write_text("hello")
    cfg = ScanConfig(
        sources=[evidence["evidence"]], hashsets=["known"], case_dir=tmp_path / "c", db_url=evidence["db"],
        link_cases=[tmp_path / "notacase"],
    )  # fmt: skip
    with pytest.raises(CaseError, match="not an opspoor case"):
        scan_case(cfg)
    assert not (tmp_path / "c").exists()


# --- the spoken-language slot ------------------------------------------------------------------

TOY_PLUGIN = '''
import numpy as np

_MODEL = np.load(__file__.replace("toy_lid.py", "toy_lid.npz"))


def detect(samples, rate):
    """Nearest centroid on the loudest frequency: a toy, trained in the test on two tones."""
    spectrum = np.abs(np.fft.rfft(samples[: rate]))
    peak = np.fft.rfftfreq(min(len(samples), rate), 1 / rate)[int(np.argmax(spectrum))]
    d = np.abs(_MODEL["centroids"] - peak)
    p = np.exp(-d / 50.0)
    p = p / p.sum()
    order = np.argsort(-p)
    return [(str(_MODEL["labels"][i]), float(p[i])) for i in order]
'''


def test_no_speech_model_is_shipped() -> None:
    speech.speech_plugin.cache_clear()
    assert speech.speech_plugin() is None


def test_speech_plugin_slot_with_a_model_made_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # "train" the toy model: the peak frequency of a 220 Hz tone is "nl", of a 660 Hz tone "en"
    rate = speech.RATE
    t = np.arange(rate) / rate
    peaks = []
    for hz in (220.0, 660.0):
        spectrum = np.abs(np.fft.rfft(np.sin(2 * np.pi * hz * t)))
        peaks.append(np.fft.rfftfreq(rate, 1 / rate)[int(np.argmax(spectrum))])
    np.savez(tmp_path / "toy_lid.npz", centroids=np.array(peaks), labels=np.array(["nl", "en"]))
    (tmp_path / "toy_lid.py").write_text(TOY_PLUGIN)
    dist = tmp_path / "toy_lid-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-lid\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[{speech.ENTRY_POINT_GROUP}]\ntoy = toy_lid:detect\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    speech.speech_plugin.cache_clear()
    try:
        name, _ = speech.speech_plugin() or ("", None)
        assert name == "toy"
        dutch = clue_video(str(tmp_path / "nl.mkv"), tone_hz=220.0)
        english = clue_video(str(tmp_path / "en.mkv"), tone_hz=660.0)
        said = [
            [
                (c.value, c.source)
                for c in video_clues(p, "x.mkv", ClueOptions(ocr=False)).clues
                if c.kind == "language"
            ]
            for p in (dutch, english)
        ]
        assert said == [[("nl", "speech")], [("en", "speech")]]
    finally:
        speech.speech_plugin.cache_clear()
        sys.modules.pop("toy_lid", None)
