"""``opspoor hashset`` and ``opspoor db`` end to end through ``main()``. Synthetic hashes only."""

from __future__ import annotations

import io
import json
import random
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from opspoor.cli import main
from opspoor.hashsets.formats import read_entries, write_entries
from opspoor.hashsets.model import Category, Entry
from opspoor.store import iter_entries, list_hashsets, open_store


def run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["opspoor", *args])
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def make_entries(n: int, seed: int = 0) -> list[Entry]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        out.append(
            Entry(
                {"md5": rng.randbytes(16).hex(), "sha1": rng.randbytes(20).hex()},
                category=Category("us-cat", str(1 + i % 3)),
                victim_identified=i % 2 == 0,
                distributed=True if i % 3 == 0 else None,
                series=f"series {i % 4}" if i % 4 else None,
                tags=("t1", "t2") if i % 5 == 0 else (),
                date_updated="2024-05-06T07:08:09Z",
                external_id=str(100 + i),
                size=1000 + i,
            )
        )
    return out


def vics_file(tmp_path: Path, entries: list[Entry], name: str = "list.json") -> Path:
    path = tmp_path / name
    write_entries(entries, path, "vics2")
    return path


def fields(e: Entry) -> tuple[object, ...]:
    return (
        e.signals,
        e.category,
        e.victim_identified,
        e.distributed,
        e.series,
        e.tags,
        e.external_id,
        e.size,
    )


def test_import_show_export_roundtrip(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    roundtrip(db_url, "vics2", tmp_path, monkeypatch, capsys)


@pytest.mark.parametrize("fmt", ["vics13", "csv"])
def test_export_other_formats_roundtrip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    roundtrip(f"sqlite:///{tmp_path / 's.sqlite'}", fmt, tmp_path, monkeypatch, capsys)


def roundtrip(
    db_url: str, fmt: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    entries = make_entries(40)
    src = vics_file(tmp_path, entries)
    code, out, _ = run(monkeypatch, capsys, "hashset", "import", str(src), "--name", "hl", "--db", db_url)
    assert code == 0 and "40 entries added" in out
    code, out, _ = run(monkeypatch, capsys, "hashset", "show", "hl", "--json", "--db", db_url)
    doc = json.loads(out)
    assert (doc["entries"], doc["kind"], doc["signals"]) == (40, "known", {"md5": 40, "sha1": 40})
    assert doc["categories"] == {"us-cat:1": 14, "us-cat:2": 13, "us-cat:3": 13}
    exported = tmp_path / f"out.{fmt}"
    code, _, err = run(
        monkeypatch, capsys, "hashset", "export", "hl", "--format", fmt, "-o", str(exported), "--db", db_url
    )
    assert code == 0 and "exported 40 entries" in err
    back = list(read_entries(exported, fmt))
    if fmt == "csv":  # CSV keeps hashes, category and ids; flags are not columns of it
        assert [(e.signals, e.category, e.external_id) for e in back] == [
            (e.signals, e.category, e.external_id) for e in entries
        ]
    else:
        assert [fields(e) for e in back] == [fields(e) for e in entries]
    # and the export imports again as the same set
    code, out, _ = run(
        monkeypatch, capsys, "hashset", "import", str(exported), "--name", "again", "--db", db_url
    )
    assert code == 0
    with open_store(db_url) as s:
        assert [e.signals for e in iter_entries(s, "again")] == [e.signals for e in entries]


def test_first_invalid_record_aborts_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "s.sqlite")
    doc = json.loads(vics_file(tmp_path, make_entries(30)).read_text())
    doc["value"][24]["MD5"] = "not-a-hash"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc, indent=1))
    monkeypatch.chdir(tmp_path)
    code, out, err = run(monkeypatch, capsys, "hashset", "import", str(bad), "--name", "x", "--db", db)
    assert code == 2
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1
    assert (
        str(bad) in lines[0] and "record 25" in lines[0] and "line " in lines[0] and "md5" in lines[0].lower()
    )
    with open_store(db) as s:
        assert list_hashsets(s) == []
    assert not list(tmp_path.glob("*.rejects.jsonl"))


def test_skip_invalid_writes_rejects(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "s.sqlite")
    doc = json.loads(vics_file(tmp_path, make_entries(30)).read_text())
    doc["value"][4]["MD5"] = "abc"
    doc["value"][9]["Category"] = "nine"  # (a number of its own, 9, is kept: us-cat:9)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc, indent=1))
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(
        monkeypatch, capsys, "hashset", "import", str(bad), "-n", "x", "--skip-invalid", "--db", db
    )
    assert code == 0 and "28 entries added" in out and "2 rejected" in out
    rejects = tmp_path / "bad.json.rejects.jsonl"
    assert str(rejects) in out
    rows = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert [r["record"] for r in rows] == [5, 10]
    assert all(r["file"] == str(bad) and r["line"] and r["reason"] for r in rows)
    assert "Category" in rows[1]["reason"]
    assert rejects.stat().st_mode & 0o777 == 0o600
    own = tmp_path / "mine.jsonl"
    code, out, _ = run(
        monkeypatch,
        capsys,
        "hashset",
        "import",
        str(bad),
        "-n",
        "y",
        "--skip-invalid",
        "--rejects",
        str(own),
        "--db",
        db,
    )
    assert code == 0 and len(own.read_text().splitlines()) == 2


def test_list_conflicts_remove_and_db_upgrade(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "s.sqlite")
    code, out, _ = run(monkeypatch, capsys, "db", "upgrade", "--db", db)
    assert code == 0 and "upgraded from empty" in out
    code, out, _ = run(monkeypatch, capsys, "db", "upgrade", "--db", db)
    assert code == 0 and "up to date" in out
    entries = make_entries(6)
    other = Entry(dict(entries[0].signals), category=Category("us-cat", "5"), external_id="dissent")
    run(monkeypatch, capsys, "hashset", "import", str(vics_file(tmp_path, entries)), "-n", "a", "--db", db)
    code, out, _ = run(
        monkeypatch,
        capsys,
        "hashset",
        "import",
        str(vics_file(tmp_path, [other], "b.json")),
        "-n",
        "a",
        "--db",
        db,
    )
    assert "2 conflicts" in out  # md5 and sha1 both disagree
    code, out, _ = run(monkeypatch, capsys, "hashset", "conflicts", "a", "--json", "--db", db)
    rows = json.loads(out)
    assert {r["signal"] for r in rows} == {"md5", "sha1"}
    assert {
        (r["entry"]["external_id"], r["entry"]["category"], r["other"]["external_id"], r["other"]["category"])
        for r in rows
    } == {("100", "us-cat:1", "dissent", "us-cat:5")}
    code, out, _ = run(monkeypatch, capsys, "hashset", "conflicts", "a", "--db", db)
    assert code == 0 and "dissent" in out and "us-cat:5" in out
    run(
        monkeypatch,
        capsys,
        "hashset",
        "import",
        str(vics_file(tmp_path, make_entries(3, 1), "c.json")),
        "-n",
        "ign",
        "--kind",
        "ignorable",
        "--db",
        db,
    )
    code, out, _ = run(monkeypatch, capsys, "hashset", "list", "--json", "--db", db)
    assert [(r["name"], r["kind"], r["entries"]) for r in json.loads(out)] == [
        ("a", "known", 7),
        ("ign", "ignorable", 3),
    ]
    code, out, _ = run(monkeypatch, capsys, "hashset", "remove", "a", "--yes", "--db", db)
    assert code == 0 and "7 entries" in out
    code, _, err = run(monkeypatch, capsys, "hashset", "show", "a", "--db", db)
    # the line names the store searched: a user who forgot --db or $OPSPOOR_DB sees where it looked
    assert code == 2 and f"no hash set named 'a' in {tmp_path / 's.sqlite'}" in err


def test_store_refusals_are_reported_under_their_file_record(tmp_path: Path) -> None:
    from opspoor.cli.hashset_cmd import _Rejects
    from opspoor.errors import FormatError

    rej = _Rejects(tmp_path / "r.jsonl", Path("list.csv"))
    pending = [Entry({"md5": f"{i:032x}"}, external_id=str(i)) for i in range(6)]

    def reader() -> Iterator[Entry]:  # file records 1-8; 2 and 5 are invalid
        for rec in range(1, 9):
            if rec in (2, 5):
                rej.from_reader(FormatError("bad", record=rec, line=rec + 1))
                continue
            yield pending.pop(0)

    given = list(rej.track(reader()))
    # the store refuses the 4th, 6th and 1st entries it was given: file records 6, 8 and 1
    for position in (4, 6, 1):
        rej.from_store(position, given[position - 1], "refused")
    rej.close()
    rows = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert [(r["stage"], r["record"]) for r in rows] == [
        ("read", 2),
        ("read", 5),
        ("store", 6),
        ("store", 8),
        ("store", 1),
    ]
    assert rows[2]["external_id"] == "3" and rows[2]["signals"] == {"md5": f"{3:032x}"}


def _set_cache(db: str, name: str) -> list[Path]:
    """The cache folders of a set's states that exist on disk."""
    from opspoor.matching import set_cache_dir
    from opspoor.store import get_hashset

    store = open_store(db)
    folder = set_cache_dir(store, get_hashset(store, name))
    return sorted(folder.iterdir()) if folder.is_dir() else []


def test_import_caches_the_match_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """After an import the next match maps the set's index cache; a second import replaces it."""
    from opspoor.matching import Matcher, Query, index_cache_dir, set_cache_dir
    from opspoor.store import get_hashset

    monkeypatch.setenv("OPSPOOR_CACHE", str(tmp_path / "cache"))
    db = str(tmp_path / "s.sqlite")
    entries = make_entries(5)
    code, _, err = run(
        monkeypatch, capsys, "hashset", "import", str(vics_file(tmp_path, entries)), "-n", "a", "--db", db
    )
    assert code == 0 and "a: match index cached" in err and "5 MD5" in err
    store = open_store(db)
    (folder,) = _set_cache(db, "a")
    assert folder == index_cache_dir(store, get_hashset(store, "a"))
    files = {f: f.stat().st_mtime_ns for f in folder.rglob("*")}
    got = Matcher.from_store(store, ["a"], cache=True).match_queries([Query(md5=entries[2].signals["md5"])])
    assert [m.external_id for m in got[0]] == ["102"]
    assert {f: f.stat().st_mtime_ns for f in folder.rglob("*")} == files  # mapped, not rebuilt

    more = vics_file(tmp_path, make_entries(2, 9), "more.json")
    code, _, err = run(monkeypatch, capsys, "hashset", "import", str(more), "-n", "a", "--db", db)
    (replaced,) = _set_cache(db, "a")  # the old state's folder is gone
    assert code == 0 and replaced != folder and replaced == index_cache_dir(store, get_hashset(store, "a"))

    code, _, err = run(
        monkeypatch, capsys, "hashset", "import", str(vics_file(tmp_path, make_entries(2, 3), "b.json")),
        "-n", "b", "--no-index-cache", "--db", db,
    )  # fmt: skip
    assert code == 0 and "match index" not in err and not _set_cache(db, "b")

    gone = set_cache_dir(store, get_hashset(store, "a"))
    code, _, _ = run(monkeypatch, capsys, "hashset", "remove", "a", "-y", "--db", db)
    assert code == 0 and not gone.exists()


def test_build_caches_the_match_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from opspoor.demo.images import generate_image
    from opspoor.matching import IndexGroup, index_cache_dir
    from opspoor.store import get_hashset

    monkeypatch.setenv("OPSPOOR_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "media"
    folder.mkdir()
    for k in range(2):
        generate_image(40 + k, 320, 240, style="shapes").save(folder / f"{k}.jpg", "JPEG")
    db = str(tmp_path / "s.sqlite")
    code, _, err = run(
        monkeypatch, capsys, "hashset", "build", str(folder), "-n", "own", "--workers", "1", "--db", db
    )
    assert code == 0 and "own: match index cached" in err
    store = open_store(db)
    (cached,) = _set_cache(db, "own")
    assert cached == index_cache_dir(store, get_hashset(store, "own"))
    assert IndexGroup.load(cached).sizes()["pdq"] == 2


def test_import_of_a_binary_file_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "s.sqlite")
    png = tmp_path / "photo.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)
    blob = tmp_path / "blob.bin"
    blob.write_bytes(bytes(range(256)) * 8)
    for path, what in ((png, "a PNG image"), (blob, "binary data")):
        for extra in ((), ("--format", "plain")):
            code, _, err = run(
                monkeypatch, capsys, "hashset", "import", str(path), "--name", "x", "--db", db, *extra
            )
            lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
            assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
            assert (
                str(path) in lines[0] and f"not a hash list: {what}" in lines[0] and "UTF-8" not in lines[0]
            )
            # not a terminal: no progress line before it, the error is all there is
            assert err.strip().splitlines() == [lines[0]], err


def test_forensic_lists_import_and_export_for_threatexchange(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An NSRL list as an ignorable set; a md5sum list and a ThreatExchange list as known sets;
    and the export python-threatexchange reads (``hma-lines``)."""
    db = str(tmp_path / "s.sqlite")
    nsrl = tmp_path / "NSRLFile.txt"
    nsrl.write_text(
        '"SHA-1","MD5","CRC32","FileName","FileSize","ProductCode","OpSystemCode","SpecialCode"\n'
        f'"{"1" * 40}","{"2" * 32}","00000000","a.dll",10,1,"WIN",""\n'
    )
    sums = tmp_path / "SHA256SUMS"
    sums.write_text(f"{'3' * 64}  photos/one.jpg\n{'4' * 64} *photos/two.jpg\n")
    te = tmp_path / "te.txt"
    te.write_text(f"pdq {'5' * 64}\nvideo_md5 {'6' * 32}\n")
    for path, name, kind in ((nsrl, "nsrl", "ignorable"), (sums, "sums", "known"), (te, "te", "known")):
        code, out, err = run(
            monkeypatch, capsys, "hashset", "import", str(path), "--name", name, "--kind", kind, "--db", db
        )
        assert code == 0 and "note:" not in err, err
    # imported as known, an NSRL list gets a note suggesting --kind ignorable
    code, _, err = run(monkeypatch, capsys, "hashset", "import", str(nsrl), "--name", "n2", "--db", db)
    assert code == 0 and "usually imported with --kind ignorable" in err
    with open_store(db) as s:
        assert {h.name: h.kind for h in list_hashsets(s)} == {
            "nsrl": "ignorable",
            "sums": "known",
            "te": "known",
            "n2": "known",
        }
        assert [e.signals for e in iter_entries(s, "sums")] == [{"sha256": "3" * 64}, {"sha256": "4" * 64}]
    out_path = tmp_path / "for-te.txt"
    code, _, err = run(
        monkeypatch,
        capsys,
        "hashset",
        "export",
        "te",
        "--format",
        "hma-lines",
        "-o",
        str(out_path),
        "--db",
        db,
    )
    assert code == 0 and "exported 2 entries" in err
    assert sorted(out_path.read_text().splitlines()) == [f"pdq {'5' * 64}", f"video_md5 {'6' * 32}"]


# --- guards and messages of the command line ----------------------------------------------------


def _store_with_set(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path, n: int
) -> str:
    """A store in ``tmp_path`` holding set ``a`` of ``n`` entries, imported from VICS; its path."""
    db = str(tmp_path / "store.sqlite")
    code, _, err = run(
        monkeypatch,
        capsys,
        "hashset",
        "import",
        str(vics_file(tmp_path, make_entries(n))),
        "-n",
        "a",
        "--db",
        db,
    )
    assert code == 0, err
    return db


def _one_line_error(code: int, err: str, *words: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err and err.strip().count("\n") == 0, err
    for w in words:
        assert w in err, (w, err)


def test_plain_export_of_pdq_imports_again_as_pdq(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    db = str(tmp_path / "store.sqlite")
    src = tmp_path / "pdq.csv"
    write_entries([Entry({"pdq": f"{i + 1:064x}"}, external_id=str(i)) for i in range(5)], src, "csv")
    code, _, err = run(monkeypatch, capsys, "hashset", "import", str(src), "-n", "p", "--db", db)
    assert code == 0, err
    out = tmp_path / "p.txt"
    code, _, err = run(
        monkeypatch, capsys, "hashset", "export", "p", "-f", "plain", "-o", str(out), "--db", db
    )
    assert code == 0, err
    for i, extra in enumerate(((), ("--type", "pdq"))):
        code, _, err = run(
            monkeypatch, capsys, "hashset", "import", str(out), "-n", f"again{i}", *extra, "--db", db
        )
        assert code == 0, err
        code, shown, _ = run(monkeypatch, capsys, "hashset", "show", f"again{i}", "--json", "--db", db)
        assert json.loads(shown)["signals"] == {"pdq": 5}, extra


def test_export_refuses_to_overwrite_and_names_folders(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    db = _store_with_set(monkeypatch, capsys, tmp_path, 3)
    out_file = tmp_path / "out.csv"
    out_file.write_text("precious\n")
    code, _, err = run(
        monkeypatch, capsys, "hashset", "export", "a", "-f", "csv", "-o", str(out_file), "--db", db
    )
    _one_line_error(code, err, str(out_file), "exists", "--force")
    assert out_file.read_text() == "precious\n"
    code, _, err = run(
        monkeypatch, capsys, "hashset", "export", "a", "-f", "csv", "-o", str(out_file), "--force", "--db", db
    )
    assert code == 0 and "md5" in out_file.read_text() and str(tmp_path) in err  # names the store
    code, _, err = run(monkeypatch, capsys, "hashset", "export", "a", "-o", str(tmp_path), "--db", db)
    _one_line_error(code, err, "a folder")
    missing = tmp_path / "no" / "such" / "out.json"
    code, _, err = run(monkeypatch, capsys, "hashset", "export", "a", "-o", str(missing), "--db", db)
    _one_line_error(code, err, "does not exist", str(missing.parent))
    code, _, err = run(monkeypatch, capsys, "hashset", "export", "a", "-f", "pdf", "--db", db)
    _one_line_error(code, err, "--format", "vics2")


def test_export_offers_every_format_that_can_be_written_owner_only(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from opspoor.hashsets.formats import FORMATS

    db = _store_with_set(monkeypatch, capsys, tmp_path, 3)
    for name, fmt in FORMATS.items():
        if fmt.writer is None or name == "vpdq":  # (a vPDQ file holds one video; these entries have none)
            continue
        target = tmp_path / f"out.{name}"
        code, _, err = run(
            monkeypatch, capsys, "hashset", "export", "a", "-f", name, "-o", str(target), "--db", db
        )
        assert code == 0 and target.stat().st_size > 0, (name, err)
        assert target.stat().st_mode & 0o777 == 0o600, name  # owner-only, like case outputs


def test_import_of_a_folder_or_an_unknown_format_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    db = str(tmp_path / "store.sqlite")
    code, _, err = run(monkeypatch, capsys, "hashset", "import", str(tmp_path), "-n", "a", "--db", db)
    _one_line_error(code, err, "a folder", str(tmp_path))
    assert "no such file" not in err
    listed = vics_file(tmp_path, make_entries(2))
    code, _, err = run(
        monkeypatch, capsys, "hashset", "import", str(listed), "-n", "a", "-f", "xls", "--db", db
    )
    _one_line_error(code, err, "--format", "vics2", "plain")


def test_remove_asks_on_a_terminal_and_refuses_without_one(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    db = _store_with_set(monkeypatch, capsys, tmp_path, 4)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))  # not a terminal
    code, _, err = run(monkeypatch, capsys, "hashset", "remove", "a", "--db", db)
    _one_line_error(code, err, "--yes", "a (4 entries)", db)
    assert [s.name for s in list_hashsets(open_store(db))] == ["a"]

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stdin", Terminal("n\n"))
    code, out, err = run(monkeypatch, capsys, "hashset", "remove", "a", "--db", db)
    assert code == 1 and "remove a (4 entries)" in out and "nothing removed" in err
    assert [s.name for s in list_hashsets(open_store(db))] == ["a"]
    monkeypatch.setattr(sys, "stdin", Terminal("y\n"))
    code, out, _ = run(monkeypatch, capsys, "hashset", "remove", "a", "--db", db)
    assert code == 0 and f"removed a (4 entries) from {db}" in out
    assert list_hashsets(open_store(db)) == []


def test_commands_name_the_store_and_list_as_json(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    db = str(tmp_path / "store.sqlite")
    code, out, err = run(monkeypatch, capsys, "hashset", "list", "--db", db)
    assert code == 2 and db in err and "no store here" in err  # a command that only reads makes none
    code, out, _ = run(monkeypatch, capsys, "db", "upgrade", "--db", db)
    code, out, _ = run(monkeypatch, capsys, "hashset", "list", "--db", db)
    assert code == 0 and out.strip() == f"no hash sets in {db}"
    monkeypatch.setenv("OPSPOOR_DB", db)  # the demo's way: the store from the environment
    code, out, _ = run(
        monkeypatch, capsys, "hashset", "import", str(vics_file(tmp_path, make_entries(2))), "-n", "a"
    )
    assert code == 0 and f"(in {db})" in out
    for args in (
        ["hashset", "list"],
        ["hashset", "show", "a"],
        ["hashset", "conflicts", "a"],
        ["token", "list"],
    ):
        code, out, _ = run(monkeypatch, capsys, *args, "--json")
        assert code == 0, args
        json.loads(out)  # one JSON document
        code, out, err = run(monkeypatch, capsys, *args)
        assert code == 0 and db in out + err, args
