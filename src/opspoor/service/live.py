"""Matching that follows the store's change log, so a change reaches every worker within seconds,
without a restart or a rebuild.

Each worker holds one :class:`LiveMatcher` per tenant (the tenant's hash sets in the
:mod:`opspoor.index` indexes) and an :class:`IndexFollower` thread that reads the change log every
``poll_seconds`` and applies it: an ``add`` puts the named entries' values into the indexes'
delta segments, a ``remove`` or ``drop`` tombstones them. Searches take index snapshots, so they
run while the follower writes. A delta grown large is merged into a new base in the follower thread.
Local features (``signals.local``) of added entries are collected and put into a new local index at
most every ``LOCAL_REBUILD_SECONDS`` (its LSH tables cannot grow or shrink in place), built in the
follower thread and then swapped in; the features of removed entries are left out of that new
index (their matches stop at once: a match needs the entry to be a member).

The follower starts from the newest change id read *before* the sets are loaded, so a change made
during the load is applied again: adds are harmless twice (a match is reported once per entry and
signal), removes are idempotent. On PostgreSQL change ids can commit out of order (two concurrent
writers), so ids skipped over are looked at again on later polls for ``GAP_SECONDS``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from opspoor.errors import OpspoorError
from opspoor.index import ExactIndex, HammingIndex
from opspoor.matching import LOCAL, PDQ_LOW_QUALITY, Matcher, Query
from opspoor.signals import exact_widths
from opspoor.signals.local import LocalFeatures, LocalIndex
from opspoor.signals.pdq import PDQ
from opspoor.store import Change, Store, changes_since
from opspoor.store.follow import (
    all_hashsets,
    changes_with_ids,
    entry_ids_of,
    hashset_by_id,
    last_change_id,
    signals_between,
    texts_between,
)
from opspoor.store.hashsets import HashSetRecord
from opspoor.stream import warm_up as warm_stream

log = logging.getLogger("opspoor.service")

#: how long a skipped change id is looked for (a rolled-back transaction leaves one for good)
GAP_SECONDS = 60.0
#: merge a delta into the base when it holds more than this many entries, or 1/8 of the base
MERGE_AT = 20_000
#: local features added meanwhile are put into a new local index at most this often: the LSH
#: tables are built anew each time (0.3 s for 300 originals, 19 s for 10,000: docs/benchmarks.md)
LOCAL_REBUILD_SECONDS = 10.0


def _words(values: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(values).view(np.uint64).reshape(-1, 4)


class LiveMatcher(Matcher):
    """A tenant's :class:`Matcher` whose indexes take adds and removes in place.

    Only the follower thread calls the update methods; any thread may match meanwhile.
    """

    def __init__(
        self, store: Store, tenant: str, hashsets: Sequence[HashSetRecord], *, threads: int | None = None
    ) -> None:
        super().__init__(store, [h.name for h in hashsets], tenant=tenant)
        self.threads = threads
        for sig in exact_widths():  # empty indexes, so later adds have somewhere to go
            self._exact_index(sig)
        if self.pdq is None:
            self.pdq = HammingIndex()
        if self.pdq_lq is None:
            self.pdq_lq = HammingIndex()
        if self.frames is None:
            self.frames = HammingIndex()
        if threads:  # several workers share the CPUs: each search uses its share
            for index in (*self.exact.values(), self.pdq, self.pdq_lq, self.frames):
                assert index is not None
                index.threads = threads
        self.by_id: dict[int, HashSetRecord] = {h.id: h for h in self.sets.values()}
        #: sorted entry ids of each set, so dropping a set can remove them
        self.members: dict[int, np.ndarray] = {
            h.id: np.unique(entry_ids_of(store, h.id)) for h in self.by_id.values()
        }
        #: local features of entries added since the local index was built: (entry id, features)
        self.local_pending: list[tuple[int, LocalFeatures]] = []
        #: entries removed since: their features are left out of the next local index
        self.local_removed: set[int] = set()
        self._local_built = time.monotonic()

    def warm_up(self) -> None:
        """One search of every index, so that the first request does not wait for the compiled
        kernels to load."""
        zero = "0" * (PDQ.hex_length or 0)  # a PDQ, and a vPDQ frame's hash
        exact = {sig: "00" * width for sig, width in exact_widths().items()}
        self.match_queries([Query(pdq=[(zero, "pdq")], vpdq_frames=[zero], **exact)])

    def _exact_index(self, sig: str) -> ExactIndex:
        """The exact index of a signal found by equal value (``signals.exact_widths``), made empty
        when the sets hold no value of it yet."""
        index = self.exact.get(sig)
        if index is None:
            index = self.exact[sig] = ExactIndex(exact_widths()[sig])
            if self.threads:
                index.threads = self.threads
        return index

    # --- updates (follower thread) -------------------------------------------------------------
    def add_set(self, rec: HashSetRecord) -> None:
        old = self.sets.get(rec.name)
        if old is not None and old.id != rec.id:  # same name, new set: the old one was dropped
            self.drop_set(old.id)
        self.sets[rec.name] = rec
        self.by_id[rec.id] = rec
        self.distance[rec.name] = rec.distance
        self.pdq_radius = max(self.distance.values(), default=31)
        self.members.setdefault(rec.id, np.zeros(0, np.int64))

    def add_entries(self, hashset_id: int, arrays: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
        """Values of entries of the set (``signals_between``); entries it already has gain them."""
        known = self.members.get(hashset_id, np.zeros(0, np.int64))
        new_ids: list[np.ndarray] = []
        by_equal_value = exact_widths()
        for sig, (ids, values) in arrays.items():
            if not len(ids):
                continue
            new_ids.append(ids)
            if sig in by_equal_value:
                self._exact_index(sig).add(values, ids)
            elif sig == "pdq":
                assert self.pdq is not None
                self.pdq.add(_words(values), ids)
            elif sig == PDQ_LOW_QUALITY:
                assert self.pdq_lq is not None
                self.pdq_lq.add(_words(values), ids)
            elif sig == "vpdq":
                fresh = ~np.isin(ids, known)  # a video's frames never change once stored
                self._add_frames(ids[fresh], values[fresh])
        if new_ids:
            self.members[hashset_id] = np.union1d(known, np.concatenate(new_ids))

    def add_local(self, ids: np.ndarray, texts: Sequence[str]) -> None:
        """Local features of added entries: they count once ``merge_large_deltas`` has put them into
        a new local index (a damaged value is logged and left out, the others go on)."""
        for eid, text in zip(ids.tolist(), texts, strict=True):
            try:
                self.local_pending.append((eid, LocalFeatures.decode(text)))
            except OpspoorError as exc:
                log.error("entry %d: local features left out: %s", eid, exc)

    def _add_frames(self, ids: np.ndarray, values: np.ndarray) -> None:
        if not len(ids):
            return
        rows = np.arange(len(self.frame_entry), len(self.frame_entry) + len(ids), dtype=np.int64)
        counts = dict(self.frame_count)
        for eid, n in zip(*np.unique(ids, return_counts=True), strict=True):
            counts[int(eid)] = counts.get(int(eid), 0) + int(n)
        # row -> entry first: a search that sees the new rows must find their owners
        self.frame_count = counts
        self.frame_entry = np.concatenate([self.frame_entry, ids])
        assert self.frames is not None
        self.frames.add(_words(values), rows)

    def remove_entries(self, ids: np.ndarray) -> None:
        ids = np.unique(np.asarray(ids, dtype=np.int64))
        if not len(ids):
            return
        for index in self.exact.values():
            if index is not None:
                index.remove(ids)
        assert self.pdq is not None and self.frames is not None and self.pdq_lq is not None
        self.pdq.remove(ids)
        self.pdq_lq.remove(ids)
        rows = np.flatnonzero(np.isin(self.frame_entry, ids))
        if len(rows):
            self.frames.remove(rows)
        self.forget_entries(ids.tolist())
        if self.local is not None or self.local_pending:
            self.local_removed.update(ids.tolist())

    def drop_set(self, hashset_id: int) -> None:
        rec = self.by_id.pop(hashset_id, None)
        members = self.members.pop(hashset_id, None)
        if members is not None:
            self.remove_entries(members)
        if rec is not None and self.sets.get(rec.name) is rec:
            del self.sets[rec.name]
            del self.distance[rec.name]

    def merge_large_deltas(self) -> None:
        indexes = [*self.exact.values(), self.pdq, self.pdq_lq, self.frames]
        for index in indexes:
            if index is not None and index.delta_size > max(MERGE_AT, (len(index) - index.delta_size) // 8):
                index.merge()
        changed = self.local_pending or self.local_removed
        if changed and time.monotonic() - self._local_built >= LOCAL_REBUILD_SECONDS:
            self._rebuild_local()

    def _rebuild_local(self) -> None:
        """A new local index with the pending features and without those of removed entries, its LSH
        tables built here (in the follower thread), then swapped in: lookups use the old one until
        then."""
        pending, self.local_pending = self.local_pending, []
        removed, self.local_removed = self.local_removed, set()
        old = base = self.local
        if old is not None and np.isin(old.owner, list(removed)).any():
            base = old.without(list(removed))
        # an add applied twice (one made during the load) must not index an entry twice: its
        # descriptors would be each other's second nearest and fail the ratio test
        held = set(np.unique(base.owner).tolist()) if base is not None else set()
        unique = {eid: f for eid, f in reversed(pending) if eid not in held and eid not in removed}
        owners, features = list(unique), list(unique.values())
        if not owners and base is old:
            return  # nothing added, nothing removed from the index
        if base is None:
            fresh = LocalIndex(features, owners)
        else:
            fresh = base.with_added(features, owners) if owners else base
        fresh.warm_up()
        self.local = fresh
        self._local_built = time.monotonic()


@dataclass(frozen=True, slots=True)
class FollowerState:
    loaded: bool
    last_change: int
    age_seconds: float | None  # since the change log was last read
    error: str | None


class IndexFollower:
    """Every tenant's :class:`LiveMatcher` in this worker, kept current by a background thread."""

    def __init__(
        self,
        store: Store,
        *,
        poll_seconds: float = 0.5,
        threads: int | None = None,
        on_loaded: Callable[[], None] | None = None,
    ) -> None:
        """``on_loaded`` is called in the follower thread once the sets are loaded and searched once."""
        self.store = store
        self.poll_seconds = poll_seconds
        self.threads = threads
        self.on_loaded = on_loaded
        self.matchers: dict[str, LiveMatcher] = {}
        self.tenant_of: dict[int, str] = {}  # hash-set id -> tenant
        self.last_change = 0
        self.loaded = False
        self.error: str | None = None
        self._last_read: float | None = None
        self._gaps: dict[int, float] = {}  # change id -> when first skipped
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- life ------------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="opspoor-index-follower", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if not self.loaded:
                    self.load()
                self.poll()
                self.error = None
            except Exception as exc:  # the store may be away for a while: keep serving, retry
                self.error = f"{type(exc).__name__}: {exc}"
                log.error("index follower: %s", self.error)
            self._stop.wait(self.poll_seconds)

    def load(self) -> None:
        """Load every tenant's sets (the change log position is taken first, see the module note)."""
        start = last_change_id(self.store)
        by_tenant: dict[str, list[HashSetRecord]] = {}
        for rec in all_hashsets(self.store):
            by_tenant.setdefault(rec.tenant, []).append(rec)
        matchers = {
            t: LiveMatcher(self.store, t, recs, threads=self.threads) for t, recs in by_tenant.items()
        }
        for m in matchers.values():
            m.warm_up()
        # a stream's frame hashed and matched once: the first frames of the first streams (100
        # may open in one second) do not wait for the hashing kernels (docs/live.md)
        warm_stream(list(matchers.values()))
        if self.on_loaded is not None:
            self.on_loaded()
        with self._lock:
            self.matchers = matchers
            self.tenant_of = {rec.id: t for t, recs in by_tenant.items() for rec in recs}
            self.last_change = start
            self.loaded = True
        log.info("index loaded: %d hash sets of %d tenants", len(self.tenant_of), len(matchers))

    # --- reading -----------------------------------------------------------------------------------
    def matcher(self, tenant: str) -> LiveMatcher:
        """The tenant's matcher (an empty one for a tenant without hash sets)."""
        m = self.matchers.get(tenant)
        if m is None:
            with self._lock:
                m = self.matchers.get(tenant)
                if m is None:
                    m = self.matchers[tenant] = LiveMatcher(self.store, tenant, [], threads=self.threads)
        return m

    def state(self) -> FollowerState:
        age = None if self._last_read is None else time.monotonic() - self._last_read
        return FollowerState(self.loaded, self.last_change, age, self.error)

    def index_sizes(self) -> dict[str, int]:
        total = dict.fromkeys((*exact_widths(), "pdq", "vpdq_frames"), 0)
        for m in list(self.matchers.values()):
            for sig, n in m.size.items():
                total[sig] = total.get(sig, 0) + n
        return total

    # --- following ---------------------------------------------------------------------------------
    def poll(self) -> int:
        """Apply every change not applied yet; returns how many were applied."""
        applied = 0
        now = time.monotonic()
        self._gaps = {i: t for i, t in self._gaps.items() if now - t < GAP_SECONDS}
        if self._gaps:
            late = changes_with_ids(self.store, sorted(self._gaps))
            for c in late:
                self._gaps.pop(c.id, None)
            applied += self._apply_all(late)
        while True:
            batch = changes_since(self.store, self.last_change)
            if not batch:
                break
            expected = self.last_change + 1
            for c in batch:
                for missing in range(expected, c.id):
                    self._gaps.setdefault(missing, now)
                expected = c.id + 1
            applied += self._apply_all(batch)
            self.last_change = batch[-1].id
        for m in list(self.matchers.values()):
            m.merge_large_deltas()
        self._last_read = now
        return applied

    def _apply_all(self, changes: list[Change]) -> int:
        i = 0
        while i < len(changes):
            c = changes[i]
            if c.op == "remove":  # a run of removes of one set is applied at once
                j = i
                while (
                    j < len(changes) and changes[j].op == "remove" and changes[j].hashset_id == c.hashset_id
                ):
                    j += 1
                ids = np.array([x.entry_id for x in changes[i:j] if x.entry_id is not None], np.int64)
                tenant = self.tenant_of.get(c.hashset_id)
                if tenant is not None:
                    self.matcher(tenant).remove_entries(ids)
                i = j
                continue
            if c.op == "add":
                self._apply_add(c)
            elif c.op == "drop":
                tenant = self.tenant_of.pop(c.hashset_id, None)
                if tenant is not None:
                    self.matcher(tenant).drop_set(c.hashset_id)
            i += 1
        return len(changes)

    def _apply_add(self, c: Change) -> None:
        if c.entry_id is None:
            return
        rec = hashset_by_id(self.store, c.hashset_id)
        if rec is None:  # dropped since; its drop change follows
            return
        self.tenant_of[rec.id] = rec.tenant
        m = self.matcher(rec.tenant)
        m.add_set(rec)
        last = c.entry_id_end or c.entry_id
        m.add_entries(rec.id, signals_between(self.store, rec.id, c.entry_id, last))
        m.add_local(*texts_between(self.store, rec.id, c.entry_id, last, LOCAL))
