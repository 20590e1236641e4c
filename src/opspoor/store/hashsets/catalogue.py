"""The set catalogue and its change log: create, list, count and remove sets and entries; what changed
since a point (what index followers and caches read)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, select, text
from sqlalchemy.exc import IntegrityError

from opspoor.errors import AlreadyExists, NotFound, StoreError
from opspoor.hashsets.model import (
    DEFAULT_PDQ_DISTANCE,
    KINDS,
)
from opspoor.store.db import Store
from opspoor.store.hashsets.schema import (
    CHANGES,
    CONFLICTS,
    DEFAULT_TENANT,
    ENTRIES,
    HASH_COLUMNS,
    HASHSETS,
    SIGNALS,
    Change,
    HashSetCounts,
    HashSetRecord,
    _chunks,
    _hex_bytes,
    _now,
    _utc,
)


def _record(row: Any) -> HashSetRecord:
    return HashSetRecord(
        row.id, row.name, row.tenant, row.kind, row.source, row.distance, _utc(row.created_at)
    )


def _check_name(name: str) -> None:
    if not name or len(name) > 255 or name != name.strip():
        raise StoreError(f"hash-set name must be 1-255 characters without surrounding spaces: {name!r}")


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise StoreError(f"hash-set kind must be one of {', '.join(KINDS)}, not {kind!r}")


def _find(conn: Connection, name: str, tenant: str, *, lock: bool = False) -> HashSetRecord | None:
    q = select(HASHSETS).where(HASHSETS.c.tenant == tenant, HASHSETS.c.name == name)
    if lock and conn.dialect.name != "sqlite":  # SQLite: the write transaction already locks all
        q = q.with_for_update()
    row = conn.execute(q).first()
    return _record(row) if row else None


def _get(conn: Connection, name: str, tenant: str, *, lock: bool = False) -> HashSetRecord:
    found = _find(conn, name, tenant, lock=lock)
    if found is None:
        raise NotFound(
            f"no hash set named {name!r}" + (f" for tenant {tenant!r}" if tenant != DEFAULT_TENANT else ""),
            store=str(conn.engine.url),
        )
    return found


def _insert_hashset(
    conn: Connection, name: str, kind: str, source: str | None, distance: int, tenant: str
) -> HashSetRecord:
    _check_name(name)
    _check_kind(kind)
    if not 0 <= distance <= 256:
        raise StoreError(f"PDQ distance must be between 0 and 256, not {distance}")
    try:
        with conn.begin_nested():
            conn.execute(
                HASHSETS.insert().values(
                    tenant=tenant, name=name, kind=kind, source=source, distance=distance, created_at=_now()
                )
            )
    except IntegrityError:
        raise AlreadyExists(f"a hash set named {name!r} already exists (created meanwhile?)") from None
    return _get(conn, name, tenant)


def create_hashset(
    store: Store,
    name: str,
    *,
    kind: str = "known",
    source: str | None = None,
    distance: int = DEFAULT_PDQ_DISTANCE,
    tenant: str = DEFAULT_TENANT,
) -> HashSetRecord:
    with store.write() as conn:
        if _find(conn, name, tenant) is not None:
            raise AlreadyExists(f"a hash set named {name!r} already exists")
        return _insert_hashset(conn, name, kind, source, distance, tenant)


def get_hashset(store: Store, name: str, *, tenant: str = DEFAULT_TENANT) -> HashSetRecord:
    with store.read() as conn:
        return _get(conn, name, tenant)


def list_hashsets(store: Store, *, tenant: str = DEFAULT_TENANT) -> list[HashSetRecord]:
    with store.read() as conn:
        rows = conn.execute(select(HASHSETS).where(HASHSETS.c.tenant == tenant).order_by(HASHSETS.c.name))
        return [_record(r) for r in rows]


def entry_counts(store: Store, *, tenant: str = DEFAULT_TENANT) -> dict[str, int]:
    """Number of entries per hash-set name (sets without entries included)."""
    h, e = HASHSETS, ENTRIES
    q = (
        select(h.c.name, func.count(e.c.id))
        .select_from(h.outerjoin(e, e.c.hashset_id == h.c.id))
        .where(h.c.tenant == tenant)
        .group_by(h.c.name)
    )
    with store.read() as conn:
        return {name: n for name, n in conn.execute(q)}


def hashset_counts(store: Store, name: str, *, tenant: str = DEFAULT_TENANT) -> HashSetCounts:
    e, s, c = ENTRIES, SIGNALS, CONFLICTS
    with store.read() as conn:
        hs = _get(conn, name, tenant)
        columns = ("vpdq", *HASH_COLUMNS)
        n, *per_column = conn.execute(
            select(func.count(), *(func.count(e.c[col]) for col in columns)).where(e.c.hashset_id == hs.id)
        ).one()
        by_signal = conn.execute(
            select(s.c.signal, func.count(func.distinct(s.c.entry_id)))
            .where(s.c.hashset_id == hs.id, s.c.derived.is_(False))
            .group_by(s.c.signal)
        ).all()
        by_cat = conn.execute(
            select(e.c.category_scheme, e.c.category_code, func.count())
            .where(e.c.hashset_id == hs.id)
            .group_by(e.c.category_scheme, e.c.category_code)
        ).all()
        n_conf = conn.execute(select(func.count()).select_from(c).where(c.c.hashset_id == hs.id)).scalar_one()
    signals: dict[str, int] = {sig: k for sig, k in by_signal}
    signals.update({col: k for col, k in zip(columns, per_column, strict=True) if k})
    categories = {("none" if sch is None else f"{sch}:{code}"): k for sch, code, k in by_cat}
    return HashSetCounts(
        entries=n,
        signals=dict(sorted(signals.items())),
        categories=dict(sorted(categories.items())),
        conflicts=n_conf,
    )


def remove_hashset(store: Store, name: str, *, tenant: str = DEFAULT_TENANT) -> int:
    """Remove a set with all its entries; returns how many entries went. Logged as ``drop``."""
    with store.write() as conn:
        hs = _get(conn, name, tenant, lock=True)
        p = {"h": hs.id}
        conn.execute(text("DELETE FROM entry_signals WHERE hashset_id = :h"), p)
        conn.execute(text("DELETE FROM conflicts WHERE hashset_id = :h"), p)
        n = conn.execute(text("DELETE FROM entries WHERE hashset_id = :h"), p).rowcount
        conn.execute(text("DELETE FROM hashsets WHERE id = :h"), p)
        _log_change(conn, hs.id, "drop")
    return n


def remove_entries(
    store: Store,
    name: str,
    *,
    entry_ids: Iterable[int] = (),
    signal: str | None = None,
    values: Iterable[str] = (),
    tenant: str = DEFAULT_TENANT,
) -> list[int]:
    """Remove entries of a set by id, or those carrying any of ``values`` of ``signal``.
    Returns the ids removed; each is logged as a ``remove`` change."""
    ids = [int(i) for i in entry_ids]
    vals = list(values)
    if vals and signal is None:
        raise StoreError("removing entries by value needs the signal type")
    with store.write() as conn:
        hs = _get(conn, name, tenant, lock=True)
        found: set[int] = set()
        for part in _chunks(ids, 1000):
            q = text("SELECT id FROM entries WHERE hashset_id = :h AND id IN :ids").bindparams(
                bindparam("ids", expanding=True)
            )
            found.update(conn.execute(q, {"h": hs.id, "ids": part}).scalars())
        if signal in HASH_COLUMNS:  # a scan of the set's rows: the hash columns have no index
            raw = [b for v in vals if (b := _hex_bytes(v, HASH_COLUMNS[signal])) is not None]
            col = ENTRIES.c[signal]
            for part in _chunks(raw, 1000):
                by_value = select(ENTRIES.c.id).where(ENTRIES.c.hashset_id == hs.id, col.in_(part))
                found.update(conn.execute(by_value).scalars())
        else:
            for part in _chunks(vals, 1000):
                q = text(
                    "SELECT entry_id FROM entry_signals WHERE hashset_id = :h AND signal = :s AND value IN :v"
                ).bindparams(bindparam("v", expanding=True))
                found.update(conn.execute(q, {"h": hs.id, "s": signal, "v": part}).scalars())
        gone = sorted(found)
        for part in _chunks(gone, 1000):
            p = {"h": hs.id, "ids": part}
            for sql in (
                "DELETE FROM entry_signals WHERE hashset_id = :h AND entry_id IN :ids",
                "DELETE FROM conflicts WHERE hashset_id = :h"
                " AND (entry_id IN :ids OR other_entry_id IN :ids)",
                "DELETE FROM entries WHERE hashset_id = :h AND id IN :ids",
            ):
                conn.execute(text(sql).bindparams(bindparam("ids", expanding=True)), p)
        if gone:
            now = _now()
            conn.execute(
                CHANGES.insert(),
                [{"hashset_id": hs.id, "op": "remove", "entry_id": i, "at": now} for i in gone],
            )
    return gone


def changes_since(store: Store, after: int = 0, *, limit: int = 10_000) -> list[Change]:
    """Changes with id > ``after``, oldest first (what service workers follow)."""
    c = CHANGES
    with store.read() as conn:
        rows = conn.execute(select(c).where(c.c.id > after).order_by(c.c.id).limit(limit))
        return [Change(r.id, r.hashset_id, r.op, r.entry_id, r.entry_id_end, _utc(r.at)) for r in rows]


def _log_change(
    conn: Connection, hashset_id: int, op: str, entry_id: int | None = None, entry_id_end: int | None = None
) -> None:
    conn.execute(
        CHANGES.insert().values(
            hashset_id=hashset_id, op=op, entry_id=entry_id, entry_id_end=entry_id_end, at=_now()
        )
    )


# --- per-set change positions (index caches) ---------------------------------------------------
def last_changes(store: Store, hashset_ids: Iterable[int]) -> dict[int, int]:
    """The newest change-log id of each of these sets (0 for a set that has none): an index built
    from a set is current while this number stays the same."""
    ids = sorted({int(i) for i in hashset_ids})
    out = dict.fromkeys(ids, 0)
    if not ids:
        return out
    c = CHANGES
    q = (
        select(c.c.hashset_id, func.max(c.c.id))
        .where(c.c.hashset_id.in_(bindparam("ids", expanding=True)))
        .group_by(c.c.hashset_id)
    )
    with store.read() as conn:
        for hashset_id, last in conn.execute(q, {"ids": ids}):
            out[int(hashset_id)] = int(last)
    return out


def last_change_times(store: Store, hashset_ids: Iterable[int]) -> dict[int, tuple[int, datetime | None]]:
    """Each set's version as a case report states it: its newest change-log id (0 when none) and
    when that change was made."""
    last = last_changes(store, hashset_ids)
    ids = [i for i in last.values() if i]
    out: dict[int, tuple[int, datetime | None]] = {h: (i, None) for h, i in last.items()}
    if not ids:
        return out
    with store.read() as conn:
        q = select(CHANGES.c.hashset_id, CHANGES.c.id, CHANGES.c.at).where(
            CHANGES.c.id.in_(bindparam("ids", expanding=True))
        )
        for hashset_id, change_id, at in conn.execute(q, {"ids": ids}):
            out[int(hashset_id)] = (int(change_id), _utc(at))
    return out
