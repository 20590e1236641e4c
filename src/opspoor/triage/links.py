"""Links across cases: the same camera body serial, phone number or place in an earlier case.

Two ways to know the other cases, used together: the store's clue index (``store.clue_index``,
which every scan fills with its case's keys, so a new case needs nothing named), and earlier case
folders the investigator names (``opspoor scan ... --link-case DIR``, opened read-only: for cases
scanned against another store or before the index). A group of this case whose clue has a key there
gets a line such as "serial DC100-000417 was also seen in case 2024-017 (3 files)".
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


def _compact(value: str) -> str:
    """Upper case, one space between parts: "dc100-000417 " and "DC100-000417" are one serial."""
    return " ".join(str(value).upper().split())


def _domain(value: str) -> str:
    host = str(value).strip().lower().rstrip(".")
    return host[4:] if host.startswith("www.") else host


#: clue kinds linked across cases, with how their value is normalised (the key's kind is the
#: clue's, except a web address, linked by its domain)
LINKED: dict[str, tuple[str, Any]] = {
    "phone": ("phone", _compact),
    "plate": ("plate", lambda v: _compact(v).replace(" ", "-")),
    "postcode": ("postcode", _compact),
    "url": ("domain", _domain),
}


def clue_keys(rec: dict[str, Any]) -> set[tuple[str, str]]:
    """What a record can be linked by, normalised: ("serial", ...), ("phone", "+31 6 12345678"),
    ("place", "52.01,4.36"), ("postcode", "2611 BC"), ("plate", ...), ("domain", "voorbeeld.nl")."""
    keys: set[tuple[str, str]] = set()
    ex = rec.get("exif") or {}
    if ex.get("serial") and str(ex["serial"]).strip():
        keys.add(("serial", _compact(ex["serial"])))
    if ex.get("gps"):
        lat, lon = (round(float(v), PLACE_DECIMALS) for v in ex["gps"][:2])
        keys.add(("place", f"{lat:.{PLACE_DECIMALS}f},{lon:.{PLACE_DECIMALS}f}"))
    for c in (rec.get("clues") or {}).get("found") or []:
        linked = LINKED.get(str(c.get("kind")))
        if linked and c.get("value"):
            keys.add((linked[0], linked[1](c["value"])))
    return keys


def case_keys(records: Iterable[dict[str, Any]]) -> Counter[tuple[str, str]]:
    """Every clue key of a case's records, with the files that show it."""
    keys: Counter[tuple[str, str]] = Counter()
    for rec in records:
        keys.update(clue_keys(rec))
    return keys


def case_identity(case_dir: Path, case_number: str | None) -> tuple[str, str]:
    """(id, name) of a case in the clue index: its case number, else its folder (absolute path as
    the id, so two folders named alike stay two cases; the folder's name as the name)."""
    if case_number:
        return case_number, case_number
    return str(case_dir.resolve()), case_dir.resolve().name


def merge_others(indexed: Sequence[OtherCase], named: Sequence[OtherCase]) -> list[OtherCase]:
    """The named case folders, and the indexed cases not among them (a case said once)."""
    names = {o.name for o in named}
    return [*named, *(o for o in indexed if o.name not in names)]


def read_case(folder: Path) -> OtherCase:
    """An earlier case's clue keys, read-only. ``CaseError`` when it is no opspoor case."""
    db = folder / CASE_DB
    check_is_case(db)
    con = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        row = con.execute("SELECT value FROM meta WHERE key = 'case_number'").fetchone()
        keys = case_keys(json.loads(rec) for (rec,) in con.execute("SELECT record FROM files"))
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


def index_case(
    db_url: str | None, case_dir: Path, case_number: str | None, records: Iterable[dict[str, Any]]
) -> list[OtherCase]:
    """Record the case's clue keys in the store's clue index (replacing what an earlier run of the
    case recorded) and return the other cases there that saw any of them."""
    from opspoor.store import open_store
    from opspoor.store.clue_index import cases_with, record_case_clues

    keys = case_keys(records)
    case_id, name = case_identity(case_dir, case_number)
    with open_store(db_url) as store:
        record_case_clues(store, case_id, name, keys)
        found = cases_with(store, keys, besides=case_id) if keys else {}
    return [OtherCase(other, found[other]) for other in sorted(found)]
