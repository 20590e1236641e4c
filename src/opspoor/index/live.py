"""Updates while serving: an immutable base segment, a small delta segment, and tombstones.

A :class:`Snapshot` is immutable. Readers take ``index.snapshot()`` (one attribute read, atomic
in Python) and search it; writers build a new snapshot under a lock and swap the reference, so a
reader sees either the state before or after a change, never half of one.

- ``add``: the new entries join the delta, whose segment is rebuilt (cost: the delta's size);
- ``remove(ids)``: every entry with one of these ids stops matching: base entries get a
  tombstone bit (the base is never touched), delta entries are dropped;
- ``merge``: builds a new base from the live entries. It runs without blocking readers or
  writers: writes made meanwhile are recorded and replayed on the new base before the swap.

The result of any sequence of adds, removes and merges equals a fresh build over the live
entries (property-tested).
"""

from __future__ import annotations

import threading
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Protocol, Self, TypeVar

import numpy as np

from opspoor.errors import IndexFileError
from opspoor.index import _files as F
from opspoor.index import _kernels as K


class Segment(Protocol):
    """What the live index needs of a segment (``MihSegment``, ``ExactSegment``)."""

    ids: np.ndarray
    token: str

    def __len__(self) -> int: ...

    def stored_keys(self) -> np.ndarray:
        """The keys in segment order (row ``i`` belongs to ``ids[i]``)."""
        ...

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays to save, by name."""
        ...

    def meta(self) -> dict[str, Any]:
        """JSON-able parameters needed to load the arrays again."""
        ...

    @property
    def nbytes(self) -> int: ...


S = TypeVar("S", bound=Segment)


@dataclass(frozen=True)
class Snapshot(Generic[S]):
    """One consistent state of a live index. Never modified; replaced as a whole."""

    base: S
    removed: np.ndarray | None  # packed bitmap (little bit order) over base positions, or None
    delta: S

    @property
    def live_count(self) -> int:
        dead = 0 if self.removed is None else int(np.bitwise_count(self.removed).sum())
        return len(self.base) - dead + len(self.delta)

    def base_alive(self, pos: np.ndarray) -> np.ndarray:
        """Mask of base positions without a tombstone."""
        if self.removed is None:
            return np.ones(pos.shape, dtype=bool)
        return ((self.removed[pos >> 3] >> (pos & 7).astype(np.uint8)) & 1) == 0

    def live_entries(self) -> tuple[np.ndarray, np.ndarray]:
        """(keys, ids) of every live entry: base without tombstones, then delta."""
        keep = self.base_alive(np.arange(len(self.base)))
        keys = np.concatenate([self.base.stored_keys()[keep], self.delta.stored_keys()])
        ids = np.concatenate([self.base.ids[keep], self.delta.ids])
        return keys, ids


class LiveIndex(ABC, Generic[S]):
    """Base + delta + tombstones, with merge, save and load. Subclasses say how to build segments."""

    kind: str  # manifest kind
    version: int  # on-disk version of the kind

    def __init__(self, snapshot: Snapshot[S]) -> None:
        self._snap = snapshot
        self._write_lock = threading.Lock()
        self._merge_lock = threading.Lock()
        # writes made while a merge builds, replayed on its result (None: no merge running)
        self._replay: list[Callable[[Snapshot[S]], Snapshot[S]]] | None = None

    # --- what a subclass provides ------------------------------------------------------------
    @abstractmethod
    def _build_segment(self, keys: np.ndarray, ids: np.ndarray, *, base: bool) -> S:
        """A segment over these entries; ``base`` for the large, merged one."""

    @abstractmethod
    def _check_keys(self, keys: np.ndarray) -> np.ndarray:
        """Keys in the canonical dtype/shape, or ``ValueError``."""

    @classmethod
    @abstractmethod
    def _load_segment(cls, directory: Path, token: str, meta: dict[str, Any], mmap: bool) -> S:
        """A segment saved by ``arrays()``/``meta()``."""

    @abstractmethod
    def _params(self) -> dict[str, Any]:
        """JSON-able build parameters of the index (saved in the manifest)."""

    @classmethod
    @abstractmethod
    def _from_params(cls, params: dict[str, Any]) -> Self:
        """An empty index with these parameters."""

    # --- state -------------------------------------------------------------------------------
    def snapshot(self) -> Snapshot[S]:
        """The current state; stays valid (and unchanged) while the index moves on."""
        return self._snap

    def __len__(self) -> int:
        """Number of live entries."""
        return self._snap.live_count

    @property
    def delta_size(self) -> int:
        """Entries added since the last merge: a service merges when this grows large."""
        return len(self._snap.delta)

    @property
    def nbytes(self) -> int:
        s = self._snap
        removed = 0 if s.removed is None else s.removed.nbytes
        return int(s.base.nbytes + s.delta.nbytes + removed)

    # --- updates -----------------------------------------------------------------------------
    def add(self, keys: np.ndarray, ids: np.ndarray) -> None:
        """Add entries (an id may repeat: all its entries match, and ``remove`` drops them all)."""
        keys = self._check_keys(keys)
        ids = _check_ids(ids, len(keys))
        with self._write_lock:
            self._snap = self._with_added(self._snap, keys, ids)
            if self._replay is not None:
                self._replay.append(lambda s: self._with_added(s, keys, ids))

    def remove(self, ids: np.ndarray) -> None:
        """Stop matching every entry that has one of these ids (unknown ids are ignored)."""
        ids = np.unique(np.asarray(ids, dtype=np.int64).reshape(-1))
        with self._write_lock:
            self._snap = self._with_removed(self._snap, ids)
            if self._replay is not None:
                self._replay.append(lambda s: self._with_removed(s, ids))

    def merge(self) -> None:
        """Fold the delta and tombstones into a new base. Safe to call from a background thread."""
        with self._merge_lock:
            with self._write_lock:
                start = self._snap
                self._replay = []
            try:
                keys, ids = start.live_entries()
                fresh: Snapshot[S] = Snapshot(
                    self._build_segment(keys, ids, base=True), None, self._empty_delta()
                )
            except BaseException:
                with self._write_lock:
                    self._replay = None
                raise
            with self._write_lock:
                for replay in self._replay:
                    fresh = replay(fresh)
                self._replay = None
                self._snap = fresh

    def start_merge(self) -> threading.Thread:
        """Run :meth:`merge` in a background thread (searches and writes go on meanwhile)."""
        thread = threading.Thread(target=self.merge, name=f"{self.kind}-index-merge", daemon=True)
        thread.start()
        return thread

    def _empty_delta(self) -> S:
        return self._build_segment(self._check_keys(self._no_keys()), np.zeros(0, np.int64), base=False)

    @abstractmethod
    def _no_keys(self) -> np.ndarray:
        """An empty key array of the right shape."""

    def _with_added(self, snap: Snapshot[S], keys: np.ndarray, ids: np.ndarray) -> Snapshot[S]:
        if len(ids) == 0:
            return snap
        dk = np.concatenate([snap.delta.stored_keys(), keys])
        di = np.concatenate([snap.delta.ids, ids])
        return Snapshot(snap.base, snap.removed, self._build_segment(dk, di, base=False))

    def _with_removed(self, snap: Snapshot[S], ids: np.ndarray) -> Snapshot[S]:
        removed = snap.removed
        hit = _positions_of_ids(snap.base, ids)
        if len(hit):
            removed = (
                np.zeros((len(snap.base) + 7) // 8, dtype=np.uint8) if removed is None else removed.copy()
            )
            np.bitwise_or.at(removed, hit >> 3, (1 << (hit & 7)).astype(np.uint8))
        delta = snap.delta
        drop = np.isin(delta.ids, ids)
        if drop.any():
            delta = self._build_segment(delta.stored_keys()[~drop], delta.ids[~drop], base=False)
        return Snapshot(snap.base, removed, delta)

    # --- persistence -------------------------------------------------------------------------
    def save(self, directory: str | Path) -> None:
        """Write the current state to ``directory`` (created if needed). One writer per directory.

        The base is written once per build: saving again after adds and removes writes only the
        delta and tombstones.
        """
        d = Path(directory)
        snap = self._snap
        F.write_arrays(d, snap.base.token, snap.base.arrays())
        delta_token = F.new_token()
        state = {"delta_keys": snap.delta.stored_keys(), "delta_ids": snap.delta.ids}
        if snap.removed is not None:
            state["removed"] = snap.removed
        F.write_arrays(d, delta_token, state)
        F.write_manifest(
            d,
            {
                "kind": self.kind,
                "version": self.version,
                "params": self._params(),
                "base_token": snap.base.token,
                "base": snap.base.meta(),
                "delta_token": delta_token,
                "has_removed": snap.removed is not None,
                "counts": {"base": len(snap.base), "delta": len(snap.delta), "live": snap.live_count},
            },
        )

    @classmethod
    def load(cls, directory: str | Path, mmap: bool = True) -> Self:
        """Open a saved index; with ``mmap`` the base arrays are memory-mapped, not read."""
        d = Path(directory)
        man = F.read_manifest(d, cls.kind, cls.version)
        try:
            base = cls._load_segment(d, man["base_token"], man["base"], mmap)
            tok = man["delta_token"]
            dkeys = F.read_array(d, tok, "delta_keys", mmap=False)
            dids = F.read_array(d, tok, "delta_ids", mmap=False)
            removed = F.read_array(d, tok, "removed", mmap=False) if man["has_removed"] else None
            counts = man["counts"]
            params = man["params"]
        except (KeyError, TypeError) as exc:
            raise IndexFileError(f"manifest lacks {exc}", where=str(d / F.MANIFEST)) from None
        if len(base) != counts["base"] or len(dids) != counts["delta"]:
            raise IndexFileError("array sizes differ from the manifest's counts", where=str(d))
        if removed is not None:
            F.check_shape(removed, ((len(base) + 7) // 8,), np.uint8, d)
        index = cls._from_params(params)
        delta = index._build_segment(index._check_keys(dkeys), _check_ids(dids, len(dkeys)), base=False)
        index._snap = Snapshot(base, removed, delta)
        return index


#: per base segment, the permutation that sorts its ids (uint32, 4 bytes a hash), made at the
#: first removal: then a removal costs a binary search per id instead of a pass over all ids
_ID_ORDER: weakref.WeakKeyDictionary[Any, np.ndarray] = weakref.WeakKeyDictionary()


def _positions_of_ids(segment: Segment, ids: np.ndarray) -> np.ndarray:
    order = _ID_ORDER.get(segment)
    if order is None:
        order = np.argsort(segment.ids).astype(np.uint32)
        _ID_ORDER[segment] = order
    return np.sort(K.positions_of_ids(segment.ids, order, ids))


def _check_ids(ids: np.ndarray, n: int) -> np.ndarray:
    ids = np.ascontiguousarray(ids, dtype=np.int64).reshape(-1)
    if ids.shape != (n,):
        raise ValueError(f"{n} keys but {ids.shape[0]} ids")
    return ids
