"""Match file signals against hash sets: the one matcher behind ``opspoor match``, the scan and the service.

Hash sets are loaded from the store once into in-memory indexes: an exact index per
cryptographic signal, a Hamming index over every PDQ value (augmentation hashes included), one
over the low-quality augmentation hashes (``pdq_lq``), and a Hamming index over the unique good
frames of known videos. A PDQ hit counts when its distance is within the matching set's own
distance, and within the query hash's own cap (a low-quality query hash) and
``LOW_QUALITY_DISTANCE`` (a low-quality known hash); a video hit when the share of the query
video's unique frames that find a partner reaches ``video_share``. Sets built with their originals'
local features (``local`` values) get a local-feature index too: an image that nothing else
matched is matched by its own local features (``signals.local``: enough patches agreeing on one
geometry), which finds crops that are not centred.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from platformdirs import user_cache_dir

from opspoor.errors import IndexFileError
from opspoor.hashsets.model import Category
from opspoor.index import ExactIndex, HammingIndex
from opspoor.signals.engine import FileSignals
from opspoor.signals.local import MIN_INLIERS, LocalFeatures, LocalIndex, LocalMatch, local_distance
from opspoor.signals.robust import LOW_QUALITY_DISTANCE
from opspoor.signals.vpdq import QUALITY_THRESHOLD
from opspoor.store import (
    EntryRef,
    HashSetRecord,
    Store,
    entry_details,
    get_hashset,
    load_signal_arrays,
    load_signal_texts,
)
from opspoor.store.hashsets import hex_rows, last_changes

EXACT_SIGNALS = ("md5", "sha1", "sha256")
#: a PDQ of lower quality is unreliable (flat images match each other); it is not matched
MIN_PDQ_QUALITY = 50
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

#: a PDQ to look up: (hash, method), or (hash, method, max distance) for a low-quality hash
PdqLookup = tuple[str, str] | tuple[str, str, int]

log = logging.getLogger(__name__)


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
    #: local features: the patches that agree on one geometry, which is what decided the match
    #: (``distance`` is then only their place on PDQ's scale, for ordering: signals.local)
    inliers: int | None = None

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
        if self.inliers is not None:  # a Hamming distance is meaningless here: say what decided it
            del out["distance"]
            out["inliers"] = self.inliers
            out["min_inliers"] = MIN_INLIERS
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
    pdq: list[PdqLookup] = field(default_factory=list)  # (hash, method[, max distance])
    vpdq_frames: list[str] = field(default_factory=list)  # unique frame hashes of quality >= 50
    local: str | None = None  # the image's local features, encoded (HashOptions.local)

    @classmethod
    def from_file_signals(cls, sig: FileSignals) -> Query:
        """What a hashed file is matched by: its digests, its PDQ (and robust variants) when
        reliable, its video's good frames."""
        q = cls(md5=sig.md5, sha1=sig.sha1, sha256=sig.sha256, local=sig.local)
        if sig.pdq:
            q.pdq = pdq_lookups(sig.pdq, sig.quality or 0, sig.pdq_variants or [])
        if sig.vpdq_frames:
            q.vpdq_frames = list(
                dict.fromkeys(f.hash for f in sig.vpdq_frames if f.quality >= QUALITY_THRESHOLD)
            )
        return q

    @classmethod
    def from_signals(cls, sig: dict[str, Any]) -> Query:
        """From a scan/hash JSON record (md5, sha1, sha256, pdq, pdq_quality, vpdq_frames, pdq_variants)."""
        q = cls(md5=sig.get("md5"), sha1=sig.get("sha1"), sha256=sig.get("sha256"), local=sig.get("local"))
        if sig.get("pdq"):
            variants: list[PdqLookup] = [tuple(v) for v in sig.get("pdq_variants") or []]  # type: ignore[misc]
            q.pdq = pdq_lookups(sig["pdq"], sig.get("pdq_quality") or 0, variants)
        frames = []
        for line in sig.get("vpdq_frames") or []:
            parts = line.split(",")
            if len(parts) >= 3 and int(parts[1]) >= QUALITY_THRESHOLD:
                frames.append(parts[2])
        q.vpdq_frames = list(dict.fromkeys(frames))
        return q


def pdq_lookups(pdq: str, quality: int, variants: Sequence[PdqLookup]) -> list[PdqLookup]:
    """The PDQ hashes one image is looked up by, as (hash, method[, max distance]).

    The image's own hash and its turns (``dihedral/...``) hold the same pixels, so they are looked
    up only when its quality is reliable. Region variants (a border-trimmed or embedded picture)
    were gated on their own quality when they were made (or capped at a tighter distance), so they
    count even when the whole image's hash does not: a flat pad around a picture lowers the whole
    image's quality.
    """
    if quality >= MIN_PDQ_QUALITY:
        return [(pdq, "pdq"), *variants]
    return [v for v in variants if not v[1].startswith("dihedral")]


def pdq_words(values: Sequence[str]) -> np.ndarray:
    """PDQ hex → (N, 4) uint64 in the byte layout the store hands the index (any fixed layout keeps
    Hamming distances; both sides must use the same one)."""
    return np.ascontiguousarray(hex_rows(values, 32)).view(np.uint64).reshape(-1, 4)


#: bump when the cached index layout changes
CACHE_VERSION = 4
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
        for sig, nbytes in (("md5", 16), ("sha1", 20), ("sha256", 32)):
            rows = [(qi, getattr(q, sig)) for qi, q in enumerate(queries) if getattr(q, sig)]
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
    """The indexes over the values of one or more hash sets: an exact index per cryptographic
    signal, a Hamming index over every PDQ value, one over the low-quality augmentation hashes
    (matched within ``LOW_QUALITY_DISTANCE`` only), and one over the video frames (indexed by row:
    ``frame_entry[row]`` is the entry whose frame it is)."""

    exact: dict[str, ExactIndex | None] = field(default_factory=lambda: dict.fromkeys(EXACT_SIGNALS))
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
        for sig in EXACT_SIGNALS:
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
        and all at once: they are written beside it and the finished folder is renamed into place.

        (Modes are set file by file, not by the umask: the umask belongs to the whole process,
        and a scan loads its indexes in a thread while the main thread writes the case.)
        """
        tmp = folder.with_name(f"{folder.name}.tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            _private_dirs(tmp)
            for name, index in self.parts().items():
                if index is not None:
                    index.save(tmp / name)
            if self.local is not None:
                self.local.save(tmp / LOCAL)
            np.save(tmp / FRAME_ENTRY, self.frame_entry)
            for path in tmp.rglob("*"):
                path.chmod(0o700 if path.is_dir() else 0o600)
            os.replace(tmp, folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    @classmethod
    def load(cls, folder: Path) -> IndexGroup:
        """Memory-map a saved group. Raises ``IndexFileError`` when it is missing or damaged."""
        if not (folder / FRAME_ENTRY).is_file():
            raise IndexFileError("no cached index here", where=str(folder))
        try:
            group = cls()
            for sig in EXACT_SIGNALS:
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
            index = self.exact[sig]
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


def _private_dirs(path: Path) -> None:
    """Create ``path`` and its missing parents, owner-only (folders that exist are left alone)."""
    for folder in reversed([path, *path.parents]):
        if not folder.exists():
            folder.mkdir(mode=0o700, exist_ok=True)


# --- the index cache: one folder per hash set, one subfolder per state of the set ------------------
def cache_root() -> Path:
    """``$OPSPOOR_CACHE/index``, else the user's cache folder."""
    return Path(os.environ.get("OPSPOOR_CACHE") or user_cache_dir("opspoor")) / "index"


def set_cache_dir(store: Store, rec: HashSetRecord) -> Path:
    """The folder of one hash set's cached indexes: the set is named by the store, its tenant, id
    and creation time (a set removed and created again under its name gets a new folder)."""
    key = json.dumps([CACHE_VERSION, store.url, rec.tenant, rec.id, str(rec.created_at)])
    return cache_root() / hashlib.sha256(key.encode()).hexdigest()[:32]


def index_cache_dir(store: Store, rec: HashSetRecord, last_change: int | None = None) -> Path:
    """Where the indexes of the set are cached in the state after its change ``last_change``
    (by default its newest change in the store's change log)."""
    if last_change is None:
        last_change = last_changes(store, [rec.id])[rec.id]
    return set_cache_dir(store, rec) / str(last_change)


def _remove_older(folder: Path) -> None:
    """Delete the set's cache folders of earlier states, and unfinished ones of processes gone.
    (A process still mapping a deleted file keeps reading it.)"""
    for other in folder.parent.iterdir():
        if _stale(other.name, int(folder.name)):
            shutil.rmtree(other, ignore_errors=True)


def _stale(name: str, current: int) -> bool:
    """Whether a set's cache folder ``STATE`` or ``STATE.tmpPID`` (unfinished) can go."""
    state, _, pid = name.partition(".tmp")
    if not state.isdigit():
        return False
    if pid:
        return pid.isdigit() and not _alive(int(pid))
    return int(state) < current


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process
    return True


def load_set_index(store: Store, rec: HashSetRecord, last_change: int) -> IndexGroup:
    """The set's indexes: mapped from its cache folder, or built from the store and cached.

    ``last_change`` must be read before the values (a change made meanwhile then only makes this
    cache stale, never wrong). A damaged cache is deleted and rebuilt; a cache that cannot be
    written only costs the next command the build again.
    """
    folder = index_cache_dir(store, rec, last_change)
    try:
        return IndexGroup.load(folder)
    except IndexFileError as exc:
        if folder.exists():
            log.warning("rebuilding the cached index of %r: %s", rec.name, exc)
            shutil.rmtree(folder, ignore_errors=True)
    group = IndexGroup.build(store, [rec.name], rec.tenant)
    try:
        group.save(folder)
    except OSError as exc:
        if not folder.is_dir():  # (another process may have cached the same state first)
            log.warning("index cache of %r not written: %s", rec.name, exc)
        return group
    _remove_older(folder)
    return group


def build_index_cache(store: Store, name: str, *, tenant: str = "default") -> IndexGroup:
    """Cache the indexes of a set as it is now (right after an import), so that the next scan or
    match maps them instead of reading the set from the store."""
    rec = get_hashset(store, name, tenant=tenant)
    return load_set_index(store, rec, last_changes(store, [rec.id])[rec.id])


def drop_index_cache(store: Store, rec: HashSetRecord) -> None:
    """Delete every cached index of a set (it was removed from the store)."""
    shutil.rmtree(set_cache_dir(store, rec), ignore_errors=True)


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

    # the indexes of the one all-sets group (uncached), which the service's live matcher updates
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
    def has_local(self) -> bool:
        """Whether any loaded set holds its originals' local features."""
        return any(g.local is not None for g in self.groups.values())

    @property
    def size(self) -> dict[str, int]:
        out = dict.fromkeys((*EXACT_SIGNALS, "pdq", "vpdq_frames", LOCAL), 0)
        for group in self.groups.values():
            for sig, n in group.sizes().items():
                out[sig] += n
        return out

    def _refs(self, ids: set[int]) -> dict[int, EntryRef]:
        missing = [i for i in ids if i not in self._details]
        if missing:
            self._details.update(entry_details(self.store, missing))
        return {i: self._details[i] for i in ids if i in self._details}

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

        refs = self._refs({eid for per_query in hits for eid, _ in per_query})
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
