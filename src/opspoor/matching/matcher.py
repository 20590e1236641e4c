"""The matcher behind ``opspoor match``, the scan and the service: queries in, matches out.

The named hash sets are loaded from the store into index groups (``IndexGroup``): with ``cache``
one group per set, memory-mapped from the index cache; without, one group holding every set, which
the service's live matcher (``service.live``) updates in place through the properties below. A PDQ
hit counts within the matching set's own distance; local features are looked up only for the
images nothing else matched.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from opspoor.index import ExactIndex, HammingIndex
from opspoor.matching.cache import load_set_index
from opspoor.matching.groups import LOCAL, IndexGroup, _Prepared
from opspoor.matching.query import Match, Query
from opspoor.signals import exact_widths
from opspoor.signals.local import LocalIndex
from opspoor.store import EntryRef, Store, entry_details, get_hashset
from opspoor.store.hashsets import last_changes


class Matcher:
    """Matches queries against the named hash sets of one tenant."""

    def __init__(
        self,
        store: Store,
        hashsets: Sequence[str],
        distance: int | None = None,
        *,
        tenant: str = "default",
        cache: bool = False,
    ) -> None:
        """``distance`` overrides every set's own PDQ distance; the sets are ``tenant``'s.

        With ``cache``, each set has its own index group, kept as flat files in the user's cache
        folder (keyed by the store, the set and the set's last change in the change log) and
        memory-mapped by the next command that names the set, with any other sets. Without, one
        group holds every set, built from the store (the service's live matcher grows it in place).
        """
        self.store = store
        self.tenant = tenant
        self.sets = {name: get_hashset(store, name, tenant=tenant) for name in hashsets}
        self.distance = {n: distance if distance is not None else s.distance for n, s in self.sets.items()}
        self.pdq_radius = max(self.distance.values(), default=31)
        #: set name -> its group; the key ``None`` when one group holds every set
        self.groups: dict[str | None, IndexGroup] = {}
        if cache:
            last = last_changes(store, [s.id for s in self.sets.values()])
            for name, rec in self.sets.items():
                self.groups[name] = load_set_index(store, rec, last[rec.id])
        else:
            self.groups[None] = IndexGroup.build(store, list(self.sets), tenant)
        self._details: dict[int, EntryRef] = {}

    @classmethod
    def from_store(
        cls,
        store: Store,
        hashsets: Sequence[str],
        distance: int | None = None,
        *,
        tenant: str = "default",
        cache: bool = False,
    ) -> Matcher:
        return cls(store, hashsets, distance, tenant=tenant, cache=cache)

    # --- the indexes of the one group holding every set (built without ``cache``): what the
    # service's live matcher (service.live) adds to and removes from in place -----------------------
    @property
    def _all(self) -> IndexGroup:
        return self.groups[None]

    @property
    def exact(self) -> dict[str, ExactIndex | None]:
        return self._all.exact

    @property
    def pdq(self) -> HammingIndex | None:
        return self._all.pdq

    @pdq.setter
    def pdq(self, index: HammingIndex | None) -> None:
        self._all.pdq = index

    @property
    def frames(self) -> HammingIndex | None:
        return self._all.frames

    @frames.setter
    def frames(self, index: HammingIndex | None) -> None:
        self._all.frames = index

    @property
    def frame_entry(self) -> np.ndarray:
        return self._all.frame_entry

    @frame_entry.setter
    def frame_entry(self, rows: np.ndarray) -> None:
        self._all.frame_entry = rows

    @property
    def frame_count(self) -> dict[int, int]:
        return self._all.frame_count

    @frame_count.setter
    def frame_count(self, counts: dict[int, int]) -> None:
        self._all.frame_count = counts

    @property
    def pdq_lq(self) -> HammingIndex | None:
        """The low-quality augmentation hashes (matched within ``LOW_QUALITY_DISTANCE`` only)."""
        return self._all.pdq_lq

    @pdq_lq.setter
    def pdq_lq(self, index: HammingIndex | None) -> None:
        self._all.pdq_lq = index

    @property
    def local(self) -> LocalIndex | None:
        """The originals' local features (a new index is swapped in whole: its LSH tables cannot grow)."""
        return self._all.local

    @local.setter
    def local(self, index: LocalIndex | None) -> None:
        self._all.local = index

    @property
    def has_local(self) -> bool:
        """Whether any loaded set holds its originals' local features."""
        return any(g.local is not None for g in self.groups.values())

    @property
    def size(self) -> dict[str, int]:
        out = dict.fromkeys((*exact_widths(), "pdq", "vpdq_frames", LOCAL), 0)
        for group in self.groups.values():
            for sig, n in group.sizes().items():
                out[sig] = out.get(sig, 0) + n
        return out

    def entry_refs(self, ids: set[int]) -> dict[int, EntryRef]:
        """The set, kind and category of each entry still in the store (read once, then kept)."""
        missing = [i for i in ids if i not in self._details]
        if missing:
            self._details.update(entry_details(self.store, missing))
        # (.get: the live matcher's follower may forget an id meanwhile)
        found = {i: self._details.get(i) for i in ids}
        return {i: r for i, r in found.items() if r is not None}

    def forget_entries(self, ids: Iterable[int]) -> None:
        """Drop what is kept about entries removed from the store."""
        for i in ids:
            self._details.pop(i, None)

    def match_queries(self, queries: Sequence[Query]) -> list[list[Match]]:
        # hits[qi] -> {(entry_id, signal): (distance, method, inliers)}
        hits: list[dict[tuple[int, str], tuple[int, str | None, int | None]]] = [{} for _ in queries]

        def hit(qi: int, eid: int, signal: str, dist: int, method: str | None, inliers: int | None) -> None:
            key = (eid, signal)
            old = hits[qi].get(key)
            if old is None or dist < old[0] or (inliers or 0) > (old[2] or 0):
                hits[qi][key] = (dist, method, inliers)

        prepared = _Prepared.of(queries)
        groups = list(self.groups.items())
        for key, group in groups:
            group.find(prepared, self.pdq_radius if key is None else self.distance[key], hit)
        # local features are the slow way in (30-700 ms per image): only for images nothing else matched
        unmatched = [qi for qi in prepared.local if not hits[qi]]
        for _, group in groups:
            group.find_local(prepared, unmatched, hit)

        refs = self.entry_refs({eid for per_query in hits for eid, _ in per_query})
        out: list[list[Match]] = []
        for per_query in hits:
            ms = []
            ranked = sorted(per_query.items(), key=lambda kv: (kv[1][0], -(kv[1][2] or 0), kv[0]))
            for (eid, signal), (dist, how, inliers) in ranked:
                ref = refs.get(eid)
                if ref is None:
                    continue  # removed from the store since the index was loaded
                if signal == "pdq" and dist > self.distance[ref.hashset]:
                    continue
                ms.append(
                    Match(
                        ref.hashset, ref.kind, eid, ref.external_id, signal, dist, ref.category, how, inliers
                    )
                )
            out.append(ms)
        return out

    def match_batch(self, signals: Sequence[dict[str, Any]]) -> list[list[dict[str, Any]]]:
        """Scan records in, JSON match lists out."""
        return [
            [m.to_json() for m in ms] for ms in self.match_queries([Query.from_signals(s) for s in signals])
        ]
