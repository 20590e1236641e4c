"""Links across cases: the same camera body serial, phone number or place in an earlier case.

The investigator names earlier case folders (``opspoor scan ... --link-case DIR``); their case
databases are opened read-only (never changed) and their media's clues indexed by key. A group of
this case whose clue has a key there gets a line such as "serial DC100-000417 was also seen in case
2024-017 (3 files)". No store table is needed: the cases themselves are the index.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opspoor.errors import CaseError
from opspoor.triage.case import CASE_DB, check_is_case

#: places are compared rounded to 2 decimals (about 1 km)
PLACE_DECIMALS = 2


@dataclass(frozen=True, slots=True)
class OtherCase:
    name: str  # its case number, else its folder name
    keys: Counter[tuple[str, str]]  # (kind, value) -> files


def clue_keys(rec: dict[str, Any]) -> set[tuple[str, str]]:
    """What a record can be linked by: ("serial", ...), ("phone", ...), ("place", "52.01,4.36")."""
    keys: set[tuple[str, str]] = set()
    ex = rec.get("exif") or {}
    if ex.get("serial"):
        keys.add(("serial", str(ex["serial"]).strip()))
    if ex.get("gps"):
        lat, lon = (round(float(v), PLACE_DECIMALS) for v in ex["gps"][:2])
        keys.add(("place", f"{lat:.{PLACE_DECIMALS}f},{lon:.{PLACE_DECIMALS}f}"))
    for c in (rec.get("clues") or {}).get("found") or []:
        if c.get("kind") in ("phone", "plate"):
            keys.add((str(c["kind"]), str(c["value"])))
    return keys


def read_case(folder: Path) -> OtherCase:
    """An earlier case's clue keys, read-only. ``CaseError`` when it is no opspoor case."""
    db = folder / CASE_DB
    check_is_case(db)
    con = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        row = con.execute("SELECT value FROM meta WHERE key = 'case_number'").fetchone()
        keys: Counter[tuple[str, str]] = Counter()
        for (rec,) in con.execute("SELECT record FROM files"):
            keys.update(clue_keys(json.loads(rec)))
    except sqlite3.Error as exc:
        raise CaseError(f"cannot read case database: {exc}", str(db)) from None
    finally:
        con.close()
    name = json.loads(row[0]) if row and row[0] else None
    return OtherCase(str(name or folder.name), keys)


def _said(kind: str, value: str) -> str:
    return {"place": f"place {value} (about 1 km)"}.get(kind, f"{kind} {value}")


def group_links(members: Iterable[dict[str, Any]], others: Sequence[OtherCase]) -> list[str]:
    """One line per key of the group's members found in an earlier case."""
    keys = sorted(set().union(*(clue_keys(m) for m in members)))
    out = []
    for kind, value in keys:
        for other in others:
            n = other.keys.get((kind, value), 0)
            if n:
                files = f"{n} file{'s' if n > 1 else ''}"
                out.append(f"{_said(kind, value)} was also seen in case {other.name} ({files})")
    return out
