"""A scanned case as the review workspace reads it: its groups of new media in review order (with
why they are there and why their members belong together), its records, counts and known matches.

The case database is opened read-only: reviewing never changes the scan's results.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opspoor.errors import CaseError
from opspoor.hashsets.model import category_name
from opspoor.media.sniff import kind_of
from opspoor.review.evidence import read_evidence, revealed_view, veiled_view
from opspoor.triage.case import CASE_DB, check_is_case


@dataclass(frozen=True, slots=True)
class KnownItem:
    """A known file and the entry it matched (never shown unless ``--allow-known``)."""

    path: str
    kind: str | None
    category: str
    hashset: str
    entry: str
    signal: str
    distance: int | None

    def match(self) -> dict[str, Any]:
        return {
            "hashset": self.hashset,
            "entry": self.entry,
            "signal": self.signal,
            "distance": self.distance,
        }


@dataclass(frozen=True, slots=True)
class ReviewGroup:
    id: str
    rank: int
    paths: tuple[str, ...]
    types: tuple[tuple[str, int], ...]
    why_ranked: tuple[str, ...]
    why_together: tuple[str, ...]
    cameras: tuple[str, ...]
    serials: tuple[str, ...]
    gps: int
    date_first: str | None
    date_last: str | None
    #: the members' location clues (opspoor.clues.Clue as JSON), each with its evidence in words
    clues: tuple[dict[str, Any], ...] = ()
    #: clues also seen in other cases ("serial X was also seen in case Y (3 files)")
    links: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class KnownCount:
    """Known files counted by what they matched: never a path, never a picture."""

    category: str
    hashset: str
    entry: str
    signal: str
    distance: int | None
    files: int


def _open_for_reading(db: Path) -> sqlite3.Connection:
    """The case database, for reading only: a read-write connection that may not write
    (``query_only``). The case database is in WAL mode, and only a connection that may write
    removes the ``-wal`` and ``-shm`` files when it closes last; a ``mode=ro`` one leaves them in
    the case folder. (SQLite opens a write-protected file read-only by itself.)"""
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=rw", uri=True, check_same_thread=False)
    conn.execute("PRAGMA query_only=1")
    return conn


class CaseView:
    """One case, read once into memory (groups and records; thumbnails are read when asked)."""

    def __init__(self, case_dir: Path) -> None:
        self.dir = case_dir
        db = case_dir / CASE_DB
        check_is_case(db)
        self._conn = _open_for_reading(db)
        self._lock = threading.Lock()
        meta = {k: json.loads(v) for k, v in self._conn.execute("SELECT key, value FROM meta")}
        self._load(
            case_dir.name,
            meta,
            (
                (p, json.loads(r))
                for p, r in self._conn.execute("SELECT path, record FROM files ORDER BY seq, path")
            ),
            (
                (g, int(r), json.loads(i))
                for g, r, i in self._conn.execute("SELECT group_id, rank, info FROM groups ORDER BY rank")
            ),
            where=str(db),
        )

    def _load(
        self,
        name: str,
        meta: dict[str, Any],
        files: Iterable[tuple[str, dict[str, Any]]],
        groups: Iterable[tuple[str, int, dict[str, Any]]],
        *,
        where: str,
    ) -> None:
        """The one case model, from a case folder or from the shared store (``review.shared``)."""
        self.meta = meta
        self.name = name
        self.records: dict[str, dict[str, Any]] = dict(files)
        self.groups: list[ReviewGroup] = []
        for gid, rank, i in groups:
            self.groups.append(
                ReviewGroup(
                    id=gid,
                    rank=int(rank),
                    paths=tuple(i["paths"]),
                    types=tuple((t, int(n)) for t, n in i.get("types") or []),
                    why_ranked=tuple(i.get("why_ranked") or ()),
                    why_together=tuple(i.get("why_together") or ()),
                    cameras=tuple(i.get("cameras") or ()),
                    serials=tuple(i.get("serials") or ()),
                    gps=len(i.get("gps") or ()),
                    date_first=i.get("date_first"),
                    date_last=i.get("date_last"),
                    clues=tuple(i.get("clues") or ()),
                    links=tuple(i.get("links") or ()),
                )
            )
        if not self.groups and any(r["status"] == "new" for r in self.records.values()):
            raise CaseError("the case has new media but no groups: finish the scan first", where)
        self.by_id = {g.id: g for g in self.groups}
        self.position = {g.id: k for k, g in enumerate(self.groups)}

    def close(self) -> None:
        self._conn.close()

    def group(self, group_id: str) -> ReviewGroup:
        g = self.by_id.get(group_id)
        if g is None:
            raise CaseError(f"no group {group_id!r} in this case", str(self.dir))
        return g

    def members(self) -> dict[str, tuple[str, ...]]:
        return {g.id: g.paths for g in self.groups}

    def queries(self) -> dict[str, str]:
        """Each file's stored query (its robust query hashes, JSON), to publish with it."""
        with self._lock:
            try:
                rows = self._conn.execute("SELECT path, query FROM files WHERE query IS NOT NULL").fetchall()
            except sqlite3.OperationalError:  # a case of an opspoor before the column
                return {}
        return {p: q for p, q in rows}

    def thumb(self, path: str) -> bytes | None:
        """The scan's own thumbnail (already grayscale and blurred, media.thumbs), if it made one."""
        with self._lock:
            row = self._conn.execute("SELECT thumb FROM files WHERE path = ?", (path,)).fetchone()
        return bytes(row[0]) if row and row[0] else None

    def veiled(self, path: str, kind: str | None) -> bytes:
        """The item grayscale and blurred: the scan's thumbnail, else made from the evidence (a video's
        frame grid always is)."""
        data = self.thumb(path) if kind != "video" else None
        if data is None:
            data = veiled_view(read_evidence(path, self.sources()), path, kind)
        return data

    def evidence(self, path: str) -> bytes:
        """The file's bytes, read-only through its evidence path (``from-case --augment``)."""
        return read_evidence(path, self.sources())

    def revealed(self, path: str, kind: str | None, *, full_size: bool = False) -> bytes:
        """The item itself, limited in size (see ``evidence.revealed_view``), from the evidence."""
        return revealed_view(read_evidence(path, self.sources()), path, kind, full_size=full_size)

    def counts(self) -> dict[str, int]:
        c = Counter(r["status"] for r in self.records.values())
        media = sum(1 for r in self.records.values() if kind_of(r.get("type")) in ("image", "video"))
        return {"files": len(self.records), "media": media, "groups": len(self.groups), **c}

    def known_counts(self) -> list[KnownCount]:
        """Known files by category, matched entry, signal and best distance."""
        tally: Counter[tuple[str, str, str, str, int | None]] = Counter()
        for r in self.records.values():
            if r["status"] != "known":
                continue
            best: dict[tuple[str, str], dict[str, Any]] = {}
            for m in r.get("matches") or []:
                if m.get("kind") != "known":
                    continue
                key = (m["hashset"], str(m.get("external_id") or m.get("entry_id")))
                d = m.get("distance")
                if key not in best or (d or 0) < (best[key].get("distance") or 0):
                    best[key] = m
            for (hs, entry), m in best.items():
                cat = m.get("category") or {}
                name = category_name(cat.get("scheme"), cat.get("code"))
                tally[(name, hs, entry, m["signal"], m.get("distance"))] += 1
        return [KnownCount(*k, files=n) for k, n in sorted(tally.items(), key=lambda kv: (kv[0][0], -kv[1]))]

    def known_items(self) -> list[KnownItem]:
        """The known files, each with its best known match (``--allow-known``: one revealed on
        purpose, audited); in path order, so an item's number is stable for a case."""
        items = []
        for path in sorted(p for p, r in self.records.items() if r["status"] == "known"):
            r = self.records[path]
            ms = [m for m in r.get("matches") or [] if m.get("kind") == "known"]
            if not ms:
                continue
            m = min(ms, key=lambda m: m.get("distance") or 0)
            cat = m.get("category") or {}
            items.append(
                KnownItem(
                    path,
                    kind_of(r.get("type")),
                    category_name(cat.get("scheme"), cat.get("code")),
                    m["hashset"],
                    str(m.get("external_id") or m.get("entry_id")),
                    m["signal"],
                    m.get("distance"),
                )
            )
        return items

    def timeline(self) -> list[tuple[str, int]]:
        months: Counter[str] = Counter()
        for r in self.records.values():
            dt = (r.get("exif") or {}).get("datetime")
            if dt and len(dt) >= 7:
                months[dt[:7].replace(":", "-")] += 1
        return sorted(months.items())

    def sources(self) -> list[Path]:
        """The scanned sources (absolute), from the case's identity."""
        ident = self.meta.get("identity") or {}
        return [Path(p) for p in ident.get("sources") or []]
