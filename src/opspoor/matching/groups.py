"""The indexes over the values of hash sets, and how a batch of queries is looked up in them.

An index group holds an exact index per signal found by equal value (``signals.exact_widths``:
md5, sha1, sha256, a plugin's), a Hamming index over every PDQ value
(augmentation hashes included), one over the low-quality augmentation hashes (``pdq_lq``), and a
Hamming index over the unique good frames of known videos. A PDQ hit counts within the query hash's
own cap (a low-quality query hash) and ``LOW_QUALITY_DISTANCE`` (a low-quality known hash); a video
hit when the share of the query video's unique frames that find a partner reaches ``VIDEO_SHARE``.
Sets built with their originals' local features (``local`` values) get a local-feature index too:
an image that nothing else matched is matched by its own local features (``signals.local``: enough
patches agreeing on one geometry), which finds crops that are not centred.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from opspoor.errors import IndexFileError
from opspoor.index import ExactIndex, HammingIndex
from opspoor.index.cache import write_folder
from opspoor.matching.query import Query
from opspoor.signals import exact_widths
from opspoor.signals.local import LocalFeatures, LocalIndex, LocalMatch, local_distance
from opspoor.signals.pdq import PDQ
from opspoor.signals.robust import LOW_QUALITY_DISTANCE
from opspoor.store import Store, load_signal_arrays, load_signal_texts
from opspoor.store.hashsets import hex_rows

VIDEO_SHARE = 0.8
VIDEO_FRAME_DISTANCE = 31
#: the derived signal of an entry's low-quality augmentation hashes: matched only within
#: ``LOW_QUALITY_DISTANCE`` (flat pictures hash alike)
PDQ_LOW_QUALITY = "pdq_lq"
#: the derived signal of an original's local features (signals.local)
LOCAL = "local"
#: threads that look images up by their local features at once (against a large set these
#: lookups, not the hashing in the worker processes, set a scan's pace: bench/local.py)
LOCAL_THREADS = os.cpu_count() or 1


#: bytes of a PDQ value (from the signal registry): four 64-bit words
PDQ_BYTES = (PDQ.hex_length or 0) // 2


def pdq_words(values: Sequence[str]) -> np.ndarray:
    """PDQ hex → (N, 4) uint64 in the byte layout the store hands the index (any fixed layout keeps
    Hamming distances; both sides must use the same one)."""
    return np.ascontiguousarray(hex_rows(values, PDQ_BYTES)).view(np.uint64).reshape(-1, 4)


#: the file of a cached group that maps frame rows to entries (written last: the group is whole)
FRAME_ENTRY = "frame_entry.npy"


@dataclass(slots=True)
class _Prepared:
    """A batch of queries as index keys, converted once for every index group."""

    exact: dict[str, tuple[np.ndarray, np.ndarray]]  # signal -> (query number, keys)
    pdq_owner: list[int]
    pdq_methods: list[str]
    pdq_caps: list[int]  # the largest distance each hash may match at (64: no cap of its own)
    pdq: np.ndarray  # (N, 4) uint64 words
    frames: list[tuple[int, np.ndarray]]  # (query number, words of its unique frames)
    local: dict[int, LocalFeatures] = field(default_factory=dict)  # query number -> its features

    @classmethod
    def of(cls, queries: Sequence[Query]) -> _Prepared:
        exact = {}
        for sig, nbytes in exact_widths().items():
            rows = [(qi, q.exact[sig]) for qi, q in enumerate(queries) if sig in q.exact]
            if rows:
                qidx = np.array([r[0] for r in rows], np.int64)
                exact[sig] = (qidx, hex_rows([r[1] for r in rows], nbytes))
        owner = [qi for qi, q in enumerate(queries) for _ in q.pdq]
        values = [v[0] for q in queries for v in q.pdq]
        methods = [v[1] for q in queries for v in q.pdq]
        caps = [v[2] if len(v) > 2 else 64 for q in queries for v in q.pdq]  # type: ignore[misc]
        frames = [(qi, pdq_words(q.vpdq_frames)) for qi, q in enumerate(queries) if q.vpdq_frames]
        local = {qi: LocalFeatures.decode(q.local) for qi, q in enumerate(queries) if q.local}
        return cls(exact, owner, methods, caps, pdq_words(values), frames, local)


#: ``hit(query number, entry id, signal, distance, method, inliers of a local-feature match)``
HitFn = Callable[[int, int, str, int, str | None, int | None], None]


@dataclass(slots=True)
class IndexGroup:
    """The indexes over the values of one or more hash sets: an exact index per signal found by
    equal value, a Hamming index over every PDQ value, one over the low-quality augmentation hashes
    (matched within ``LOW_QUALITY_DISTANCE`` only), and one over the video frames (indexed by row:
    ``frame_entry[row]`` is the entry whose frame it is)."""

    #: signal -> its exact index, for each signal of the registry found by equal value
    exact: dict[str, ExactIndex | None] = field(default_factory=lambda: dict.fromkeys(exact_widths()))
    pdq: HammingIndex | None = None
    pdq_lq: HammingIndex | None = None
    frames: HammingIndex | None = None
    frame_entry: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    frame_count: dict[int, int] = field(default_factory=dict)  # entry id -> its frame rows
    local: LocalIndex | None = None  # the originals' local features (sets built with --augment)

    @classmethod
    def build(cls, store: Store, names: Sequence[str], tenant: str) -> IndexGroup:
        """Read the sets' values from the store and index them."""
        group = cls()
        for sig in group.exact:
            ids, keys = load_signal_arrays(store, names, sig, tenant=tenant)
            group.exact[sig] = ExactIndex.build(keys, ids) if len(ids) else None
        ids, vals = load_signal_arrays(store, names, "pdq", tenant=tenant)
        if len(ids):
            group.pdq = HammingIndex.build(np.ascontiguousarray(vals).view(np.uint64).reshape(-1, 4), ids)
        ids, vals = load_signal_arrays(store, names, PDQ_LOW_QUALITY, tenant=tenant)
        if len(ids):
            words = np.ascontiguousarray(vals).view(np.uint64).reshape(-1, 4)
            group.pdq_lq = HammingIndex.build(words, ids)
        ids, vals = load_signal_arrays(store, names, "vpdq", tenant=tenant)
        if len(ids):
            words = np.ascontiguousarray(vals).view(np.uint64).reshape(-1, 4)
            group.frames = HammingIndex.build(words, np.arange(len(ids), dtype=np.int64))
        group._set_frame_entry(ids)
        ids, texts = load_signal_texts(store, names, LOCAL, tenant=tenant)
        if len(ids):
            group.local = LocalIndex([LocalFeatures.decode(t) for t in texts], ids)
        return group

    def _set_frame_entry(self, ids: np.ndarray) -> None:
        self.frame_entry = ids
        self.frame_count = (
            {int(e): int(n) for e, n in zip(*np.unique(ids, return_counts=True), strict=True)}
            if len(ids)
            else {}
        )

    def parts(self) -> dict[str, ExactIndex | HammingIndex | None]:
        return {**self.exact, "pdq": self.pdq, PDQ_LOW_QUALITY: self.pdq_lq, "frames": self.frames}

    def sizes(self) -> dict[str, int]:
        out = {s: len(ix) if ix is not None else 0 for s, ix in self.exact.items()}
        # (the low-quality augmentation hashes count as PDQ values)
        out["pdq"] = sum(len(ix) for ix in (self.pdq, self.pdq_lq) if ix is not None)
        out["vpdq_frames"] = len(self.frame_entry)
        out[LOCAL] = len(np.unique(self.local.owner)) if self.local is not None else 0
        return out

    def save(self, folder: Path) -> None:
        """Write the indexes as flat files into ``folder`` (which must not exist yet), owner-only
        and all at once (``index.cache.write_folder``)."""
        write_folder(folder, self._write)

    def _write(self, folder: Path) -> None:
        for name, index in self.parts().items():
            if index is not None:
                index.save(folder / name)
        if self.local is not None:
            self.local.save(folder / LOCAL)
        np.save(folder / FRAME_ENTRY, self.frame_entry)

    @classmethod
    def load(cls, folder: Path) -> IndexGroup:
        """Memory-map a saved group. Raises ``IndexFileError`` when it is missing or damaged."""
        if not (folder / FRAME_ENTRY).is_file():
            raise IndexFileError("no cached index here", where=str(folder))
        try:
            group = cls()
            for sig in group.exact:
                group.exact[sig] = ExactIndex.load(folder / sig) if (folder / sig).exists() else None
            group.pdq = HammingIndex.load(folder / "pdq") if (folder / "pdq").exists() else None
            lq = folder / PDQ_LOW_QUALITY
            group.pdq_lq = HammingIndex.load(lq) if lq.exists() else None
            group.frames = HammingIndex.load(folder / "frames") if (folder / "frames").exists() else None
            group.local = LocalIndex.load(folder / LOCAL) if (folder / LOCAL).exists() else None
            frame_entry = np.load(folder / FRAME_ENTRY, allow_pickle=False)
        except (OSError, ValueError, KeyError, TypeError) as exc:  # a damaged manifest or array
            raise IndexFileError(f"cached index unreadable: {exc}", where=str(folder)) from None
        if frame_entry.dtype != np.int64 or frame_entry.ndim != 1:
            raise IndexFileError("cached index: frame_entry is not int64 (N,)", where=str(folder))
        if len(frame_entry) != (len(group.frames) if group.frames is not None else 0):
            raise IndexFileError("cached index: frame rows do not match the frame index", where=str(folder))
        group._set_frame_entry(frame_entry)
        return group

    def find(self, prepared: _Prepared, radius: int, hit: HitFn) -> None:
        """Report every hit of the prepared queries in this group (PDQ within ``radius``)."""
        for sig, (qidx, keys) in prepared.exact.items():
            index = self.exact.get(sig)
            if index is None:
                continue
            exact = index.lookup(keys)
            for a, eid in zip(exact.query_idx.tolist(), exact.ids.tolist(), strict=True):
                hit(int(qidx[a]), int(eid), sig, 0, None, None)

        for hamming, limit in ((self.pdq, radius), (self.pdq_lq, min(radius, LOW_QUALITY_DISTANCE))):
            if hamming is not None and len(prepared.pdq):
                self._find_pdq(hamming, prepared, limit, hit)

        if self.frames is not None:
            for qi, words in prepared.frames:
                self._find_video(qi, words, hit)

    @staticmethod
    def _find_pdq(index: HammingIndex, prepared: _Prepared, radius: int, hit: HitFn) -> None:
        found = index.search(prepared.pdq, radius=radius)
        owner, methods, caps = prepared.pdq_owner, prepared.pdq_methods, prepared.pdq_caps
        rows = zip(found.query_idx.tolist(), found.ids.tolist(), found.distances.tolist(), strict=True)
        for a, eid, d in rows:
            if d <= caps[a]:  # a low-quality query hash matches only that close
                hit(owner[a], int(eid), "pdq", int(d), None if methods[a] == "pdq" else methods[a], None)

    def find_local(self, prepared: _Prepared, queries: Sequence[int], hit: HitFn) -> None:
        """Report the originals the local features of ``queries`` (query numbers) show; the
        lookups run on one thread per core (OpenCV releases the GIL; 30-700 ms each)."""
        index = self.local
        if index is None or not queries:
            return
        index.warm_up()

        def look_up(qi: int) -> list[LocalMatch]:
            return index.match(prepared.local[qi])

        with ThreadPoolExecutor(min(LOCAL_THREADS, len(queries))) as pool:
            for qi, found in zip(queries, pool.map(look_up, queries), strict=True):
                for m in found:
                    method = f"{LOCAL}/mirror" if m.mirrored else LOCAL
                    hit(qi, m.owner, LOCAL, local_distance(m.inliers), method, m.inliers)

    def _find_video(self, qi: int, words: np.ndarray, hit: HitFn) -> None:
        assert self.frames is not None
        found = self.frames.search(words, radius=VIDEO_FRAME_DISTANCE)
        # read after the search: the service adds a video's rows to frame_entry before its frames
        entries = self.frame_entry[found.ids]
        matched_q: dict[int, set[int]] = defaultdict(set)
        matched_t: dict[int, set[int]] = defaultdict(set)
        for a, row, eid in zip(found.query_idx.tolist(), found.ids.tolist(), entries.tolist(), strict=True):
            matched_q[eid].add(a)
            matched_t[eid].add(row)
        for eid, qs in matched_q.items():
            q_share = len(qs) / len(words)
            if q_share >= VIDEO_SHARE:
                t_share = len(matched_t[eid]) / self.frame_count[eid]
                hit(qi, eid, "vpdq", round(100 * (1 - min(q_share, t_share))), None, None)
