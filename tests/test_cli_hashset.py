"""``opspoor hashset`` and ``opspoor db`` end to end through ``main()``. Synthetic hashes only."""

from __future__ import annotations

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
    code, out, _ = run(monkeypatch, capsys, "hashset", "remove", "a", "--db", db)
    assert code == 0 and "7 entries" in out
    code, _, err = run(monkeypatch, capsys, "hashset", "show", "a", "--db", db)
    assert code == 2 and "no hash set named 'a'" in err


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
    from opspoor.store import get_hashset
    from opspoor.triage.matching import set_cache_dir

    store = open_store(db)
    folder = set_cache_dir(store, get_hashset(store, name))
    return sorted(folder.iterdir()) if folder.is_dir() else []


def test_import_caches_the_match_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """After an import the next match maps the set's index cache; a second import replaces it."""
    from opspoor.store import get_hashset
    from opspoor.triage.matching import Matcher, Query, index_cache_dir, set_cache_dir

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
    code, _, _ = run(monkeypatch, capsys, "hashset", "remove", "a", "--db", db)
    assert code == 0 and not gone.exists()


def test_build_caches_the_match_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from opspoor.demo.images import generate_image
    from opspoor.store import get_hashset
    from opspoor.triage.matching import IndexGroup, index_cache_dir

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
