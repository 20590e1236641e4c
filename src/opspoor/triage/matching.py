"""Match file signals against hash sets: the one matcher behind ``opspoor match``, the scan and the service.

Hash sets are loaded from the store once into in-memory indexes: an exact index per
cryptographic signal, a Hamming index over every PDQ value (augmentation hashes included), and
a Hamming index over the unique good frames of known videos. A PDQ hit counts when its distance
is within the matching set's own distance; a video hit when the share of the query video's
unique frames that find a partner reaches ``video_share``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from platformdirs import user_cache_dir
from sqlalchemy import func, select

from opspoor.errors import IndexFileError
from opspoor.hashsets.model import Category
from opspoor.index import ExactIndex, HammingIndex
from opspoor.signals.engine import FileSignals
from opspoor.signals.vpdq import QUALITY_THRESHOLD
from opspoor.store import EntryRef, HashSetRecord, Store, entry_details, get_hashset, load_signal_arrays
from opspoor.store.hashsets import hex_rows
from opspoor.store.models import ChangeRow
from opspoor.triage.case import owner_only

EXACT_SIGNALS = ("md5", "sha1", "sha256")
#: a PDQ of lower quality is unreliable (flat images match each other); it is not matched
MIN_PDQ_QUALITY = 50
VIDEO_SHARE = 0.8
VIDEO_FRAME_DISTANCE = 31


@dataclass(frozen=True, slots=True)
class Match:
    hashset: str
    kind: str  # known | ignorable
    entry_id: int
    external_id: str | None
    signal: str
    distance: int
    category: Category | None
    method: str | None = None  # which query hash hit (dihedral variant, border removal, ...)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "hashset": self.hashset,
            "kind": self.kind,
            "entry_id": self.entry_id,
            "external_id": self.external_id,
            "signal": self.signal,
            "distance": self.distance,
            "category": {"scheme": self.category.scheme, "code": self.category.code}
            if self.category
            else None,
        }
        if self.method:
            out["method"] = self.method
        return out


@dataclass(slots=True)
class Query:
    """What is known about one input: any of its signals. ``pdq`` may hold several hashes
    (the file's own and the robust query variants), each with a method label."""

    md5: str | None = None
    sha1: str | None = None
    sha256: str | None = None
    pdq: list[tuple[str, str]] = field(default_factory=list)  # (hash, method)
    vpdq_frames: list[str] = field(default_factory=list)  # unique frame hashes of quality >= 50

    @classmethod
    def from_file_signals(cls, sig: FileSignals) -> Query:
        """What a hashed file is matched by: its digests, its PDQ (and robust variants) when
        reliable, its video's good frames."""
        q = cls(md5=sig.md5, sha1=sig.sha1, sha256=sig.sha256)
        if sig.pdq and (sig.quality or 0) >= MIN_PDQ_QUALITY:
            q.pdq.append((sig.pdq, "pdq"))
            q.pdq.extend(sig.pdq_variants or [])
        if sig.vpdq_frames:
            q.vpdq_frames = list(
                dict.fromkeys(f.hash for f in sig.vpdq_frames if f.quality >= QUALITY_THRESHOLD)
            )
        return q

    @classmethod
    def from_signals(cls, sig: dict[str, Any]) -> Query:
        """From a scan/hash JSON record (md5, sha1, sha256, pdq, pdq_quality, vpdq_frames, pdq_variants)."""
        q = cls(md5=sig.get("md5"), sha1=sig.get("sha1"), sha256=sig.get("sha256"))
        if sig.get("pdq") and (sig.get("pdq_quality") or 0) >= MIN_PDQ_QUALITY:
            q.pdq.append((sig["pdq"], "pdq"))
            for h, method in sig.get("pdq_variants") or []:
                q.pdq.append((h, method))
        frames = []
        for line in sig.get("vpdq_frames") or []:
            parts = line.split(",")
            if len(parts) >= 3 and int(parts[1]) >= QUALITY_THRESHOLD:
                frames.append(parts[2])
        q.vpdq_frames = list(dict.fromkeys(frames))
        return q


def pdq_words(values: Sequence[str]) -> np.ndarray:
    """PDQ hex → (N, 4) uint64 in the byte layout the store hands the index (any fixed layout keeps
    Hamming distances; both sides must use the same one)."""
    return np.ascontiguousarray(hex_rows(values, 32)).view(np.uint64).reshape(-1, 4)


#: bump when the cached index layout changes
CACHE_VERSION = 1


def index_cache_dir(store: Store, sets: dict[str, HashSetRecord], tenant: str) -> Path:
    """Where the indexes of these sets, in the store's current state, are cached."""
    with store.read() as conn:
        last = conn.execute(select(func.max(ChangeRow.id))).scalar() or 0
    key = json.dumps(
        [
            CACHE_VERSION,
            store.url,
            tenant,
            sorted((s.id, s.name, str(s.created_at)) for s in sets.values()),
            last,
        ]
    )
    root = Path(os.environ.get("OPSPOOR_CACHE") or user_cache_dir("opspoor"))
    return root / "index" / hashlib.sha256(key.encode()).hexdigest()[:32]


class Matcher:
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

        With ``cache``, the built indexes are kept as flat files in the user's cache folder, keyed
        by the store, the sets and the last change in the store's change log, and memory-mapped by
        the next command instead of being read from the store again.
        """
        self.store = store
        self.tenant = tenant
        self.sets = {name: get_hashset(store, name, tenant=tenant) for name in hashsets}
        self.distance = {n: distance if distance is not None else s.distance for n, s in self.sets.items()}
        self.pdq_radius = max(self.distance.values(), default=31)
        self.exact: dict[str, ExactIndex | None] = {}
        self.pdq: HammingIndex | None = None
        self.frames: HammingIndex | None = None
        self.frame_entry = np.zeros(0, np.int64)
        folder = index_cache_dir(store, self.sets, tenant) if cache else None
        if folder is None or not self._load_cached(folder):
            self._build(list(self.sets), tenant)
            if folder is not None:
                self._save_cached(folder)
        # frames are indexed by row, so a hit says which frame of which video it found
        ids = self.frame_entry
        self.frame_count = dict(zip(*np.unique(ids, return_counts=True), strict=True)) if len(ids) else {}
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

    def _build(self, names: list[str], tenant: str) -> None:
        for sig in EXACT_SIGNALS:
            ids, keys = load_signal_arrays(self.store, names, sig, tenant=tenant)
            self.exact[sig] = ExactIndex.build(keys, ids) if len(ids) else None
        ids, vals = load_signal_arrays(self.store, names, "pdq", tenant=tenant)
        if len(ids):
            self.pdq = HammingIndex.build(np.ascontiguousarray(vals).view(np.uint64).reshape(-1, 4), ids)
        ids, vals = load_signal_arrays(self.store, names, "vpdq", tenant=tenant)
        self.frame_entry = ids
        if len(ids):
            words = np.ascontiguousarray(vals).view(np.uint64).reshape(-1, 4)
            self.frames = HammingIndex.build(words, np.arange(len(ids), dtype=np.int64))

    def _parts(self) -> dict[str, ExactIndex | HammingIndex | None]:
        return {**self.exact, "pdq": self.pdq, "frames": self.frames}

    def _save_cached(self, folder: Path) -> None:
        tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
        try:
            with owner_only():
                tmp.mkdir(parents=True, exist_ok=True)
                for name, index in self._parts().items():
                    if index is not None:
                        index.save(tmp / name)
                np.save(tmp / "frame_entry.npy", self.frame_entry)
            os.replace(tmp, folder)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)  # a cache that cannot be written is only slower

    def _load_cached(self, folder: Path) -> bool:
        if not (folder / "frame_entry.npy").exists():
            return False
        try:
            for sig in EXACT_SIGNALS:
                self.exact[sig] = ExactIndex.load(folder / sig) if (folder / sig).exists() else None
            self.pdq = HammingIndex.load(folder / "pdq") if (folder / "pdq").exists() else None
            self.frames = HammingIndex.load(folder / "frames") if (folder / "frames").exists() else None
            self.frame_entry = np.load(folder / "frame_entry.npy")
        except (OSError, ValueError, IndexFileError):
            shutil.rmtree(folder, ignore_errors=True)
            return False
        return True

    @property
    def size(self) -> dict[str, int]:
        out = {s: len(ix) if ix is not None else 0 for s, ix in self.exact.items()}
        out["pdq"] = len(self.pdq) if self.pdq is not None else 0
        out["vpdq_frames"] = len(self.frame_entry)
        return out

    def _refs(self, ids: set[int]) -> dict[int, EntryRef]:
        missing = [i for i in ids if i not in self._details]
        if missing:
            self._details.update(entry_details(self.store, missing))
        return {i: self._details[i] for i in ids if i in self._details}

    def match_queries(self, queries: Sequence[Query]) -> list[list[Match]]:
        # hits[qi] -> {(entry_id, signal): (distance, method)}
        hits: list[dict[tuple[int, str], tuple[int, str | None]]] = [{} for _ in queries]

        def hit(qi: int, eid: int, signal: str, dist: int, method: str | None = None) -> None:
            key = (eid, signal)
            old = hits[qi].get(key)
            if old is None or dist < old[0]:
                hits[qi][key] = (dist, method)

        for sig, nbytes in (("md5", 16), ("sha1", 20), ("sha256", 32)):
            index = self.exact[sig]
            if index is None:
                continue
            rows = [(qi, getattr(q, sig)) for qi, q in enumerate(queries) if getattr(q, sig)]
            if not rows:
                continue
            qidx = np.array([r[0] for r in rows], np.int64)
            exact = index.lookup(hex_rows([r[1] for r in rows], nbytes))
            for a, eid in zip(exact.query_idx.tolist(), exact.ids.tolist(), strict=True):
                hit(int(qidx[a]), int(eid), sig, 0)

        if self.pdq is not None:
            owner, hashes, methods = [], [], []
            for qi, q in enumerate(queries):
                for value, method in q.pdq:
                    owner.append(qi)
                    hashes.append(value)
                    methods.append(method)
            if hashes:
                found = self.pdq.search(pdq_words(hashes), radius=self.pdq_radius)
                for a, eid, d in zip(
                    found.query_idx.tolist(), found.ids.tolist(), found.distances.tolist(), strict=True
                ):
                    hit(owner[a], int(eid), "pdq", int(d), None if methods[a] == "pdq" else methods[a])

        if self.frames is not None:
            for qi, q in enumerate(queries):
                if not q.vpdq_frames:
                    continue
                found = self.frames.search(pdq_words(q.vpdq_frames), radius=VIDEO_FRAME_DISTANCE)
                entries = self.frame_entry[found.ids]
                matched_q: dict[int, set[int]] = defaultdict(set)
                matched_t: dict[int, set[int]] = defaultdict(set)
                for a, row, eid in zip(
                    found.query_idx.tolist(), found.ids.tolist(), entries.tolist(), strict=True
                ):
                    matched_q[eid].add(a)
                    matched_t[eid].add(row)
                for eid, qs in matched_q.items():
                    q_share = len(qs) / len(q.vpdq_frames)
                    if q_share >= VIDEO_SHARE:
                        t_share = len(matched_t[eid]) / self.frame_count[eid]
                        hit(qi, eid, "vpdq", round(100 * (1 - min(q_share, t_share))))

        refs = self._refs({eid for per_query in hits for eid, _ in per_query})
        out: list[list[Match]] = []
        for per_query in hits:
            ms = []
            for (eid, signal), (dist, how) in sorted(per_query.items(), key=lambda kv: (kv[1][0], kv[0])):
                ref = refs.get(eid)
                if ref is None:
                    continue  # removed from the store since the index was loaded
                if signal == "pdq" and dist > self.distance[ref.hashset]:
                    continue
                ms.append(Match(ref.hashset, ref.kind, eid, ref.external_id, signal, dist, ref.category, how))
            out.append(ms)
        return out

    def match_batch(self, signals: Sequence[dict[str, Any]]) -> list[list[dict[str, Any]]]:
        """Scan records in, JSON match lists out."""
        return [
            [m.to_json() for m in ms] for ms in self.match_queries([Query.from_signals(s) for s in signals])
        ]
