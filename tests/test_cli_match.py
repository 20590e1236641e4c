"""``opspoor match``: hash values and files against hash sets, through both indexes."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from opspoor.cli import app
from opspoor.demo.images import generate_image
from opspoor.hashsets.model import Category, Entry
from opspoor.signals.engine import hash_bytes
from opspoor.signals.pdq import PDQ
from opspoor.store import import_entries, open_store
from pictures import soft_picture

runner = CliRunner()


def _jpeg(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=92)
    return buf.getvalue()


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    root = tmp_path_factory.mktemp("match")
    db = str(root / "store.sqlite")
    originals = [generate_image(300 + k, 640, 480, style="shapes") for k in range(3)]
    datas = [_jpeg(im) for im in originals]
    sigs = [hash_bytes(d) for d in datas]
    entries = [
        Entry({"md5": s.md5, "sha256": s.sha256, "pdq": s.pdq}, Category("uk", "B"), external_id=f"orig-{k}")
        for k, s in enumerate(sigs)
    ]
    import_entries(open_store(db), "known", entries, kind="known")
    (root / "copy.png").write_bytes(_png(originals[1].resize((320, 240))))
    (root / "rotated.jpg").write_bytes(_jpeg(originals[2].transpose(Image.Transpose.ROTATE_90)))
    boxed = Image.new("RGB", (640, 640), (0, 0, 0))
    boxed.paste(originals[0], (0, 80))  # letterboxed: black bars above and below
    (root / "boxed.jpg").write_bytes(_jpeg(boxed))
    (root / "other.jpg").write_bytes(_jpeg(generate_image(999, 640, 480, style="shapes")))
    return {"root": root, "db": db, "sigs": sigs}


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def _json(args: list[str]) -> tuple[int, list[dict]]:
    res = runner.invoke(app, ["match", *args, "--json"])
    lines = [json.loads(x) for x in res.stdout.splitlines() if x.startswith("{")]
    return res.exit_code, lines


def test_values_match_through_both_indexes(setup: dict) -> None:
    s0 = setup["sigs"][0]
    near = format(int(s0.pdq, 16) ^ ((1 << 31) - 1), "064x")  # 31 bits away: still a match
    far = format(int(s0.pdq, 16) ^ ((1 << 32) - 1), "064x")  # 32 bits away: not
    code, out = _json(["--hashset", "known", "--db", setup["db"], s0.md5, s0.sha256, near, far])
    assert code == 0
    assert [o["input"] for o in out] == [s0.md5, s0.sha256, near, far]
    assert [(m["signal"], m["distance"]) for m in out[0]["matches"]] == [("md5", 0)]
    assert {m["signal"] for m in out[1]["matches"]} == {"sha256"}  # looked up as PDQ too, but far
    assert [(m["signal"], m["distance"]) for m in out[2]["matches"]] == [("pdq", 31)]
    assert PDQ.distance(near, s0.pdq) == 31 and PDQ.distance(far, s0.pdq) == 32
    assert out[3]["matches"] == []
    m = out[0]["matches"][0]
    assert set(m) == {"hashset", "entry_id", "external_id", "signal", "distance", "category"}
    assert m["hashset"] == "known" and m["external_id"] == "orig-0"
    assert m["category"] == {"scheme": "uk", "code": "B"}


def test_a_typed_value_is_looked_up_as_that_type_only(setup: dict) -> None:
    s0 = setup["sigs"][0]
    args = ["--hashset", "known", "--db", setup["db"], f"MD5:{s0.md5.upper()}", f"pdq:{s0.pdq}"]
    code, out = _json([*args, f"sha256:{s0.pdq}", f"sha1:{s0.md5}"])
    assert code == 1  # the last is no SHA-1
    assert [[(m["signal"], m["distance"]) for m in o["matches"]] for o in out[:3]] == [
        [("md5", 0)],
        [("pdq", 0)],
        [],
    ]
    assert "sha1 value must be 40 hex characters, got 32" in out[3]["error"]


def test_files_input_list_and_distance(setup: dict) -> None:
    root: Path = setup["root"]
    listing = root / "inputs.txt"
    listing.write_text(f"# queries\n{root / 'copy.png'}\n{root / 'other.jpg'}\n{setup['sigs'][1].md5}\n")
    code, out = _json(["--hashset", "known", "--db", setup["db"], "--input", str(listing)])
    assert code == 0
    assert len(out) == 3
    copy = out[0]["matches"]
    assert [m["external_id"] for m in copy] == ["orig-1"] and copy[0]["signal"] == "pdq"
    assert out[1]["matches"] == []
    assert out[2]["matches"][0]["external_id"] == "orig-1"
    d = copy[0]["distance"]
    _, strict = _json(
        ["--hashset", "known", "--db", setup["db"], str(root / "copy.png"), "--distance", str(d - 1)]
    )
    assert strict[0]["matches"] == []


def test_robust_methods_find_rotated_and_letterboxed_copies(setup: dict) -> None:
    """On by default; ``--robust off`` gives plain PDQ, which misses both copies."""
    rotated, boxed = str(setup["root"] / "rotated.jpg"), str(setup["root"] / "boxed.jpg")
    base = ["--hashset", "known", "--db", setup["db"]]
    _, plain = _json([*base, rotated, boxed, "--robust", "off"])
    assert plain[0]["matches"] == [] and plain[1]["matches"] == []
    _, robust = _json([*base, rotated, boxed])
    assert [m["external_id"] for m in robust[0]["matches"]] == ["orig-2"]
    assert robust[0]["matches"][0]["method"].startswith("dihedral/")
    assert [m["external_id"] for m in robust[1]["matches"]] == ["orig-0"]
    assert robust[1]["matches"][0]["method"].startswith("border")


def test_bad_input_is_reported_and_others_go_on(setup: dict) -> None:
    code, out = _json(["--hashset", "known", "--db", setup["db"], "nothex", setup["sigs"][0].md5])
    assert code == 1
    assert "error" in out[0] and out[0]["matches"] == []
    assert out[1]["matches"]


def test_unknown_hashset_is_one_line_error(setup: dict) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "opspoor", "match", "--hashset", "nope", "--db", setup["db"], "0" * 32],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and "nope" in proc.stderr


# --- low-quality hashes ---------------------------------------------------------------------------


def _padded(img: Image.Image, fraction: float = 0.1, letterbox: bool = False) -> Image.Image:
    dx, dy = (0 if letterbox else round(fraction * img.width)), round(fraction * img.height)
    canvas = Image.new("RGB", (img.width + 2 * dx, img.height + 2 * dy), (0, 0, 0))
    canvas.paste(img, (dx, dy))
    return canvas


def test_low_quality_region_hashes_find_a_padded_flat_picture(tmp_path: Path) -> None:
    """A wallpaper of PDQ quality below 50, padded: its trimmed picture's hash is low-quality too,
    so it is looked up only within 12 bits — on by default, off with ``--no-low-quality``; a
    padded distractor of the same kind finds nothing either way."""
    from opspoor.signals.robust import LOW_QUALITY_DISTANCE

    db = str(tmp_path / "store.sqlite")
    original, other = soft_picture(113), soft_picture(104)  # (seeds whose padded copy lands within 12 bits)
    sig = hash_bytes(_jpeg(original))
    assert 10 <= (sig.quality or 0) < 50
    import_entries(open_store(db), "known", [Entry({"md5": sig.md5, "pdq": sig.pdq}, external_id="soft")])
    (tmp_path / "padded.jpg").write_bytes(_jpeg(_padded(original)))
    (tmp_path / "boxed.jpg").write_bytes(_jpeg(_padded(original, 0.1, letterbox=True)))
    (tmp_path / "other.jpg").write_bytes(_jpeg(_padded(other)))
    files = [str(tmp_path / n) for n in ("padded.jpg", "boxed.jpg", "other.jpg")]
    base = ["--hashset", "known", "--db", db, *files]
    code, found = _json(base)
    assert code == 0
    padded, boxed, distractor = (o["matches"] for o in found)
    assert [m["external_id"] for m in padded] == ["soft"]
    assert padded[0]["method"].startswith("border") and padded[0]["distance"] <= LOW_QUALITY_DISTANCE
    assert [m["external_id"] for m in boxed] == ["soft"]
    assert distractor == []
    _, off = _json([*base, "--no-low-quality"])
    assert [o["matches"] for o in off] == [[], [], []]


# --- inputs that are not what they seem --------------------------------------------------------


def _opspoor(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """A real process with a time limit: one that blocked on a FIFO would fail here."""
    return subprocess.run(
        [sys.executable, "-m", "opspoor", *args],
        capture_output=True,
        text=True,
        timeout=120,
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        check=False,
    )


def test_input_list_that_is_missing_a_folder_or_a_fifo_is_one_line(setup: dict, tmp_path: Path) -> None:
    import os

    os.mkfifo(tmp_path / "pipe")
    base = ["match", "--hashset", "known", "--db", setup["db"], "--input"]
    for target, words in (
        (tmp_path / "missing.txt", "no such file"),
        (tmp_path, "a folder, not a list file"),
        (tmp_path / "pipe", "not a regular file"),
    ):
        proc = _opspoor(*base, str(target))
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr and proc.stderr.strip().count("\n") == 0, proc.stderr
        assert words in proc.stderr and str(target) in proc.stderr and "--input" in proc.stderr


def test_input_list_from_stdin(setup: dict) -> None:
    md5 = setup["sigs"][0].md5
    proc = _opspoor(
        "match",
        "--hashset",
        "known",
        "--db",
        setup["db"],
        "--input",
        "-",
        "--json",
        stdin=f"# a list\n{md5}\n",
    )
    assert proc.returncode == 0, proc.stderr
    (rec,) = [json.loads(x) for x in proc.stdout.splitlines()]
    assert rec["input"] == md5 and [m["external_id"] for m in rec["matches"]] == ["orig-0"]


def test_inputs_that_are_folders_or_fifos_are_named_as_such(setup: dict, tmp_path: Path) -> None:
    import os

    os.mkfifo(tmp_path / "pipe")
    md5 = setup["sigs"][1].md5
    proc = _opspoor(
        "match",
        "--hashset",
        "known",
        "--db",
        setup["db"],
        "--json",
        str(tmp_path),
        str(tmp_path / "pipe"),
        md5,
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    folder, pipe, value = [json.loads(x) for x in proc.stdout.splitlines()]
    assert "a folder" in folder["error"] and "not a file and" not in folder["error"]
    assert "not a regular file" in pipe["error"]
    assert [m["external_id"] for m in value["matches"]] == ["orig-1"]
    assert "inputs matched" in proc.stderr and setup["db"] in proc.stderr  # the store it used


def test_local_feature_matches_report_inliers_not_a_distance(tmp_path: Path) -> None:
    """Three originals in a set built with --augment; an off-centre crop of one is found by its
    local features: the match says how many patches agree (``inliers``), not "distance 0"."""
    db = str(tmp_path / "store.sqlite")
    originals = tmp_path / "originals"
    originals.mkdir()
    pictures = [generate_image(700 + k, 800, 600, style="shapes") for k in range(3)]
    for k, im in enumerate(pictures):
        (originals / f"orig-{k}.jpg").write_bytes(_jpeg(im))
    res = runner.invoke(app, ["hashset", "build", str(originals), "--name", "held", "--augment", "--db", db])
    assert res.exit_code == 0, res.output
    crop = tmp_path / "crop.jpg"
    crop.write_bytes(_jpeg(pictures[1].crop((180, 0, 800, 470))))  # off-centre: no PDQ method reaches it
    code, out = _json(["--hashset", "held", "--db", db, str(crop)])
    assert code == 0
    (found,) = out[0]["matches"]
    assert found["external_id"] == "orig-1.jpg" and found["signal"] == "local"
    assert "distance" not in found and found["inliers"] >= found["min_inliers"] >= 1
    table = runner.invoke(app, ["match", "--hashset", "held", "--db", db, str(crop)])
    assert f"{found['inliers']} inliers" in table.stdout and "distance" not in table.stdout
