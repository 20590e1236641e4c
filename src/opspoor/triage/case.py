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

_TABLES = {"meta", "files", "groups"}
_SCHEMA = """
BEGIN;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    path   TEXT PRIMARY KEY,
    seq    INTEGER NOT NULL,
    status TEXT NOT NULL,
    record TEXT NOT NULL,
    thumb  BLOB,
    query  TEXT
);
CREATE INDEX IF NOT EXISTS files_seq ON files (seq);
CREATE TABLE IF NOT EXISTS groups (
    group_id TEXT PRIMARY KEY,
    rank     INTEGER NOT NULL,
    info     TEXT NOT NULL
);
COMMIT;
"""


@contextlib.contextmanager
def owner_only() -> Iterator[None]:
    """Create files and folders readable by the owner only (0600 / 0700) while inside."""
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


def check_case_dir(path: Path, sources: Iterable[Path]) -> None:
    """Refuse a case folder that would mix with other files or be scanned as evidence, before
    anything is created or changed."""
    if path.exists() or path.is_symlink():
        if not path.is_dir():
            raise CaseError(
                "is not a folder; --case needs a new or empty folder, or an earlier case", str(path)
            )
        entries = {p.name for p in path.iterdir()}
        if entries and CASE_DB not in entries:
            raise CaseError(
                "folder holds other files and is not an opspoor case; use a new or empty folder", str(path)
            )
        if CASE_DB in entries:
            check_is_case(path / CASE_DB)
    real = Path(os.path.realpath(path))
    for src in sources:
        src_real = Path(os.path.realpath(src))
        if src_real.is_dir() and (real == src_real or src_real in real.parents):
            raise CaseError(
                f"case folder is inside the source {src}; its own files would be scanned", str(path)
            )


def check_is_case(db: Path) -> None:
    """Refuse a case.sqlite that some other program wrote, reading it only: opened read-only, so
    neither it nor its folder changes (no journal mode, no chmod) before it is known to be a case."""
    if not db.is_file():
        raise CaseError("not an opspoor case database (not a file)", str(db))
    try:
        conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise CaseError(f"cannot open case database: {exc}", str(db)) from exc
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as exc:
        raise CaseError(f"not an opspoor case database ({exc})", str(db)) from None
    finally:
        conn.close()
    if tables - _TABLES:  # (fewer is a case killed while it was being created)
        raise CaseError("not an opspoor case database (other tables)", str(db))


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
        self.path = case_dir / CASE_DB
        if os.path.lexists(self.path):
            check_is_case(self.path)  # before anything here is changed
        self.dir = make_case_dir(case_dir)
        with owner_only():
            try:
                self.conn = sqlite3.connect(self.path, isolation_level=None)
            except sqlite3.Error as exc:
                raise CaseError(f"cannot open case database: {exc}", str(self.path)) from exc
        self.conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL + WAL: a SIGKILL loses at most uncommitted batches, which resume redoes
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.executescript(_SCHEMA)
        if "query" not in {r[1] for r in self.conn.execute("PRAGMA table_info(files)")}:
            self.conn.execute("ALTER TABLE files ADD COLUMN query TEXT")  # a case of an earlier opspoor
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
    def done_paths(self, retry_reasons: Iterable[str] = ()) -> set[str]:
        """Paths finished by an earlier run, less those whose error is worth another try
        (``retry_reasons``: a worker crash may have been the machine's, not the file's)."""
        retry = set(retry_reasons)
        done = set()
        for path, status, rec in self.conn.execute("SELECT path, status, record FROM files"):
            if status == "error" and retry and json.loads(rec).get("error_reason") in retry:
                continue
            done.add(path)
        return done

    def add_files(
        self,
        rows: Iterable[
            tuple[int, dict[str, Any], bytes | None] | tuple[int, dict[str, Any], bytes | None, Any]
        ],
    ) -> None:
        """Write a batch of (seq, record, thumbnail[, query]) in one transaction; ``query`` is what
        matching needs beyond the record (the robust query hashes), kept to match again on resume."""
        data = [
            (r[1]["path"], r[0], r[1]["status"], json.dumps(r[1], sort_keys=False), r[2],
             json.dumps(r[3]) if len(r) > 3 and r[3] is not None else None)  # type: ignore[misc]
            for r in rows
        ]  # fmt: skip
        if not data:
            return
        with self._tx():
            self.conn.executemany(
                "INSERT OR REPLACE INTO files (path, seq, status, record, thumb, query)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                data,
            )

    def iter_queries(self, size: int = 512) -> Iterator[list[tuple[dict[str, Any], dict[str, Any] | None]]]:
        """Every record with its stored query, in batches (to match again)."""
        after: tuple[int, str] = (-1, "")
        while True:  # by key, not one cursor: the caller updates rows between batches
            rows = self.conn.execute(
                "SELECT seq, path, record, query FROM files"
                " WHERE (seq, path) > (?, ?) ORDER BY seq, path LIMIT ?",
                (*after, size),
            ).fetchall()
            if not rows:
                return
            after = (rows[-1][0], rows[-1][1])
            yield [(json.loads(r), json.loads(q) if q else None) for _, _, r, q in rows]

    def forget(self, paths: Iterable[str]) -> None:
        """Drop these paths' rows: the next pass over the sources does them again."""
        with self._tx():
            self.conn.executemany("DELETE FROM files WHERE path = ?", ((p,) for p in paths))

    def record(self, path: str) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT record FROM files WHERE path = ?", (path,)).fetchone()
        return None if row is None else json.loads(row[0])

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

    def has_thumbs(self) -> bool:
        """Whether the scan made thumbnails (``--no-thumbnails`` makes none)."""
        return self.conn.execute("SELECT 1 FROM files WHERE thumb IS NOT NULL LIMIT 1").fetchone() is not None

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Everything inside is one transaction: all of it is committed, or none of it (a Ctrl-C,
        a kill). The writes inside join it (``_tx`` inside is a no-op)."""
        with self._tx():
            yield

    @contextlib.contextmanager
    def _tx(self) -> Iterator[None]:
        if self.conn.in_transaction:  # inside ``transaction()``: one commit at its end
            yield
            return
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def close(self) -> None:
        self.conn.close()
