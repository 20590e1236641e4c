"""``opspoor hash``: JSON lines with fixed keys, a table, error rows, exit status."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
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


# --- special files: never opened, never a hang ------------------------------------------------


def _opspoor(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """A real process with a time limit: a command that blocked on a FIFO would fail here."""
    return subprocess.run(
        [sys.executable, "-m", "opspoor", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def test_folder_rows_name_fifos_broken_symlinks_and_loops(tmp_path: Path) -> None:
    """``hash FOLDER`` walks the folder as the scan does: a FIFO (no writer: reading it would block),
    a broken symlink and a symlink loop each get a row with the reason, the good file is hashed."""
    (tmp_path / "good.txt").write_text("benign\n")
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "broken").symlink_to(tmp_path / "nowhere")
    (tmp_path / "loop_a").symlink_to(tmp_path / "loop_b")
    (tmp_path / "loop_b").symlink_to(tmp_path / "loop_a")
    proc = _opspoor("hash", "--json", str(tmp_path))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    rows = {Path(str(r["path"])).name: r for r in json_rows(proc.stdout)}
    assert set(rows) == {"good.txt", "pipe", "broken", "loop_a", "loop_b"}
    assert rows["good.txt"]["error"] is None and rows["good.txt"]["md5"]
    assert "not a regular file (fifo)" in str(rows["pipe"]["error"])
    assert "broken symlink" in str(rows["broken"]["error"])
    assert "symlink loop" in str(rows["loop_a"]["error"]) and "symlink loop" in str(rows["loop_b"]["error"])


def test_fifo_device_folder_and_loop_named_on_the_command_line(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    proc = _opspoor("hash", "--json", str(tmp_path / "pipe"), "/dev/zero", str(tmp_path / "loop"))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    pipe, zero, loop = json_rows(proc.stdout)
    assert "not a regular file (fifo)" in str(pipe["error"])
    assert "not a regular file (character device)" in str(zero["error"])
    assert "symlink loop" in str(loop["error"])


def test_a_table_fits_80_columns_and_keeps_file_names(folder: Path, tmp_path: Path) -> None:
    """On a terminal 80 columns wide: no line longer, every file name whole, the error whole below."""
    from rich.console import Console

    from opspoor.cli.hash_cmd import COLUMNS, _hash_one, _table_row, hash_targets, signals_row
    from opspoor.cli.tables import print_table
    from opspoor.signals.engine import HashOptions

    deep = tmp_path / "a-rather-long-folder-name" / "and-another-one-below-it"
    deep.mkdir(parents=True)
    (deep / "holiday-picture-2019.jpg").write_bytes((folder / "sub" / "photo.jpg").read_bytes()[:1500])
    rows = []
    for shown, path, error in hash_targets([folder, tmp_path]):
        sig, failure = _hash_one(path, HashOptions()) if path else (None, error)
        rows.append(_table_row(signals_row(shown, sig, failure), sig))
    console = Console(file=io.StringIO(), width=80, force_terminal=True, color_system=None, soft_wrap=True)
    print_table(COLUMNS, rows, console=console)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    lines = text.splitlines()
    table_lines = [x for x in lines if not x.startswith(str(tmp_path))]
    assert all(len(x) <= 80 for x in table_lines), "\n".join(table_lines)
    for name in ("photo.jpg", "drawing.png", "clip.mp4", "notes.txt", "holiday-picture-2019.jpg"):
        assert any(name in x for x in table_lines), name
    # the cut error is printed whole on one line after the table, after its path
    full = next(x for x in lines if x.startswith(str(deep / "holiday-picture-2019.jpg") + ": "))
    assert "UndecodableMedia: cannot decode jpeg" in full and "not processed" in full


def test_messages_name_no_python_objects(tmp_path: Path) -> None:
    """Pillow names the in-memory stream it could not identify (``<_io.BytesIO object at 0x…>``):
    the message keeps its words and drops the object."""
    (tmp_path / "bad.gif").write_bytes(b"GIF89a\x00")
    (tmp_path / "bad.webp").write_bytes(b"RIFF\x10\x00\x00\x00WEBPxxxx")
    code, text = run("--json", str(tmp_path))
    assert code == 1
    for row in json_rows(text):
        assert "cannot identify image file" in str(row["error"])
        assert "object at 0x" not in str(row["error"]) and "<" not in str(row["error"])
