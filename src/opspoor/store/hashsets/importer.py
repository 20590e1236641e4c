"""Bulk import: batches of entries streamed through the checks and the category sift to a writer,
then duplicates and conflicts resolved set-wise (see :mod:`opspoor.store.hashsets`)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import islice
from typing import Any

import numpy as np
from sqlalchemy import Connection, text

from opspoor.errors import FormatError, NotFound, StoreError
from opspoor.hashsets.checks import refused_entries
from opspoor.hashsets.formats.arrays import ARRAY_HASHES, ArrayBatch
from opspoor.hashsets.formats.base import EntryBatch, paused_gc
from opspoor.hashsets.model import (
    DEFAULT_PDQ_DISTANCE,
    CategoryMap,
    Entry,
)
from opspoor.store.db import Store
from opspoor.store.hashsets.candidates import _DuplicateFilter
from opspoor.store.hashsets.catalogue import _check_kind, _find, _insert_hashset, _log_change
from opspoor.store.hashsets.duplicates import _resolve
from opspoor.store.hashsets.rows import _Rows
from opspoor.store.hashsets.schema import (
    DEFAULT_TENANT,
    ImportResult,
    RejectHandler,
)
from opspoor.store.hashsets.writers import _Loader, _PgLoader, _Pipeline, _SqliteLoader

log = logging.getLogger("opspoor.store.hashsets")

#: entries per batch written by the writer thread
BATCH = 20_000


def import_entries(
    store: Store,
    hashset_name: str,
    entries: Iterable[Entry],
    *,
    kind: str = "known",
    source: str | None = None,
    create: bool = True,
    tenant: str = DEFAULT_TENANT,
    progress: Callable[[int], None] | None = None,
    on_reject: RejectHandler | None = None,
    category_map: CategoryMap | None = None,
) -> ImportResult:
    """Import entries into a set (created with ``kind`` and ``source`` if missing and ``create``).

    All or nothing: an exception from ``entries`` (a reader's ``FormatError``) or from the database
    leaves the store as it was. An entry the store cannot hold (no signal, a malformed value) raises
    ``FormatError`` naming its record number, or with ``on_reject`` is reported
    (record number, entry, reason) and skipped. ``progress`` gets the number of entries read so far.

    ``entries`` that offer ``batches()`` (what ``read_entries`` returns) are taken as columns, which
    is the fast path; any other iterable of entries is grouped into batches here.

    Categories are translated by ``category_map``; codes their scheme does not define are kept and
    counted (``unknown_categories``). Into a set of known material, uncategorised entries
    (``us-cat:0``: nobody has looked at them) are not imported, only counted (``uncategorised``).
    """
    batches = getattr(entries, "batches", None)
    columns = batches() if callable(batches) else _batched(entries)
    return import_batches(
        store,
        hashset_name,
        columns,
        kind=kind,
        source=source,
        create=create,
        tenant=tenant,
        progress=progress,
        on_reject=on_reject,
        category_map=category_map,
    )


def import_batches(
    store: Store,
    hashset_name: str,
    batches: Iterable[EntryBatch | ArrayBatch],
    *,
    kind: str = "known",
    source: str | None = None,
    create: bool = True,
    tenant: str = DEFAULT_TENANT,
    progress: Callable[[int], None] | None = None,
    on_reject: RejectHandler | None = None,
    category_map: CategoryMap | None = None,
) -> ImportResult:
    """:func:`import_entries` for entries given as columns (batches of any size).

    ``batches`` may mix :class:`EntryBatch` and :class:`ArrayBatch` items (what the compiled VICS
    reader yields). An ArrayBatch is taken as its reader made it: its hashes are not checked again.
    """
    _check_kind(kind)
    result = ImportResult()
    pg = not store.is_sqlite
    with store.write() as conn:
        hs = _find(conn, hashset_name, tenant, lock=True)
        if hs is None:
            if not create:
                raise NotFound(f"no hash set named {hashset_name!r}", store=store.url)
            hs = _insert_hashset(conn, hashset_name, kind, source, DEFAULT_PDQ_DISTANCE, tenant)
        elif hs.kind != kind:
            raise StoreError(f"hash set {hashset_name!r} holds {hs.kind} material, not {kind}")
        empty = conn.execute(
            text("SELECT 1 FROM entries WHERE hashset_id = :h LIMIT 1"), {"h": hs.id}
        ).first()
        dups = None
        if empty is None:  # a set filled by this import: candidates for duplicates are picked as it loads
            dups = _DuplicateFilter()
            _candidate_table(conn)
        loader = _PgLoader(store, conn) if pg else _SqliteLoader(conn)
        try:
            t0 = time.perf_counter()
            sift = _Sift(result, category_map, skip_uncategorised=hs.kind == "known")
            loaded, first_id, last_id = _load(loader, batches, hs.id, result, progress, on_reject, dups, sift)
            t1 = time.perf_counter()
            if loaded:
                loader.rebuild_indexes()
                t2 = time.perf_counter()
                _resolve(conn, hs.id, first_id, result, candidates=dups is not None and not dups.saturated)
                result.added = loaded - result.duplicates
                _log_change(conn, hs.id, "add", first_id, last_id)
                log.debug(
                    "import into %r: %d entries loaded in %.2f s, indexes %.2f s, duplicates %.2f s%s",
                    hashset_name,
                    loaded,
                    t1 - t0,
                    t2 - t1,
                    time.perf_counter() - t2,
                    "" if dups is None else f" ({dups.found} candidate values of {dups.values})",
                )
        finally:
            loader.close()
            if dups is not None and not pg:
                conn.exec_driver_sql("DROP TABLE IF EXISTS _imp_cand")
    return result


def _candidate_table(conn: Connection) -> None:
    """Candidate values: ``raw`` bytes for the hash columns, ``value`` text for the others."""
    pg = conn.dialect.name == "postgresql"
    conn.exec_driver_sql("DROP TABLE IF EXISTS _imp_cand")
    conn.exec_driver_sql(
        f"CREATE TEMP TABLE _imp_cand (signal VARCHAR(16), value TEXT, raw {'BYTEA' if pg else 'BLOB'})"
        + (" ON COMMIT DROP" if pg else "")
    )


def _batched(entries: Iterable[Entry]) -> Iterator[EntryBatch]:
    it = iter(entries)
    while chunk := list(islice(it, BATCH)):
        yield EntryBatch.from_entries(chunk)


def _load(
    loader: _Loader,
    batches: Iterable[EntryBatch | ArrayBatch],
    hashset_id: int,
    result: ImportResult,
    progress: Callable[[int], None] | None,
    on_reject: RejectHandler | None,
    dups: _DuplicateFilter | None,
    sift: _Sift | None = None,
) -> tuple[int, int, int]:
    """Stream batches to the writer; returns (entries loaded, first id, last id).

    Consecutive batches of one kind are gathered to ``BATCH`` entries (readers yield smaller
    ones, and each write costs a round of statements); EntryBatches are checked, ArrayBatches
    (checked by their reader) are not. Entries keep their order: a batch of the other kind
    writes what was gathered first."""
    fmt = loader.formatter(hashset_id)
    fmt_arrays = loader.array_formatter(hashset_id)
    pipe = _Pipeline(loader.write, threaded=loader.threaded)
    loaded = first = last = 0
    read = 0  # entries taken so far (their positions number rejects)
    pending = EntryBatch.empty()
    arrays: list[ArrayBatch] = []  # gathered ArrayBatches, all of one source

    def put(batch: EntryBatch | ArrayBatch) -> None:
        nonlocal loaded, first, last
        if sift is not None:
            batch = sift(batch)
            if not len(batch):
                return
        format_rows: Callable[[Any, int], _Rows] = fmt_arrays if isinstance(batch, ArrayBatch) else fmt
        lo = loader.reserve_ids(len(batch))
        with paused_gc():
            rows = format_rows(batch, lo)
            if dups is not None:
                rows.candidates = dups.candidates(batch)
        first = first or lo
        last = lo + len(batch) - 1
        loaded += len(batch)
        pipe.put(rows)

    def flush() -> None:
        nonlocal pending
        batch, pending = pending, EntryBatch.empty()
        if not len(batch):
            return
        bad = refused_entries(batch)
        if bad:
            base = read - len(batch)
            entries = list(batch.entries())
            for i, reason in bad:
                if on_reject is None:
                    raise FormatError(reason, record=base + i + 1)
                on_reject(base + i + 1, entries[i], reason)
            result.rejected += len(bad)
            refused = {i for i, _ in bad}
            batch = batch.select([i not in refused for i in range(len(batch))])
            if not len(batch):
                return
        put(batch)

    def flush_arrays() -> None:
        if arrays:
            put(_concat_arrays(arrays))
            arrays.clear()

    try:
        for batch in batches:
            if isinstance(batch, ArrayBatch):
                if not len(batch):
                    continue
                flush()  # before ``read`` moves on: rejects in ``pending`` are numbered from it
                if arrays and arrays[0].source != batch.source:
                    flush_arrays()
                arrays.append(batch)
                read += len(batch)
                if sum(map(len, arrays)) >= BATCH:
                    flush_arrays()
                    if progress is not None:
                        progress(read)
                continue
            flush_arrays()
            pending.extend(batch)
            read += len(batch)
            if len(pending) >= BATCH:
                flush()
                if progress is not None:
                    progress(read)
        flush_arrays()
        flush()
        if progress is not None:
            progress(read)
    except BaseException:
        pipe.abort()
        raise
    pipe.close()
    loader.finish(last)
    return loaded, first, last


class _Sift:
    """What happens to categories on the way in: ``category_map`` translates them; codes their
    scheme does not define are counted; uncategorised entries (``us-cat:0``) are left out of a set of
    known material and counted. Readers share a few Category objects, so each batch looks at its
    distinct objects (by identity) rather than hashing one per entry."""

    def __init__(self, result: ImportResult, category_map: CategoryMap | None, *, skip_uncategorised: bool):
        self.result = result
        self.category_map = category_map or None
        self.skip_uncategorised = skip_uncategorised

    def __call__(self, batch: EntryBatch | ArrayBatch) -> EntryBatch | ArrayBatch:
        if not isinstance(batch, ArrayBatch):
            return self._entries(batch)
        if self.category_map is not None:  # an ArrayBatch's categories are Project VIC numbers
            rules = self.category_map.rules
            present = [str(c) for c in np.unique(batch.category).tolist() if c >= 0]
            if any((None, c) in rules or ("us-cat", c) in rules for c in present):
                return self._entries(batch.to_entry_batch())  # rare: mapped as entries
        if not self.skip_uncategorised:
            return batch
        keep = batch.category != 0
        if keep.all():
            return batch
        self.result.uncategorised += int(len(keep) - keep.sum())
        return batch.select(keep)

    def _entries(self, batch: EntryBatch) -> EntryBatch:
        distinct = {id(c): c for c in batch.category if c is not None}
        if not distinct:
            return batch
        if self.category_map is not None:
            mapped = {k: self.category_map(c) for k, c in distinct.items()}
            if any(mapped[k] is not c for k, c in distinct.items()):
                batch.category = [None if c is None else mapped[id(c)] for c in batch.category]
                distinct = {id(c): c for c in mapped.values() if c is not None}
        unknown = {k for k, c in distinct.items() if not c.known}
        if unknown:
            counts = self.result.unknown_categories
            for k in map(id, batch.category):
                if k in unknown:
                    name = str(distinct[k])
                    counts[name] = counts.get(name, 0) + 1
        if self.skip_uncategorised and any(c.uncategorised for c in distinct.values()):
            keep = [c is None or not c.uncategorised for c in batch.category]
            self.result.uncategorised += keep.count(False)
            batch = batch.select(keep)
        return batch


def _concat_arrays(batches: Sequence[ArrayBatch]) -> ArrayBatch:
    """One ArrayBatch of several of the same source (text spans moved to the joined buffer)."""
    if len(batches) == 1:
        return batches[0]
    starts = np.cumsum([0] + [len(b.text) for b in batches[:-1]])
    spans = []
    for b, at in zip(batches, starts, strict=True):
        moved = b.spans + at
        moved[b.spans[:, :, 0] < 0] = -1
        spans.append(moved)
    return ArrayBatch(
        np.concatenate([b.text for b in batches]),
        {name: np.concatenate([b.hashes[name] for b in batches]) for name in ARRAY_HASHES},
        np.concatenate([b.has for b in batches]),
        np.concatenate([b.category for b in batches]),
        np.concatenate([b.flags for b in batches]),
        np.concatenate([b.size for b in batches]),
        np.concatenate(spans),
        batches[0].source,
    )
