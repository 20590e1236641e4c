"""Location clues from text, names, pictures (opspoor.clues): each finder on known input, OCR on
generated benign pictures (Dutch at 20 px, English, German, turned, on a photo), and no OCR text on
generated photos without text."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from clue_pictures import DUTCH, ENGLISH, GERMAN, jpeg_bytes, text_picture
from opspoor.clues import TEXT_CLUES, text_clues
from opspoor.clues.extract import ClueOptions, image_clues, picture_clues
from opspoor.clues.filenames import filename_clues
from opspoor.clues.gps import gps_clues
from opspoor.clues.language import identify
from opspoor.clues.model import Clue
from opspoor.clues.ocr import ocr_available, read_text
from opspoor.clues.phones import phone_clues
from opspoor.clues.postcodes import plate_clues, postcode_clues
from opspoor.clues.textlike import text_likeness
from opspoor.clues.urls import url_clues
from opspoor.demo.images import generate_image

needs_ocr = pytest.mark.skipif(ocr_available() is not None, reason=f"no OCR here: {ocr_available()}")


def _values(clues: list[Clue], kind: str) -> list[str]:
    return [c.value for c in clues if c.kind == kind]


def test_phone_numbers_get_their_country_and_local_numbers_read_as_the_case_country() -> None:
    found = phone_clues("Bel 06-12345678 of +32 2 555 12 12, bestelnummer 20240101", "ocr", "NL")
    assert _values(found, "phone") == ["+31 6 12345678", "+32 2 555 12 12"]
    assert [c.countries for c in found] == [("NL",), ("BE",)]
    assert "06-12345678" in found[0].evidence  # as written, with context
    # written without prefix: in a German case, read as German unless the text's language says Dutch
    assert [c.countries for c in phone_clues("Bel 06-12345678", "ocr", "DE")] == [("DE",)]
    dutch = phone_clues("Bel 06-12345678", "ocr", "DE", language_regions=["NL", "BE"])
    assert [c.countries for c in dutch] == [("NL",)]
    assert dutch[0].detail["read_as"] == "written without country prefix; read as NL"


def test_dutch_text_reads_its_local_number_as_dutch_in_any_case() -> None:
    found = text_clues(f"{DUTCH}. Bel 06-12345678", "ocr", country="DE")
    assert [(c.value, c.countries) for c in found if c.kind == "phone"] == [("+31 6 12345678", ("NL",))]


def test_postcodes_and_plates_by_pattern() -> None:
    text = "Oude Delft 1, 2611 BC Delft; Rue Neuve 5, B-1000 Brussel. Auto 12-ABC-3 en 1-ABC-234."
    assert _values(postcode_clues(text, "ocr"), "postcode") == ["2611 BC", "B-1000"]
    plates = plate_clues(text, "ocr")
    assert [(c.value, c.countries) for c in plates] == [("1-ABC-234", ("BE",))]  # 12-ABC-3: vowel A
    assert _values(plate_clues("kenteken 12-BDF-3, GV-123-B", "ocr"), "plate") == ["12-BDF-3", "GV-123-B"]
    # a postcode needs letters the post gives out; four digits alone are no Belgian postcode
    assert postcode_clues("2611 SS en 1000 Brussel", "ocr") == []


def test_urls_name_their_country_code_and_skip_file_names() -> None:
    found = url_clues("zie www.voorbeeld.nl, mail info@example.be of https://example.com; foto.jpg", "ocr")
    assert [(c.value, c.countries) for c in found] == [
        ("voorbeeld.nl", ("NL",)),
        ("example.be", ("BE",)),
        ("example.com", ()),
    ]


def test_language_with_the_words_that_decided_it() -> None:
    lang, prob, deciding = identify(DUTCH) or ("", 0.0, [])
    assert lang == "nl" and prob >= 0.5
    assert deciding and set(deciding) <= {w.lower() for w in DUTCH.split()}
    assert identify("de fiets") is None  # too few words to call
    assert (identify(GERMAN) or ("",))[0] == "de"
    assert (identify(ENGLISH) or ("",))[0] == "en"


def test_registry_runs_every_text_finder() -> None:
    kinds = {name for name, _ in TEXT_CLUES}
    assert kinds == {"language", "phone", "postcode", "plate", "url"}
    found = text_clues(f"{DUTCH}. Bel 070-1234567, 2611 BC Delft, www.delft.nl", "ocr")
    assert {c.kind for c in found} == kinds - {"plate"}


@pytest.mark.parametrize(
    ("path", "app"),
    [
        ("phone/WhatsApp/Media/IMG-20240112-WA0003.jpg", "WhatsApp"),
        ("dl/photo_12@05-03-2024_10-11-12.jpg", "Telegram"),
        ("DCIM/100APPLE/IMG_1234.JPG", "iPhone/iPad camera"),
        ("x/PXL_20240101_101112345.jpg", "Android camera"),
    ],
)
def test_file_names_say_which_app_or_camera_named_them(path: str, app: str) -> None:
    assert app in _values(filename_clues(path), "filename")


def test_words_in_folder_names_give_a_language() -> None:
    found = filename_clues("vakantie met de kinderen in het zomerhuis/strand en zee/001.jpg")
    assert ("language", "nl") in {(c.kind, c.value) for c in found}
    assert not [c for c in filename_clues("a/b/IMG_0001.JPG") if c.kind == "language"]


def test_gps_position_named_offline() -> None:
    pytest.importorskip("reverse_geocode")
    delft, berlin = gps_clues([(52.0116, 4.3571), (52.52, 13.405)])
    assert delft.countries == ("NL",) and "Delft" in delft.evidence
    assert berlin.countries == ("DE",) and "Berlin" in berlin.evidence


# --- pictures ----------------------------------------------------------------------------------


@needs_ocr
def test_ocr_reads_a_dutch_sentence_at_20_px_and_calls_it_dutch() -> None:
    img = text_picture([DUTCH], height=20)
    gray = np.asarray(img.convert("L"))
    assert text_likeness(gray).likely
    found = picture_clues(gray, "ocr", ClueOptions(), [])
    lang = [c for c in found if c.kind == "language"]
    assert [c.value for c in lang] == ["nl"] and lang[0].countries[0] == "NL"
    assert lang[0].detail["deciding_words"]
    assert "Nederlands" in next(c.value for c in found if c.kind == "text")
    # the same through the scan's path: the test on the 512 px picture the hash step decodes
    assert "nl" in _values(image_clues(jpeg_bytes(img), "dump/zin.jpg", ClueOptions()).clues, "language")


@needs_ocr
@pytest.mark.parametrize(("text", "lang"), [(ENGLISH, "en"), (GERMAN, "de")])
def test_ocr_english_and_german(text: str, lang: str) -> None:
    found = picture_clues(np.asarray(text_picture([text], 24).convert("L")), "ocr", ClueOptions(), [])
    assert _values(found, "language") == [lang]


@needs_ocr
def test_ocr_text_turned_90_degrees() -> None:
    gray = np.asarray(text_picture([DUTCH], height=22, rotate=90).convert("L"))
    like = text_likeness(gray)
    assert like.likely and like.turned
    assert "Nederlands" in read_text(gray, turned=True).text
    upside = np.asarray(text_picture([DUTCH], height=22, rotate=270).convert("L"))
    assert "Nederlands" in read_text(upside, turned=True).text


@needs_ocr
def test_ocr_on_a_photo_with_a_sign_finds_phone_and_postcode() -> None:
    photo = generate_image(11, 1024, 768, style="clouds")
    img = text_picture([DUTCH, "Bel 06-12345678", "Oude Delft 1, 2611 BC Delft"], 26, (1024, 768), photo)
    found = image_clues(jpeg_bytes(img), "dump/foto.jpg", ClueOptions()).clues
    assert "+31 6 12345678" in _values(found, "phone")
    assert "2611 BC" in _values(found, "postcode")
    assert "nl" in _values(found, "language")


@pytest.mark.parametrize("style", ["clouds", "gradient", "stripes", "checkers"])
def test_photos_without_text_are_not_read(style: str) -> None:
    notes: list[str] = []
    for seed in range(6):
        gray = np.asarray(generate_image(seed, 800, 600, style=style).convert("L"))
        assert not [c for c in picture_clues(gray, "ocr", ClueOptions(), notes) if c.kind != "filename"]
    assert not notes  # the cheap test kept OCR from running at all


def test_a_row_of_glints_is_no_text_but_small_letters_on_a_large_photo_are() -> None:
    """Short bright streaks in a band (light on water) fill a line-shaped box as text does, but
    their strokes do not alternate with gaps as letters do; a caption whose lines are 7-8 px in
    the 512 px picture the test works on is still found."""
    import cv2

    for seed in range(8):
        rng = np.random.default_rng(seed)
        water = np.full((384, 512), 30, np.uint8)
        for _ in range(40):
            x, y, length = int(rng.integers(100, 300)), int(rng.integers(150, 158)), int(rng.integers(8, 20))
            cv2.line(water, (x, y), (x + length, y), 230, 1)
        assert not text_likeness(water).likely
    photo = generate_image(12, 2048, 1536, style="clouds")
    caption = np.asarray(text_picture([DUTCH], 30, (2048, 1536), photo).convert("L"))
    small = cv2.resize(caption, (512, 384), interpolation=cv2.INTER_AREA)
    assert text_likeness(small).likely


def test_no_ocr_option_keeps_only_the_cheap_clues() -> None:
    img = text_picture([DUTCH, "Bel 06-12345678"], 20)
    out = image_clues(jpeg_bytes(img), "WhatsApp/IMG-20240112-WA0003.jpg", ClueOptions(ocr=False))
    assert [c.kind for c in out.clues] == ["filename"]


def test_clue_round_trips_through_json() -> None:
    c = Clue("phone", "+31 6 12345678", "ocr", ("NL",), "Bel 06-12345678", {"written": "06-12345678"})
    assert Clue.from_json(c.to_json()) == c
    assert c.describe() == "phone +31 6 12345678 (NL) from ocr: Bel 06-12345678"


@needs_ocr
def test_the_scan_worker_hands_the_hash_steps_picture_to_the_clues(monkeypatch: pytest.MonkeyPatch) -> None:
    from opspoor.clues import extract
    from opspoor.signals.engine import ROBUST_PRESETS, HashOptions
    from opspoor.triage import worker

    def no_second_decode(*_a: object, **_k: object) -> None:
        raise AssertionError("the clue step decoded the picture again")

    reads: list[str] = []
    read_all = worker._read_all
    monkeypatch.setattr(worker, "_read_all", lambda task: reads.append(task.path) or read_all(task))
    monkeypatch.setattr(extract, "decode_image", no_second_decode)
    options = HashOptions(robust=ROBUST_PRESETS["fast"], thumbnail=True)  # the scan's default
    photo = jpeg_bytes(generate_image(3, 1024, 768, style="clouds"))
    _, _, out, _ = worker.run_task(worker.Task(0, "dump/photo.jpg", None, photo), options, ClueOptions())
    assert out["pdq"] and out["clues"] == {"found": [], "notes": []}
    assert reads == []  # a picture without text: neither read nor decoded again
    sign = jpeg_bytes(text_picture([DUTCH, "Bel 06-12345678"], 24))
    _, _, out, _ = worker.run_task(worker.Task(1, "dump/sign.jpg", None, sign), options, ClueOptions())
    assert reads == ["dump/sign.jpg"]  # text: read again once, for OCR at the size it needs
    assert "+31 6 12345678" in [c["value"] for c in out["clues"]["found"] if c["kind"] == "phone"]


@needs_ocr
def test_large_text_is_read_scaled_down_to_the_line_height_ocr_needs(monkeypatch: pytest.MonkeyPatch) -> None:
    from opspoor.clues import extract

    regions: list[tuple[int, ...]] = []
    real = extract.read_text
    monkeypatch.setattr(
        extract, "read_text", lambda g, turned=False: regions.append(g.shape) or real(g, turned)
    )
    img = text_picture(["Bel 06-12345678 in Delft"], 140)  # a line of 140 px: 3 times what OCR needs
    found = image_clues(jpeg_bytes(img), "dump/poster.jpg", ClueOptions()).clues
    assert "12345678 in Delft" in _values(found, "text")[0]
    assert len(regions) == 1 and regions[0][0] < 140  # read at a reduced scale: less than the line


@needs_ocr
def test_models_loaded_before_the_workers_fork_are_shared() -> None:
    import multiprocessing

    from opspoor.clues import language, ocr
    from opspoor.signals.engine import HashOptions
    from opspoor.triage.pool import CrashSafePool

    if multiprocessing.get_start_method() != "fork":
        pytest.skip("workers are not forked here: each loads the models itself, once")
    language._identifier.cache_clear()
    ocr._engine.cache_clear()
    pool = CrashSafePool(1, HashOptions(), ClueOptions())
    try:
        assert pool.pool.submit(_models_loaded).result() == (1, 1)
    finally:
        pool.shutdown()
    language._identifier.cache_clear()
    ocr._engine.cache_clear()
    pool = CrashSafePool(1, HashOptions(), ClueOptions(enabled=False))
    try:
        assert pool.pool.submit(_models_loaded).result() == (0, 0)  # --no-clues: none loaded
    finally:
        pool.shutdown()


def _models_loaded() -> tuple[int, int]:
    from opspoor.clues import language, ocr

    return language._identifier.cache_info().currsize, ocr._engine.cache_info().currsize


def test_language_model_is_read_from_an_unpacked_copy_in_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The xz-compressed model is unpacked once into the cache folder, owner-only, and read from
    there afterwards; the answers are py3langid's own; an unwritable cache falls back to the
    packed file."""
    import stat

    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    from opspoor.clues import language

    monkeypatch.setenv("OPSPOOR_CACHE", str(tmp_path / "cache"))
    language._identifier.cache_clear()
    try:
        ours = language._identifier()
        copies = list((tmp_path / "cache" / "models").glob("langid-*.npz"))
        assert len(copies) == 1 and stat.S_IMODE(copies[0].stat().st_mode) == 0o600
        assert stat.S_IMODE((tmp_path / "cache").stat().st_mode) == 0o700
        theirs = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
        theirs.set_languages(ours.nb_classes)
        for text in (DUTCH, ENGLISH, GERMAN):
            assert ours.classify(text) == theirs.classify(text)
        language._identifier.cache_clear()
        blocker = tmp_path / "not-a-folder"
        blocker.write_text("")
        monkeypatch.setenv("OPSPOOR_CACHE", str(blocker))
        assert identify(DUTCH) is not None and identify(DUTCH)[0] == "nl"  # type: ignore[index]
    finally:
        language._identifier.cache_clear()


def test_place_names_are_reverse_geocodes_own_from_the_cached_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The towns' copy in the cache folder (made by the first search, read by the next) names the
    same nearest town as reverse_geocode.search, for points all over the world."""
    reverse_geocode = pytest.importorskip("reverse_geocode")
    from opspoor.clues import places

    monkeypatch.setenv("OPSPOOR_CACHE", str(tmp_path))
    rng = np.random.default_rng(7)
    points = [(52.0116, 4.3571), (52.52, 13.405), (-33.86, 151.21), (0.0, 0.0)] + [
        (float(lat), float(lon)) for lat, lon in rng.uniform((-60, -180), (70, 180), (300, 2))
    ]
    want = [
        (t["city"], t.get("state", ""), t["country"], t["country_code"])
        for t in reverse_geocode.search(points)
    ]
    for _ in range(2):  # first from the package's data (the copy written), then from the copy
        places._towns.cache_clear()
        got = [
            (t["city"], t["state"], t["country"], t["country_code"]) for t in places._nearest_towns(points)
        ]
        assert got == want
        assert list((tmp_path / "models").glob("geonames-*.npz"))
