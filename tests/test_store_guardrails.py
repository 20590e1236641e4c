"""``--db`` guardrails (issue 17): a file that is not an opspoor store is refused and left exactly as
it was, a path in a missing folder is an error (not a new empty store), and a new store file is
created owner-only."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import stat
import sys
from pathlib import Path

import pytest

from opspoor.cli import main
from opspoor.errors import StoreError
from opspoor.store import open_store


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["opspoor", *args])
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, capsys.readouterr().err


def foreign_sqlite(path: Path) -> Path:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE files (id INTEGER PRIMARY KEY, path TEXT)")
    conn.execute("INSERT INTO files (path) VALUES ('evidence/a.jpg')")
    conn.commit()
    conn.close()
    return path


@pytest.mark.parametrize("kind", ["case.sqlite", "not-sqlite"])
def test_a_file_that_is_not_an_opspoor_store_is_refused_and_left_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    if kind == "case.sqlite":
        target = foreign_sqlite(tmp_path / "case.sqlite")
    else:
        target = tmp_path / "notes.txt"
        target.write_bytes(b"a text file, not a database\n" * 10)
    before, mode = digest(target), target.stat().st_mode
    with pytest.raises(StoreError, match="not an opspoor store"):
        open_store(str(target))
    code, err = run(monkeypatch, capsys, "hashset", "list", "--db", str(target))
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code != 0 and len(lines) == 1 and "not an opspoor store" in lines[0] and "Traceback" not in err
    assert digest(target) == before and target.stat().st_mode == mode
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]  # no -wal / -shm beside it


def test_a_store_path_in_a_missing_folder_is_an_error_not_a_new_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "typo" / "store.sqlite"
    with pytest.raises(StoreError, match="does not exist"):
        open_store(str(target))
    code, err = run(monkeypatch, capsys, "hashset", "list", "--db", str(target))
    # (a command that only reads names the path it found no store at, and creates nothing)
    assert code == 2 and str(target) in err and "no store here" in err and "Traceback" not in err
    assert not (tmp_path / "typo").exists()


def test_a_new_store_is_owner_only_and_opens_again(tmp_path: Path) -> None:
    target = tmp_path / "store.sqlite"
    old = os.umask(0o022)
    try:
        with open_store(str(target)):
            pass
    finally:
        os.umask(old)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    for side in tmp_path.glob("store.sqlite-*"):  # SQLite's -wal / -shm follow the file's mode
        assert stat.S_IMODE(side.stat().st_mode) == 0o600
    with open_store(str(target)):  # an opspoor store is of course accepted
        pass
