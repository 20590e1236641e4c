"""What a follower of the change log needs beyond :mod:`opspoor.store.hashsets`: every tenant's sets,
a set by id, the entries of one set, and the signals of the entries one ``add`` change names."""

from __future__ import annotations

import numpy as np
from sqlalchemy import bindparam, func, select

from opspoor.signals import indexed_hex_lengths
from opspoor.store.db import Store
from opspoor.store.hashsets.catalogue import _record
from opspoor.store.hashsets.reads import _take_signal_rows
from opspoor.store.hashsets.schema import (
    CHANGES,
    DERIVED_HEX_LENGTH,
    ENTRIES,
    HASH_COLUMNS,
    HASHSETS,
    SIGNALS,
    Change,
    HashSetRecord,
    _utc,
)


def all_hashsets(store: Store) -> list[HashSetRecord]:
    """Every hash set of every tenant."""
    with store.read() as conn:
        return [_record(r) for r in conn.execute(select(HASHSETS).order_by(HASHSETS.c.id))]


def hashset_by_id(store: Store, hashset_id: int) -> HashSetRecord | None:
    with store.read() as conn:
        row = conn.execute(select(HASHSETS).where(HASHSETS.c.id == hashset_id)).first()
    return _record(row) if row else None


def last_change_id(store: Store) -> int:
    with store.read() as conn:
        return int(conn.execute(select(func.coalesce(func.max(CHANGES.c.id), 0))).scalar_one())


def entry_ids_of(store: Store, hashset_id: int) -> np.ndarray:
    """Ids of the set's entries (int64)."""
    with store.read() as conn:
        ids = conn.execute(select(ENTRIES.c.id).where(ENTRIES.c.hashset_id == hashset_id)).scalars().all()
    return np.asarray(ids, dtype=np.int64)


def signals_between(
    store: Store, hashset_id: int, lo: int, hi: int
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Matchable values of the set's entries with ids in ``lo..hi``, derived ones included, by signal:
    ``(entry ids int64, value bytes uint8 (N, bytes))`` as :func:`load_signal_arrays` gives them."""
    e, s = ENTRIES, SIGNALS
    p = {"h": hashset_id, "lo": lo, "hi": hi}
    by_signal: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {}
    with store.read() as conn:
        rows = conn.execute(
            select(e.c.id, *(e.c[c] for c in HASH_COLUMNS)).where(
                e.c.hashset_id == p["h"], e.c.id.between(lo, hi)
            )
        ).all()
        for j, (sig, nbytes) in enumerate(HASH_COLUMNS.items(), 1):
            held = [(r[0], r[j]) for r in rows if r[j] is not None]
            if held:
                ids, values = by_signal.setdefault(sig, ([], []))
                _take_signal_rows(held, 2 * nbytes, ids, values)
        lengths = {**indexed_hex_lengths(), **DERIVED_HEX_LENGTH}
        q = select(s.c.signal, s.c.entry_id, s.c.value).where(
            s.c.hashset_id == hashset_id, s.c.entry_id.between(lo, hi), s.c.signal.in_(list(lengths))
        )
        texts: dict[str, list[tuple[int, str]]] = {}
        for sig, eid, value in conn.execute(q):
            texts.setdefault(sig, []).append((eid, value))
        for sig, part in texts.items():
            ids, values = by_signal.setdefault(sig, ([], []))
            _take_signal_rows(part, lengths[sig], ids, values, sig)
    return {sig: (np.concatenate(ids), np.concatenate(values)) for sig, (ids, values) in by_signal.items()}


def texts_between(
    store: Store, hashset_id: int, lo: int, hi: int, signal: str
) -> tuple[np.ndarray, list[str]]:
    """Values of a signal that is not a fixed-width hash (``local``) of the set's entries with ids
    in ``lo..hi``, as ``(entry ids int64, texts)`` in entry order."""
    s = SIGNALS
    q = (
        select(s.c.entry_id, s.c.value)
        .where(s.c.hashset_id == hashset_id, s.c.entry_id.between(lo, hi), s.c.signal == signal)
        .order_by(s.c.entry_id)
    )
    with store.read() as conn:
        rows = conn.execute(q).all()
    return np.asarray([r[0] for r in rows], dtype=np.int64), [str(r[1]) for r in rows]


def changes_with_ids(store: Store, ids: list[int]) -> list[Change]:
    """The changes among ``ids`` that exist by now (ids a follower skipped), oldest first."""
    c = CHANGES
    q = select(c).where(c.c.id.in_(bindparam("ids", expanding=True))).order_by(c.c.id)
    with store.read() as conn:
        rows = conn.execute(q, {"ids": ids[:10_000]}).all()
    return [Change(r.id, r.hashset_id, r.op, r.entry_id, r.entry_id_end, _utc(r.at)) for r in rows]
