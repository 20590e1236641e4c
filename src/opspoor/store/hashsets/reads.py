"""Reading sets back: entries for export, conflicts, match details, and the values the index loads."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
from sqlalchemy import Connection, bindparam, select, text

from opspoor.errors import SignalError, StoreError
from opspoor.hashsets.model import (
    Entry,
    RecordError,
    match_kind,
)
from opspoor.signals import get_signal, indexed_hex_lengths
from opspoor.store.db import Store
from opspoor.store.hashsets.catalogue import _get
from opspoor.store.hashsets.schema import (
    CONFLICTS,
    DEFAULT_TENANT,
    DERIVED_AS,
    DERIVED_HEX_LENGTH,
    ENTRIES,
    HASH_COLUMNS,
    HASHSETS,
    SIGNALS,
    ConflictRecord,
    EntryRef,
    _category,
    _chunks,
    _utc,
    hex_rows,
)

log = logging.getLogger("opspoor.store.hashsets")


# --- reading back ----------------------------------------------------------------------------
def iter_entries(
    store: Store, name: str, *, tenant: str = DEFAULT_TENANT, chunk: int = 10_000
) -> Iterator[Entry]:
    """The set's entries in import order, streamed in chunks (for export). Derived values
    (vPDQ frames) are not listed; the vPDQ text is."""
    e, s = ENTRIES, SIGNALS
    with store.read() as conn:
        hs = _get(conn, name, tenant)
        after = -1
        while True:
            rows = conn.execute(
                select(e).where(e.c.hashset_id == hs.id, e.c.id > after).order_by(e.c.id).limit(chunk)
            ).all()
            if not rows:
                return
            lo, hi = rows[0].id, rows[-1].id
            signals: dict[int, dict[str, str]] = {}
            for eid, sig, value in conn.execute(
                select(s.c.entry_id, s.c.signal, s.c.value).where(
                    s.c.hashset_id == hs.id, s.c.entry_id.between(lo, hi), s.c.derived.is_(False)
                )
            ):
                signals.setdefault(eid, {})[sig] = value
            for r in rows:
                sigs = signals.get(r.id, {})
                for col in HASH_COLUMNS:
                    raw = getattr(r, col)
                    if raw is not None:
                        sigs[col] = bytes(raw).hex()
                if r.vpdq is not None:
                    sigs["vpdq"] = r.vpdq
                yield _entry(r, sigs)
            after = hi


def _order_signals(sigs: dict[str, str]) -> dict[str, str]:
    order = {n: i for i, n in enumerate(("md5", "sha1", "sha256", "photodna", "pdq", "vpdq"))}
    return dict(sorted(sigs.items(), key=lambda kv: order.get(kv[0], 99)))


def _entry(r: Any, signals: dict[str, str]) -> Entry:
    # text stored before NUL was refused (SQLite kept it): one line naming the entry, no traceback
    try:
        return _entry_of_row(r, signals)
    except RecordError as exc:
        raise StoreError(f"entry {getattr(r, 'id', '?')}: {exc} (stored by an older opspoor)") from None


def _entry_of_row(r: Any, signals: dict[str, str]) -> Entry:
    return Entry(
        signals=_order_signals(signals),
        category=_category(r.category_scheme, r.category_code),
        victim_identified=r.victim_identified,
        offender_identified=r.offender_identified,
        distributed=r.distributed,
        series=r.series,
        tags=tuple(json.loads(r.tags)) if r.tags else (),
        source=r.source,
        date_updated=r.date_updated,
        external_id=r.external_id,
        size=r.size,
        extra=r.extra or {},
    )


def list_conflicts(store: Store, name: str, *, tenant: str = DEFAULT_TENANT) -> list[ConflictRecord]:
    c, e1, e2 = CONFLICTS, ENTRIES.alias("e1"), ENTRIES.alias("e2")
    q = (
        select(
            c.c.signal,
            c.c.value,
            c.c.recorded_at,
            e1.c.id,
            e1.c.external_id,
            e1.c.category_scheme,
            e1.c.category_code,
            e2.c.id,
            e2.c.external_id,
            e2.c.category_scheme,
            e2.c.category_code,
        )
        .select_from(c.join(e1, e1.c.id == c.c.entry_id).join(e2, e2.c.id == c.c.other_entry_id))
        .order_by(c.c.id)
    )
    with store.read() as conn:
        hs = _get(conn, name, tenant)
        rows = conn.execute(q.where(c.c.hashset_id == hs.id)).all()
    return [
        ConflictRecord(
            sig,
            value,
            EntryRef(hs.name, id1, x1, _category(s1, k1), hs.kind),
            EntryRef(hs.name, id2, x2, _category(s2, k2), hs.kind),
            _utc(at),
        )
        for sig, value, at, id1, x1, s1, k1, id2, x2, s2, k2 in rows
    ]


# --- what the index loads --------------------------------------------------------------------
def load_signal_arrays(
    store: Store,
    hashset_names: Sequence[str],
    signal: str,
    *,
    tenant: str = DEFAULT_TENANT,
    chunk: int = 200_000,
) -> tuple[np.ndarray, np.ndarray]:
    """Every value of ``signal`` in the named sets, derived ones (vPDQ frames, augmentation hashes)
    included: ``(entry_ids int64 (N,), values uint8 (N, bytes))`` — the bytes of the hex, in order,
    which is what the indexes take. Streamed in chunks; an entry id repeats when it has several values.
    """
    matchable = indexed_hex_lengths()
    length = matchable.get(signal) or DERIVED_HEX_LENGTH.get(signal)
    if length is None:
        raise SignalError(f"{signal!r} values are not matchable hashes; one of {', '.join(matchable)}")
    id_parts: list[np.ndarray] = [np.zeros(0, np.int64)]
    value_parts: list[np.ndarray] = [np.zeros((0, length // 2), np.uint8)]
    with store.read() as conn:
        marks = _set_ids(conn, hashset_names, tenant)
        if not marks:
            return id_parts[0], value_parts[0]
        queries = [
            f"SELECT entry_id, value FROM entry_signals WHERE signal = '{signal}' AND hashset_id IN ({marks})"
        ]
        if signal in HASH_COLUMNS:
            queries.insert(
                0, f"SELECT id, {signal} FROM entries WHERE {signal} IS NOT NULL AND hashset_id IN ({marks})"
            )
        for sql in queries:
            for part in _stream_rows(store, conn, sql, chunk):
                _take_signal_rows(part, length, id_parts, value_parts, signal)
    return np.concatenate(id_parts), np.concatenate(value_parts)


def load_signal_texts(
    store: Store,
    hashset_names: Sequence[str],
    signal: str,
    *,
    tenant: str = DEFAULT_TENANT,
    chunk: int = 20_000,
) -> tuple[np.ndarray, list[str]]:
    """Every value of a signal that is not a fixed-width hash (``local``) in the named sets, as
    ``(entry ids int64 (N,), texts)``, in entry order."""
    ids_out: list[int] = []
    texts: list[str] = []
    with store.read() as conn:
        marks = _set_ids(conn, hashset_names, tenant)
        if not marks:
            return np.zeros(0, np.int64), texts
        sql = (
            "SELECT entry_id, value FROM entry_signals "
            f"WHERE signal = :signal AND hashset_id IN ({marks}) ORDER BY entry_id"
        )
        for row in conn.execute(text(sql), {"signal": signal}).yield_per(chunk):
            ids_out.append(int(row[0]))
            texts.append(str(row[1]))
    return np.asarray(ids_out, dtype=np.int64), texts


def has_signal(
    store: Store, hashset_names: Sequence[str], signal: str, *, tenant: str = DEFAULT_TENANT
) -> bool:
    """Whether any entry of the named sets carries a value of ``signal`` (derived ones included)."""
    with store.read() as conn:
        marks = _set_ids(conn, hashset_names, tenant)
        if not marks:
            return False
        sql = f"SELECT 1 FROM entry_signals WHERE signal = :signal AND hashset_id IN ({marks}) LIMIT 1"
        return conn.execute(text(sql), {"signal": signal}).first() is not None


def _set_ids(conn: Connection, hashset_names: Sequence[str], tenant: str) -> str:
    """The named sets' ids as an SQL list ("3, 7"; ints from the database); unknown names raise."""
    return ", ".join(str(_get(conn, n, tenant).id) for n in hashset_names)


def _stream_rows(store: Store, conn: Connection, sql: str, chunk: int) -> Iterator[Sequence[Any]]:
    """The rows of a query in chunks of plain tuples: the raw sqlite3 cursor is about twice as fast
    as Row objects for the millions of rows an index load reads; PostgreSQL keeps a server-side
    cursor."""
    if store.is_sqlite:
        cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cur.execute(sql)
            while part := cur.fetchmany(chunk):
                yield part
        finally:
            cur.close()
    else:
        result = conn.execution_options(stream_results=True, yield_per=chunk).exec_driver_sql(sql)
        yield from result.partitions()


def _take_signal_rows(
    part: Sequence[Any],
    length: int,
    id_parts: list[np.ndarray],
    value_parts: list[np.ndarray],
    signal: str | None = None,
) -> None:
    """Append one chunk of (entry_id, value) rows as arrays: values are bytes (a hash column) or
    canonical lower-case hex (``entry_signals``), so one join and ``bytes.fromhex`` of the
    joined column is the fast, exact conversion (list comprehensions beat ``zip(*rows)`` by 20x
    on 200k-row chunks). Text that is not canonical (a PhotoDNA an older opspoor kept as given)
    is brought to the ``signal``'s canonical form one value at a time, or left out with a warning."""
    values = [r[1] for r in part]
    if isinstance(values[0], str):
        if set(map(len, values)) == {length}:
            try:
                id_parts.append(np.fromiter((r[0] for r in part), np.int64, len(part)))
                value_parts.append(hex_rows(values, length // 2))
                return
            except ValueError:
                id_parts.pop()
        _take_text_rows(part, length, id_parts, value_parts, signal)
        return
    id_parts.append(np.fromiter((r[0] for r in part), np.int64, len(part)))
    raw = b"".join(values)
    value_parts.append(np.frombuffer(raw, np.uint8).reshape(len(values), length // 2))


def _take_text_rows(
    part: Sequence[Any],
    length: int,
    id_parts: list[np.ndarray],
    value_parts: list[np.ndarray],
    signal: str | None,
) -> None:
    """The careful path of :func:`_take_signal_rows`: each value through its signal's validation."""
    like = get_signal(DERIVED_AS.get(signal, signal)) if signal else None
    # (a vPDQ's values here are its frame hashes, not texts its validation takes)
    validate = like.validate if like is not None and like.hex_length == length else None
    ids: list[int] = []
    canon: list[str] = []
    for eid, value in part:
        try:
            v = validate(value) if validate else value
            if len(v) != length:
                raise SignalError(f"{len(v)} characters, not {length}")
            bytes.fromhex(v)
        except (SignalError, ValueError) as exc:
            log.warning("entry %s: %s value left out of the index: %s", eid, signal or "a", exc)
            continue
        ids.append(int(eid))
        canon.append(v)
    id_parts.append(np.asarray(ids, np.int64))
    value_parts.append(hex_rows(canon, length // 2))


def entry_details(store: Store, entry_ids: Iterable[int]) -> dict[int, EntryRef]:
    """Set name, external id, category and match kind of each entry id (unknown ids are left out):
    the set's kind, but ``uncategorised`` for an uncategorised entry of a known set (never known)."""
    e, h = ENTRIES, HASHSETS
    q = (
        select(h.c.name, h.c.kind, e.c.id, e.c.external_id, e.c.category_scheme, e.c.category_code)
        .select_from(e.join(h, h.c.id == e.c.hashset_id))
        .where(e.c.id.in_(bindparam("ids", expanding=True)))
    )
    out: dict[int, EntryRef] = {}
    with store.read() as conn:
        for part in _chunks(sorted({int(i) for i in entry_ids}), 1000):
            for name, kind, eid, ext, sch, code in conn.execute(q, {"ids": part}):
                cat = _category(sch, code)
                out[eid] = EntryRef(name, eid, ext, cat, match_kind(kind, cat))
    return out
