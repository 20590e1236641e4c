"""``scan`` takes the matching options of ``match`` with the same meaning: ``--distance`` here."""

from __future__ import annotations

import io
import json
from pathlib import Path

from PIL import Image
from typer.testing import CliRunner

from opspoor.cli import app
from opspoor.demo.images import generate_image
from opspoor.hashsets.model import Entry
from opspoor.signals.engine import hash_bytes
from opspoor.signals.pdq import PDQ
from opspoor.store import import_entries, open_store

runner = CliRunner()


def _jpeg(img: Image.Image, quality: int) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def test_scan_distance_means_what_match_distance_means(tmp_path: Path) -> None:
    original = generate_image(4242, 640, 480, style="shapes")
    known = hash_bytes(_jpeg(original, 92))
    db = str(tmp_path / "store.sqlite")
    import_entries(open_store(db), "known", [Entry({"pdq": known.pdq}, external_id="orig")], kind="known")
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    copy = _jpeg(original.resize((320, 240)), 40)
    (evidence / "copy.jpg").write_bytes(copy)
    d = PDQ.distance(known.pdq, hash_bytes(copy).pdq)
    assert 0 < d <= 31

    def status(case: str, *options: str) -> str:
        args = ["scan", str(evidence), "--hashset", "known", "--case", str(tmp_path / case), "--db", db]
        res = runner.invoke(app, [*args, "--workers", "1", "--robust", "off", "--no-thumbnails", *options])
        assert res.exit_code == 0, res.output
        (row,) = [json.loads(x) for x in (tmp_path / case / "files.jsonl").read_text().splitlines()]
        return str(row["status"])

    assert status("default") == "known"
    assert status("strict", "--distance", str(d - 1)) == "new"
    match = runner.invoke(app, ["match", "--hashset", "known", "--db", db, "--robust", "off", "--json",
                                "--distance", str(d - 1), str(evidence / "copy.jpg")])  # fmt: skip
    assert json.loads(match.stdout.splitlines()[0])["matches"] == []


def test_max_member_memory_sets_the_room_for_decoding_archive_members(tmp_path: Path) -> None:
    """By default a member up to 1 GiB is held and decoded (as before the 256 MiB cut);
    ``--max-member-memory`` lowers the room: a larger member is then only hashed."""
    import zipfile

    from opspoor.sources import Limits

    assert Limits().max_in_memory == 1 << 30
    picture = generate_image(7, 1600, 1200, style="mixed")
    buf = io.BytesIO()
    picture.save(buf, "PNG")  # a few MiB
    assert len(buf.getvalue()) > 1 << 20
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    with zipfile.ZipFile(evidence / "photos.zip", "w") as zf:
        zf.writestr("big.png", buf.getvalue())
    db = str(tmp_path / "store.sqlite")
    import_entries(open_store(db), "known", [Entry({"md5": "0" * 32}, external_id="x")], kind="known")

    def row(case: str, *options: str) -> dict[str, object]:
        args = ["scan", str(evidence), "--hashset", "known", "--case", str(tmp_path / case), "--db", db]
        res = runner.invoke(app, [*args, "--workers", "1", "--robust", "off", "--no-thumbnails", *options])
        assert res.exit_code == 0, res.output
        rows = [json.loads(x) for x in (tmp_path / case / "files.jsonl").read_text().splitlines()]
        return next(r for r in rows if str(r["path"]).endswith("big.png"))

    decoded = row("default")
    assert decoded["pdq"] and not decoded.get("error")
    hashed = row("small", "--max-member-memory", "1")
    assert not hashed["pdq"] and hashed["md5"] and "not decoded" in str(hashed.get("error")), hashed


def test_scan_refuses_a_country_code_that_is_not_assigned(tmp_path: Path) -> None:
    from opspoor.cli.options import CommandLineError

    evidence = tmp_path / "evidence"
    evidence.mkdir()
    (evidence / "a.jpg").write_bytes(_jpeg(generate_image(1, 64, 48, style="shapes"), 80))
    db = str(tmp_path / "store.sqlite")
    import_entries(open_store(db), "known", [Entry({"md5": "0" * 32})], kind="known")
    scan = ["scan", str(evidence), "--hashset", "known", "--db", db]
    for bad in ("XX", "X1", "NLD"):
        case = tmp_path / f"case-{bad}"
        res = runner.invoke(app, [*scan, "--case", str(case), "--country", bad])
        assert isinstance(res.exception, CommandLineError), res.output
        assert str(res.exception).startswith("--country: ") and repr(bad) in str(res.exception)
        assert not case.exists()
    res = runner.invoke(app, [*scan, "--case", str(tmp_path / "ok"), "--country", "de", "--workers", "1"])
    assert res.exit_code == 0, res.output
