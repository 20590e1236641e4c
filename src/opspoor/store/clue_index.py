"""Queries of the clue index across cases (``models_clues``): a scan records its case's clue keys,
and asks which other cases saw any of them. The keys are made by the caller (``triage.links``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import cast

from sqlalchemy import Table, delete, insert, select, tuple_

from opspoor.store.db import Store
from opspoor.store.models_clues import ClueIndexRow

TABLE = cast(Table, ClueIndexRow.__table__)
Key = tuple[str, str]  # (kind, normalised value)
#: keys asked for in one query (bound parameters stay well under every database's limit)
CHUNK = 400


def record_case_clues(store: Store, case_id: str, case_name: str, keys: Mapping[Key, int]) -> int:
    """Replace the case's rows by ``keys`` (key -> files); a case scanned again is counted once."""
    t = TABLE
    now = datetime.now(UTC)
    rows = [
        {
            "case_id": case_id,
            "case_name": case_name,
            "kind": k,
            "value": v[:255],
            "files": n,
            "recorded_at": now,
        }
        for (k, v), n in sorted(keys.items())
        if n > 0
    ]
    with store.write() as conn:
        conn.execute(delete(t).where(t.c.case_id == case_id))
        if rows:
            conn.execute(insert(t), rows)
    return len(rows)


def cases_with(store: Store, keys: Iterable[Key], *, besides: str) -> dict[str, Counter[Key]]:
    """The other cases (by name) that saw any of ``keys``, with their files per key; ``besides``
    (a case id) is left out: a case is not linked to itself."""
    t = TABLE
    wanted = sorted({(k, v[:255]) for k, v in keys})
    out: dict[str, Counter[Key]] = {}
    with store.read() as conn:
        for i in range(0, len(wanted), CHUNK):
            q = select(t.c.case_name, t.c.kind, t.c.value, t.c.files).where(
                tuple_(t.c.kind, t.c.value).in_(wanted[i : i + CHUNK]), t.c.case_id != besides
            )
            for name, kind, value, files in conn.execute(q):
                out.setdefault(name, Counter())[(kind, value)] += int(files)
    return out
