"""Hamming-radius search over 256-bit hashes (PDQ), exact, updated in place.

    index = HammingIndex.build(words, ids)       # words: (N, 4) uint64, e.g. pdq.hex_to_words(hexes)
    m = index.search(queries, radius=31)         # every entry within 31 bits, with its distance
    m = index.search_dihedral(variants)          # (Q, 8, 4): best of the 8 rotations/flips per entry
    index.add(words2, ids2); index.remove(ids3); index.merge()
    index.save(path); HammingIndex.load(path)    # memory-mapped

Hashes are ``(N, 4)`` uint64 words or ``(N, 32)`` uint8 bytes; the distance is the popcount of
the XOR, so any word layout works as long as queries and entries share it (``opspoor.signals.pdq``
``hex_to_words`` is the one used across opspoor). See :mod:`opspoor.index.mih` for the method.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import numpy as np

from opspoor.index._threads import default_threads
from opspoor.index.live import LiveIndex, Snapshot
from opspoor.index.mih import MihLayout, MihSegment, as_words, default_bit_order

MAX_RADIUS = 255


@dataclass(frozen=True)
class Matches:
    """Matches of a batch, sorted by query, then distance, then id.

    ``query_idx[k]`` is the row of the query in the batch, ``ids[k]`` the matching entry's id,
    ``distances[k]`` the Hamming distance. From ``search_dihedral``, ``variants[k]`` is the
    dihedral variant (0..7, in the caller's order) that came closest; otherwise None.
    """

    query_idx: np.ndarray  # int64
    ids: np.ndarray  # int64
    distances: np.ndarray  # int16
    variants: np.ndarray | None = None  # int8

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def of_query(self, i: int) -> slice:
        """The slice of the matches of query ``i`` (they are contiguous)."""
        a, b = np.searchsorted(self.query_idx, [i, i + 1])
        return slice(int(a), int(b))


class HammingIndex(LiveIndex[MihSegment]):
    """Every entry within a radius of each query, with its distance; exact.

    ``layout`` fixes the multi-index layout of the base (default: chosen for the base's size at
    every merge); ``threads`` is how many threads a search uses (default: the usable CPUs).
    """

    kind = "hamming"
    version = 1

    def __init__(self, layout: MihLayout | None = None, threads: int | None = None) -> None:
        self.layout = layout
        self.threads = threads or default_threads()
        super().__init__(Snapshot(self._empty(), None, self._empty()))

    def _empty(self) -> MihSegment:
        return MihSegment.build(np.zeros((0, 4), np.uint64), np.zeros(0, np.int64))

    @classmethod
    def build(
        cls, hashes: np.ndarray, ids: np.ndarray, layout: MihLayout | None = None, threads: int | None = None
    ) -> HammingIndex:
        """An index over these entries (all in the base segment)."""
        index = cls(layout, threads)
        words = index._check_keys(hashes)
        ids = np.ascontiguousarray(ids, dtype=np.int64).reshape(-1)
        if ids.shape != (len(words),):
            raise ValueError(f"{len(words)} hashes but {ids.shape[0]} ids")
        index._snap = Snapshot(index._build_segment(words, ids, base=True), None, index._empty())
        return index

    # --- search ------------------------------------------------------------------------------
    def search(self, queries: np.ndarray, radius: int = 31) -> Matches:
        """Every live entry within ``radius`` bits of each query (``queries``: (Q, 4) or (Q, 32))."""
        q = _check_queries(queries, 2)
        snap = self.snapshot()
        qi, entry, ids, d = self._search_snapshot(snap, q, _check_radius(radius))
        order = np.lexsort((ids, d, qi))
        return Matches(qi[order], ids[order], d[order])

    def search_dihedral(self, variants: np.ndarray, radius: int = 31) -> Matches:
        """Search the 8 dihedral variants of each query at once: ``variants`` is (Q, 8, 4) or (Q, 8, 32).

        An entry within ``radius`` of any variant is reported once per query, with the smallest
        distance over the variants and the variant that reached it.
        """
        v = _check_queries(variants, 3)
        nq, nv = v.shape[0], v.shape[1]
        snap = self.snapshot()
        qi, entry, ids, d = self._search_snapshot(snap, v.reshape(nq * nv, 4), _check_radius(radius))
        query, variant = np.divmod(qi, nv)
        order = np.lexsort((variant, d, entry, query))  # per (query, entry): closest variant first
        query, entry, ids, d, variant = query[order], entry[order], ids[order], d[order], variant[order]
        first = np.ones(len(query), dtype=bool)
        first[1:] = (query[1:] != query[:-1]) | (entry[1:] != entry[:-1])
        query, ids, d, variant = query[first], ids[first], d[first], variant[first]
        order = np.lexsort((ids, d, query))
        return Matches(query[order], ids[order], d[order], variant[order].astype(np.int8))

    def _search_snapshot(
        self, snap: Snapshot[MihSegment], q: np.ndarray, radius: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(query, entry, id, distance) over base and delta; ``entry`` tells entries apart."""
        base = snap.base.search(q, radius, self.threads)
        alive = snap.base_alive(base.pos)
        delta = snap.delta.search(q, radius, self.threads)
        return (
            np.concatenate([base.query[alive], delta.query]),
            np.concatenate([base.pos[alive], delta.pos + len(snap.base)]),
            np.concatenate([snap.base.ids[base.pos[alive]], snap.delta.ids[delta.pos]]),
            np.concatenate([base.distance[alive], delta.distance]),
        )

    # --- LiveIndex hooks -----------------------------------------------------------------------
    def _build_segment(self, keys: np.ndarray, ids: np.ndarray, *, base: bool) -> MihSegment:
        return MihSegment.build(keys, ids, self.layout if base else None, self.threads)

    def _check_keys(self, keys: np.ndarray) -> np.ndarray:
        words = as_words(keys)
        if words.ndim != 2:
            raise ValueError(f"hashes must be (N, 4) uint64 or (N, 32) uint8, got {np.shape(keys)}")
        return words

    def _no_keys(self) -> np.ndarray:
        return np.zeros((0, 4), np.uint64)

    @classmethod
    def _load_segment(cls, directory: Path, token: str, meta: dict[str, Any], mmap: bool) -> MihSegment:
        return MihSegment.load(directory, token, meta, mmap)

    def _params(self) -> dict[str, Any]:
        lay = self.layout
        if lay is None:
            return {"layout": None}
        if not np.array_equal(lay.bit_order, default_bit_order()):
            raise ValueError(
                "only layouts with the default bit order can be saved as the index's fixed layout"
            )
        return {"layout": {"m": lay.m, "b": lay.b, "addr_bits": lay.addr_bits}}

    @classmethod
    def _from_params(cls, params: dict[str, Any]) -> Self:
        lay = params.get("layout")
        layout = None if lay is None else MihLayout(lay["m"], lay["b"], lay["addr_bits"], default_bit_order())
        return cls(layout)


def _check_radius(radius: int) -> int:
    r = int(radius)
    if not 0 <= r <= MAX_RADIUS:
        raise ValueError(f"radius must be 0..{MAX_RADIUS}, got {radius}")
    return r


def _check_queries(queries: np.ndarray, ndim: int) -> np.ndarray:
    words = as_words(queries, "queries")
    if words.ndim != ndim:
        shape = "(Q, 4) or (Q, 32)" if ndim == 2 else "(Q, V, 4) or (Q, V, 32)"
        raise ValueError(f"queries must be {shape}, got {np.shape(queries)}")
    return words
