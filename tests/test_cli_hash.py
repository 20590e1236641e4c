"""``opspoor hash``: JSON lines with fixed keys, a table, error rows, exit status."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from opspoor.cli import app
from opspoor.demo.images import generate_image
from opspoor.demo.videos import generate_video

KEYS = ["path", "type", "size", "md5", "sha1", "sha256", "pdq", "pdq_quality", "vpdq_frames", "error"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hashcli")
    (root / "sub").mkdir()
    generate_image(1, 640, 480).save(root / "sub" / "photo.jpg", quality=90)
    generate_image(2, 300, 200).save(root / "drawing.png")
    generate_video(root / "clip.mp4", seed=4, seconds=2)
    (root / "notes.txt").write_text("benign text\n")
    return root


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["hash", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout


def json_rows(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_json_rows_have_exactly_the_keys(folder: Path) -> None:
    code, text = run("--json", str(folder))
    assert code == 0
    rows = json_rows(text)
    assert [r["path"] for r in rows] == [
        str(folder / name) for name in ("clip.mp4", "drawing.png", "notes.txt", "sub/photo.jpg")
    ]
    for row in rows:
        assert list(row) == KEYS
        data = Path(str(row["path"])).read_bytes()
        assert row["size"] == len(data) and row["error"] is None
        assert row["md5"] == hashlib.md5(data).hexdigest()
        assert row["sha1"] == hashlib.sha1(data).hexdigest()
        assert row["sha256"] == hashlib.sha256(data).hexdigest()
    clip, png, txt, jpg = rows
    assert clip["type"] == "mp4" and clip["pdq"] is None
    assert isinstance(clip["vpdq_frames"], list) and [str(x).split(",")[0] for x in clip["vpdq_frames"]] == [
        "0",
        "10",
    ]
    assert png["type"] == "png" and len(str(png["pdq"])) == 64 and isinstance(png["pdq_quality"], int)
    assert jpg["type"] == "jpeg" and png["vpdq_frames"] is None
    assert txt["type"] == "unknown" and txt["pdq"] is None and txt["pdq_quality"] is None


def test_bad_files_get_error_rows_and_exit_1(folder: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.jpg"
    cut.write_bytes((folder / "sub" / "photo.jpg").read_bytes()[:1500])
    missing = tmp_path / "missing.mp4"
    code, text = run("--json", str(cut), str(missing), str(folder / "drawing.png"))
    assert code == 1
    bad, gone, good = json_rows(text)
    assert bad["path"] == str(cut) and bad["type"] == "jpeg" and bad["pdq"] is None
    assert bad["sha256"] == hashlib.sha256(cut.read_bytes()).hexdigest()
    assert str(bad["error"]).startswith("UndecodableMedia:")
    assert gone["path"] == str(missing) and gone["md5"] is None
    assert "SourceError" in str(gone["error"]) and "no such file" in str(gone["error"])
    assert good["error"] is None and good["pdq"]


def test_every_seconds_and_dihedral_options(folder: Path) -> None:
    code, text = run(
        "--json", "--every-seconds", "0", "--dihedral", str(folder / "clip.mp4"), str(folder / "drawing.png")
    )
    assert code == 0
    clip, png = json_rows(text)
    assert isinstance(clip["vpdq_frames"], list) and len(clip["vpdq_frames"]) == 20
    assert isinstance(png["pdq_dihedral"], list) and len(png["pdq_dihedral"]) == 8
    assert png["pdq_dihedral"][0] == png["pdq"] and clip["pdq_dihedral"] is None


def test_table_output(folder: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nothing.jpg"
    code, text = run(str(folder), str(missing))
    assert code == 1
    header = text.splitlines()[0].split()
    assert header == ["path", "type", "size", "md5", "sha256", "pdq", "pdq_quality", "error"]
    md5 = hashlib.md5((folder / "drawing.png").read_bytes()).hexdigest()
    line = next(row for row in text.splitlines() if "drawing.png" in row)
    assert md5 in line and "png" in line
    assert "vPDQ: 2 frames" in text
    assert "nothing.jpg" in text and "no such file" in text


def test_help_lists_hash() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0 and "hash" in result.stdout
