"""The case directory and its own SQLite database (results, groups, progress for resume).

The case database uses the standard library's sqlite3 rather than SQLAlchemy: it is always a
local file, written in large batches from one process, and resume depends on its simple
"one row per evidence path" contract (``INSERT OR REPLACE`` keyed by path means a batch that
is replayed after a kill can never create duplicates).
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opspoor.errors import CaseError

CASE_DB = "case.sqlite"
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    path   TEXT PRIMARY KEY,
    seq    INTEGER NOT NULL,
    status TEXT NOT NULL,
    record TEXT NOT NULL,
    thumb  BLOB
);
CREATE INDEX IF NOT EXISTS files_seq ON files (seq);
CREATE TABLE IF NOT EXISTS groups (
    group_id TEXT PRIMARY KEY,
    rank     INTEGER NOT NULL,
    info     TEXT NOT NULL
);
"""


@contextlib.contextmanager
def owner_only() -> Iterator[None]:
    """Create files and folders readable by the owner only (0600 / 0700) while inside."""
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


def make_case_dir(path: Path) -> Path:
    with owner_only():
        path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


@dataclass(slots=True)
class StoredFile:
    seq: int
    record: dict[str, Any]
    thumb: bytes | None


class CaseDB:
    """One case's results. Each evidence path has exactly one row."""

    def __init__(self, case_dir: Path) -> None:
        self.dir = make_case_dir(case_dir)
        self.path = case_dir / CASE_DB
        with owner_only():
            try:
                self.conn = sqlite3.connect(self.path, isolation_level=None)
            except sqlite3.Error as exc:
                raise CaseError(f"cannot open case database: {exc}", str(self.path)) from exc
        self.conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL + WAL: a SIGKILL loses at most uncommitted batches, which resume redoes
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.executescript(_SCHEMA)
        for suffix in ("", "-wal", "-shm"):
            p = Path(str(self.path) + suffix)
            if p.exists():
                os.chmod(p, 0o600)
        version = self.get_meta("schema_version")
        if version is None:
            self.set_meta("schema_version", SCHEMA_VERSION)
        elif version != SCHEMA_VERSION:
            raise CaseError(
                f"case database has schema {version}, this opspoor writes {SCHEMA_VERSION}", str(self.path)
            )

    # --- meta ----------------------------------------------------------------
    def get_meta(self, key: str) -> Any:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def set_meta(self, key: str, value: Any) -> None:
        self.conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, json.dumps(value)))

    # --- files ---------------------------------------------------------------
    def done_paths(self) -> set[str]:
        return {r[0] for r in self.conn.execute("SELECT path FROM files")}

    def add_files(self, rows: Iterable[tuple[int, dict[str, Any], bytes | None]]) -> None:
        """Write a batch of (seq, record, thumbnail) in one transaction."""
        data = [
            (rec["path"], seq, rec["status"], json.dumps(rec, sort_keys=False), thumb)
            for seq, rec, thumb in rows
        ]
        if not data:
            return
        with self._tx():
            self.conn.executemany(
                "INSERT OR REPLACE INTO files (path, seq, status, record, thumb) VALUES (?, ?, ?, ?, ?)", data
            )

    def update_records(self, records: Iterable[dict[str, Any]]) -> None:
        with self._tx():
            self.conn.executemany(
                "UPDATE files SET record = ?, status = ? WHERE path = ?",
                ((json.dumps(r), r["status"], r["path"]) for r in records),
            )

    def iter_files(self, with_thumbs: bool = False) -> Iterator[StoredFile]:
        cols = "seq, record, thumb" if with_thumbs else "seq, record, NULL"
        for seq, rec, thumb in self.conn.execute(f"SELECT {cols} FROM files ORDER BY seq, path"):
            yield StoredFile(seq, json.loads(rec), thumb)

    def thumbs(self, paths: Iterable[str]) -> dict[str, bytes]:
        out: dict[str, bytes] = {}
        for p in paths:
            row = self.conn.execute("SELECT thumb FROM files WHERE path = ?", (p,)).fetchone()
            if row and row[0]:
                out[p] = row[0]
        return out

    def count(self) -> int:
        return int(self.conn.execute("SELECT count(*) FROM files").fetchone()[0])

    # --- groups --------------------------------------------------------------
    def replace_groups(self, groups: Iterable[tuple[str, int, dict[str, Any]]]) -> None:
        with self._tx():
            self.conn.execute("DELETE FROM groups")
            self.conn.executemany(
                "INSERT INTO groups (group_id, rank, info) VALUES (?, ?, ?)",
                ((g, rank, json.dumps(info)) for g, rank, info in groups),
            )

    @contextlib.contextmanager
    def _tx(self) -> Iterator[None]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def close(self) -> None:
        self.conn.close()
