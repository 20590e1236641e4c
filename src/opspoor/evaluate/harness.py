"""The robustness evaluation: originals into a known set, edited copies and distractors as queries.

Protocol (issue 6):

1. A corpus of benign photos is deduplicated (same SHA-256, or any method's hashes within the
   threshold plus a margin; low-quality hashes within their tighter distance plus the margin),
   shuffled with the seed and split into originals and distractors.
2. Each original is hashed as a known item: its plain PDQ and its augmented hashes (tagged).
3. Each original goes through every transform of the suite; each copy is decoded like a scanned
   file and hashed with every query-side method (tagged). Each distractor is queried as it is
   and after a few random transforms; distractors are never in the known set.
4. For every query, every original and every pair of tags, the smallest Hamming distance is kept.
   A method is a choice of tags (``methods.METHODS``), so all methods are scored on the same hashes;
   the ``+lq`` methods count pairs with a low-quality hash ``threshold - low_quality_distance``
   bits further, so that those match only within their tighter distance. The ``+local`` methods
   also match local features (``signals.local``): each query against an index of the originals'
   features, every candidate checked by RANSAC; its inlier count becomes a distance on the same
   scale (``signals.local.local_distance``: ``MIN_INLIERS`` inliers sit at 31, each more one bit closer).
5. Per method and per transform: recall at the operating threshold; false matches (a query
   matched to a wrong original, any match of a distractor); and recall at precision >= 99.99 %,
   with the threshold chosen on one half of the originals (and distractors) and applied to the other.
   The threshold is chosen among those the product uses (0 to the operating threshold); the same
   with any threshold up to ``MAX_SWEEP`` is kept beside it (``*_any``), for information.

Distances are computed by vectorised brute force (XOR + popcount): corpus sizes of a few hundred
originals and some thousand queries take seconds, and the full distance distribution is needed
for the histograms and the threshold sweep anyway.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from opspoor.cachedir import cache_home
from opspoor.errors import OpspoorError, SourceError
from opspoor.evaluate.methods import (
    KNOWN_TAGS,
    LOW_K,
    LOW_Q,
    METHODS,
    QUERY_TAGS,
    Method,
    known_tag,
    query_tag,
)
from opspoor.evaluate.scoring import FAR, Scores, score_method
from opspoor.evaluate.transforms import apply_transform, default_suite, encode_bmp, select
from opspoor.media.image import Redecode, decode_with_detail, to_rgb
from opspoor.media.sniff import SNIFF_BYTES, sniff
from opspoor.signals.augment import DEFAULT_AUGMENT, AugmentPlan, augment_variants
from opspoor.signals.local import (
    MIN_SPREAD,
    LocalFeatures,
    LocalIndex,
    local_distance,
    local_features,
)
from opspoor.signals.pdq import hex_to_words
from opspoor.signals.robust import FLAT_QUALITY, LOW_QUALITY_DISTANCE, query_hashes


@dataclass
class EvalConfig:
    corpus: Path | None = None  # folder of photos; None: the benchmark corpus if cached, else generated
    benchmark: Path | None = None  # the benchmark corpus's folder; None: ``benchmark_corpus_dir()``
    generated: bool = False  # use generated images even if the benchmark corpus is there
    n: int = 200  # originals
    distractors: int = 100
    distractor_transforms: int = 3  # random transforms per distractor, besides the distractor as is
    seed: int = 0
    work_size: int = 1024  # originals are brought to fit work_size x work_size first
    threshold: int = 31  # the operating threshold
    dedup_margin: int = 10  # corpus pictures within threshold + margin (any method) are one picture
    target_precision: float = 0.9999
    min_quality: int = 50  # extra hashes (both sides) only at or above this PDQ quality ...
    low_quality_distance: int = LOW_QUALITY_DISTANCE  # ... or within this distance (methods "+lq")
    transforms: tuple[str, ...] = ()  # names or families; empty = the whole suite
    workers: int = 1
    augment: AugmentPlan = field(default_factory=lambda: DEFAULT_AUGMENT)
    local: bool = True  # also measure local features (the "+local" methods)


@dataclass(frozen=True)
class Picture:
    """One corpus item: a file, or a generated image (benign shapes, gradients, text)."""

    name: str
    path: str | None = None
    seed: int | None = None
    #: the file it was cut from, and whether it is a region of it (``bench/corpus.py`` cuts regions
    #: out of its largest photographs): a region and its whole photograph are one picture
    source: str | None = None
    region: bool = False


@dataclass
class Hashed:
    """Hashes of one corpus item: as a known original, and as queries (one list per query)."""

    known: list[tuple[str, int]]  # (hex, known tag)
    queries: list[list[tuple[str, int]]]  # per query: (hex, query tag)
    transforms: list[int]  # per query: index into the suite; -1 = the item as it is
    quality: int
    known_local: LocalFeatures | None = None  # an original's local features (with cfg.local)
    query_local: list[LocalFeatures] = field(default_factory=list)  # per query (with cfg.local)


# --------------------------------------------------------------------------------------------
# corpus


#: the benchmark corpus's folder, when it is not ``photos`` in the cache folder
CORPUS_ENV = "OPSPOOR_CORPUS"


def benchmark_corpus_dir() -> Path:
    """Where the benchmark corpus is looked for: ``$OPSPOOR_CORPUS``, else ``photos`` in the cache
    folder (``opspoor.cachedir``). ``bench/corpus.py`` builds it in the checkout's ``.cache/photos``
    and points the benchmarks there; the package never looks into a source tree by itself."""
    given = os.environ.get(CORPUS_ENV)
    return Path(given) if given else cache_home() / "photos"


def _manifest(folder: Path | None) -> tuple[Path, list[dict[str, Any]]]:
    """The corpus root (photo paths are relative to it) and the photos of ``folder/manifest.json``;
    no photos when there is no manifest. The root is the manifest's ``root``, relative to its folder."""
    folder = benchmark_corpus_dir() if folder is None else folder
    manifest = folder / "manifest.json"
    if not manifest.is_file():
        return folder, []
    meta = json.loads(manifest.read_text())
    return (folder / meta.get("root", ".")).resolve(), list(meta.get("photos", []))


def benchmark_photos(folder: Path | None = None) -> list[Path] | None:
    """The benchmark corpus of ``bench/corpus.py`` in ``folder`` (default
    :func:`benchmark_corpus_dir`) if it has been built (never downloads here)."""
    root, photos = _manifest(folder)
    paths = [root / p["path"] for p in photos]
    return [p for p in paths if p.is_file()] or None


def photo_sources(folder: Path | None = None) -> dict[Path, tuple[str, bool]]:
    """Per benchmark photo: the package file it comes from, and whether it is a region cut out of it."""
    root, photos = _manifest(folder)
    return {
        root / p["path"]: (f"{p.get('package')}:{p.get('source')}", p.get("crop") is not None) for p in photos
    }


def same_photograph(a: Picture, b: Picture) -> bool:
    """Whether one is a region cut out of the other (regions of one photograph do not overlap)."""
    return a.source is not None and a.source == b.source and (a.region != b.region or not a.region)


def folder_photos(folder: Path) -> list[Path]:
    """Image files under ``folder`` (by magic bytes), sorted."""
    if not folder.is_dir():
        raise SourceError("corpus folder not found", str(folder))
    out = []
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.is_symlink():
            with path.open("rb") as fh:
                if sniff(fh.read(SNIFF_BYTES)).kind == "image":
                    out.append(path)
    return out


def corpus_pictures(cfg: EvalConfig) -> tuple[list[Picture], str]:
    """The candidate pictures and a description of where they come from."""
    if cfg.corpus is not None:
        paths = folder_photos(cfg.corpus)
        return [Picture(str(p.relative_to(cfg.corpus)), str(p)) for p in paths], f"folder {cfg.corpus}"
    photos = None if cfg.generated else benchmark_photos(cfg.benchmark)
    if photos:
        root, sources = _manifest(cfg.benchmark)[0], photo_sources(cfg.benchmark)
        pics = [
            Picture(str(p.relative_to(root)), str(p), None, *sources.get(p, (None, False))) for p in photos
        ]
        return pics, "benchmark photo corpus (bench/corpus.py: benign photos from Debian packages)"
    # 40 % spare for the pictures deduplication drops
    count = int((cfg.n + cfg.distractors) * 1.4) + 10
    pics = [Picture(f"generated:{cfg.seed * 100_000 + i}", seed=cfg.seed * 100_000 + i) for i in range(count)]
    folder = benchmark_corpus_dir() if cfg.benchmark is None else cfg.benchmark
    why = "requested" if cfg.generated else f"no benchmark corpus in {folder} (python bench/corpus.py)"
    return pics, f"generated images (opspoor.demo.images; {why})"


def load_picture(pic: Picture, work_size: int) -> Image.Image:
    """The picture as RGB, brought to fit ``work_size`` (JPEGs decoded at a reduced DCT scale)."""
    if pic.path is None:
        from opspoor.demo.images import generate_image

        rng = np.random.default_rng(pic.seed)
        w, h = int(rng.integers(640, 1280)), int(rng.integers(480, 1024))
        img = generate_image(int(pic.seed or 0), w, h)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                with Image.open(pic.path) as im:
                    im.draft("RGB", (work_size, work_size))
                    img = to_rgb(im)
                    img.load()
            except Exception as exc:
                raise SourceError(f"cannot read picture: {exc}", pic.path) from None
    if max(img.size) > work_size:
        img.thumbnail((work_size, work_size), Image.Resampling.LANCZOS)
    return img


def canonical_pixels(data: bytes, where: str | None = None) -> tuple[np.ndarray, Redecode]:
    """The pixels PDQ hashes, by the same decoder as a scan, and the larger pictures its regions
    are hashed from (as the scan's worker has them)."""
    img, detail = decode_with_detail(data, where=where)
    return img.rgb, detail


@dataclass(frozen=True)
class Fingerprint:
    """What deduplication needs of a picture: its bytes' SHA-256, the hashes it would be looked up
    with (every query-side method) and the hashes it would be known by (plain and augmented)."""

    sha256: str
    probe: list[str]
    known: list[str]
    #: per probe (known) hash: made below min_quality, so it counts only within the tighter distance
    probe_low: list[bool] = field(default_factory=list)
    known_low: list[bool] = field(default_factory=list)
    local: LocalFeatures | None = None  # with cfg.local


def _fingerprint(args: tuple[Picture, EvalConfig]) -> Fingerprint | None:
    pic, cfg = args
    try:
        img = load_picture(pic, cfg.work_size)
    except OpspoorError:
        return None
    data = encode_bmp(img)
    rgb, detail = canonical_pixels(data, pic.name)
    q = query_hashes(
        rgb,
        band=True,
        min_quality=cfg.min_quality,
        low_quality_distance=cfg.low_quality_distance,
        detail=detail,
    )
    a = augment_variants(
        rgb,
        cfg.augment,
        min_quality=cfg.min_quality,
        low_quality_distance=cfg.low_quality_distance,
        detail=detail,
    )
    return Fingerprint(
        hashlib.sha256(data).hexdigest(),
        [h.hash for h in q],
        [q[0].hash, *(h.hash for h in a)],
        [h.max_distance is not None for h in q],
        [False, *(h.max_distance is not None for h in a)],
        local_features(rgb, mirror=True) if cfg.local else None,  # probed as a query
    )


def _flags(values: list[bool], n: int) -> np.ndarray:
    return np.array(values, dtype=bool) if values else np.zeros(n, dtype=bool)


def local_near_pairs(
    fingerprints: Sequence[Fingerprint | None], threshold: int
) -> dict[tuple[int, int], int]:
    """(i, j) -> local distance for pictures whose local features match within ``threshold``
    (either way round; a crop cut out of a larger photo and that photo, one scene in two lights),
    closed over chains (``close_chains``)."""
    have = [i for i, fp in enumerate(fingerprints) if fp is not None and fp.local is not None]
    index = LocalIndex([fingerprints[i].local for i in have], have)  # type: ignore[union-attr,misc]
    pairs: dict[tuple[int, int], int] = {}
    for i in have:
        # with a margin, as for the hashes: fewer patches (6) over half the spread
        found = index.match(fingerprints[i].local, min_inliers=1, min_spread=MIN_SPREAD / 2, exclude=i)  # type: ignore[union-attr,arg-type]
        for m in found:
            d = local_distance(m.inliers)
            if d <= threshold:
                key = (min(i, m.owner), max(i, m.owner))
                pairs[key] = min(d, pairs.get(key, FAR))
    return close_chains(pairs)


def close_chains(pairs: dict[tuple[int, int], int]) -> dict[tuple[int, int], int]:
    """The pairs, plus every two pictures linked through others (a version of a version is one
    picture), at the largest distance in their group.

    A lookup fetches each descriptor's 8 nearest: where the corpus holds one wallpaper at five
    sizes, the nearest versions fill those slots and the farthest may get too few votes, so the
    direct pair is missed (one such pair, 183 agreeing patches, was then counted as a false match).
    """
    group = {i: i for pair in pairs for i in pair}

    def root(i: int) -> int:
        while group[i] != i:
            group[i] = group[group[i]]
            i = group[i]
        return i

    for a, b in pairs:
        group[root(a)] = root(b)
    members: dict[int, list[int]] = {}
    for i in sorted(group):
        members.setdefault(root(i), []).append(i)
    worst: dict[int, int] = {}
    for (a, _), d in pairs.items():
        worst[root(a)] = max(d, worst.get(root(a), 0))
    closed = dict(pairs)
    for r, ids in members.items():
        for x, a in enumerate(ids):
            for b in ids[x + 1 :]:
                closed.setdefault((a, b), worst[r])
    return closed


def deduplicate(
    pictures: Sequence[Picture],
    fingerprints: Sequence[Fingerprint | None],
    threshold: int,
    low_penalty: int = 0,
    local_pairs: dict[tuple[int, int], int] | None = None,
) -> tuple[list[int], dict[str, int], list[dict[str, str | int]]]:
    """Indices of the pictures kept, counts of the others by reason, and the near-duplicate pairs.

    A picture is dropped when unreadable, when its bytes were seen, when it is a region cut out of
    a kept photograph (or the photograph of a kept region: ``same_photograph``), or when it matches
    a kept picture within ``threshold`` by any of the methods compared (its probe hashes against the
    other's known hashes, either way): such pairs are versions of one picture (a wallpaper in
    light and dark, at two aspect ratios), and a match between them is no false match. The
    threshold has a margin over the operating one, as an edited copy moves a few bits further.
    Pairs with a low-quality hash on either side count ``low_penalty`` bits further (as the
    methods "+lq" count them). ``local_pairs`` (``local_near_pairs``) adds the pairs whose local
    features match.
    """
    kept: list[int] = []
    probes: list[np.ndarray] = []
    knowns: list[np.ndarray] = []
    probes_low: list[np.ndarray] = []
    knowns_low: list[np.ndarray] = []
    seen: set[str] = set()
    dropped = {"unreadable": 0, "same bytes": 0, "same photograph": 0, "near duplicate": 0}
    pairs: list[dict[str, str | int]] = []
    for i, fp in enumerate(fingerprints):
        if fp is None:
            dropped["unreadable"] += 1
            continue
        if fp.sha256 in seen:
            dropped["same bytes"] += 1
            continue
        seen.add(fp.sha256)
        whole = next((k for k in kept if same_photograph(pictures[i], pictures[k])), None)
        if whole is not None:
            dropped["same photograph"] += 1
            pairs.append({"dropped": pictures[i].name, "kept": pictures[whole].name, "distance": -1})
            continue
        probe, known = hex_to_words(fp.probe), hex_to_words(fp.known)
        probe_low, known_low = _flags(fp.probe_low, len(probe)), _flags(fp.known_low, len(known))
        if kept:
            all_known, all_probe = np.concatenate(knowns), np.concatenate(probes)
            all_known_low, all_probe_low = np.concatenate(knowns_low), np.concatenate(probes_low)
            owner_k = np.repeat(np.arange(len(kept)), [len(k) for k in knowns])
            owner_p = np.repeat(np.arange(len(kept)), [len(p) for p in probes])
            d1 = np.bitwise_count(probe[:, None, :] ^ all_known[None, :, :]).sum(axis=2)
            d1 = (d1 + low_penalty * (probe_low[:, None] | all_known_low[None, :])).min(axis=0)
            d2 = np.bitwise_count(all_probe[:, None, :] ^ known[None, :, :]).sum(axis=2)
            d2 = (d2 + low_penalty * (all_probe_low[:, None] | known_low[None, :])).min(axis=1)
            per_kept = np.full(len(kept), 256)
            np.minimum.at(per_kept, owner_k, d1)
            np.minimum.at(per_kept, owner_p, d2)
            for j, k in enumerate(kept):
                per_kept[j] = min(per_kept[j], (local_pairs or {}).get((min(i, k), max(i, k)), 256))
            j = int(np.argmin(per_kept))
            if per_kept[j] <= threshold:
                dropped["near duplicate"] += 1
                pairs.append(
                    {
                        "dropped": pictures[i].name,
                        "kept": pictures[kept[j]].name,
                        "distance": int(per_kept[j]),
                    }
                )
                continue
        kept.append(i)
        probes.append(probe)
        knowns.append(known)
        probes_low.append(probe_low)
        knowns_low.append(known_low)
    return kept, dropped, pairs


# --------------------------------------------------------------------------------------------
# hashing (runs in worker processes)


@dataclass(frozen=True)
class _Job:
    picture: Picture
    index: int  # position among originals or distractors
    original: bool
    cfg: EvalConfig


def _hash_item(job: _Job) -> Hashed:
    cfg = job.cfg
    suite = select(default_suite(), cfg.transforms)
    img = load_picture(job.picture, cfg.work_size)
    data = encode_bmp(img)
    rgb, detail = canonical_pixels(data, job.picture.name)
    plain = query_hashes(rgb, dihedral=False, borders=False, embedded=False)[0]
    known: list[tuple[str, int]] = []
    if job.original:
        known = [(plain.hash, 0)]
        known += [
            (a.hash, known_tag(a))
            for a in augment_variants(
                rgb,
                cfg.augment,
                min_quality=cfg.min_quality,
                low_quality_distance=cfg.low_quality_distance,
                detail=detail,
            )
        ]
        which = list(range(len(suite)))
    else:
        pick = np.random.default_rng([cfg.seed, 1, job.index])
        k = min(cfg.distractor_transforms, len(suite))
        which = [-1, *sorted(int(i) for i in pick.choice(len(suite), size=k, replace=False))]
    queries, names = [], []
    known_local = local_features(rgb) if cfg.local and job.original else None
    query_local: list[LocalFeatures] = []
    for j in which:
        if j < 0:
            q_rgb, q_detail = rgb, detail
        else:
            rng = np.random.default_rng([cfg.seed, 0 if job.original else 2, job.index, j])
            q_data = apply_transform(suite[j], img, rng)
            q_rgb, q_detail = canonical_pixels(q_data, f"{job.picture.name} [{suite[j].name}]")
        hashes = query_hashes(
            q_rgb,
            band=True,
            min_quality=cfg.min_quality,
            low_quality_distance=cfg.low_quality_distance,
            detail=q_detail,
        )
        queries.append([(q.hash, query_tag(q)) for q in hashes])
        names.append(j)
        if cfg.local:
            query_local.append(local_features(q_rgb, mirror=True))
    return Hashed(known, queries, names, plain.quality, known_local, query_local)


def _run_jobs(
    fn: Callable, jobs: Sequence, workers: int, progress: Callable[[int, int], None] | None
) -> list:
    out = []
    if workers <= 1:
        for i, job in enumerate(jobs):
            out.append(fn(job))
            if progress:
                progress(i + 1, len(jobs))
        return out
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for i, res in enumerate(pool.map(fn, jobs, chunksize=1)):
            out.append(res)
            if progress:
                progress(i + 1, len(jobs))
    return out


# --------------------------------------------------------------------------------------------
# distances


def tag_distances(originals: Sequence[Hashed], queries: Sequence[list[tuple[str, int]]]) -> np.ndarray:
    """(Q, query tags, known tags, N) uint8: per query and original, the smallest Hamming distance
    between a query hash of each tag and a known hash of each tag (``FAR`` when either is absent)."""
    n, nq, nk = len(originals), len(QUERY_TAGS), len(KNOWN_TAGS)
    out = np.full((len(queries), nq, nk, n), FAR, dtype=np.uint8)
    k_hex = [h for o in originals for h, _ in o.known]
    k_owner = np.array([i for i, o in enumerate(originals) for _ in o.known], dtype=np.int64)
    k_tag = np.array([t for o in originals for _, t in o.known], dtype=np.int64)
    k_words = hex_to_words(k_hex)
    q_hex = [h for q in queries for h, _ in q]
    q_owner = np.array([i for i, q in enumerate(queries) for _ in q], dtype=np.int64)
    q_tag = np.array([t for q in queries for _, t in q], dtype=np.int64)
    q_words = hex_to_words(q_hex)
    # one column block per known tag, ordered by owner, so a reduceat gives per-original minima
    blocks = []
    for t in range(nk):
        sel = np.nonzero(k_tag == t)[0]
        sel = sel[np.argsort(k_owner[sel], kind="stable")]
        if len(sel) == 0:
            continue
        owners = k_owner[sel]
        starts = np.r_[0, np.nonzero(np.diff(owners))[0] + 1]
        blocks.append((t, k_words[sel], starts, owners[starts]))
    step = 4096
    for a in range(0, len(q_words), step):
        qw = q_words[a : a + step]
        rows_owner, rows_tag = q_owner[a : a + step], q_tag[a : a + step]
        for t, kw, starts, owners in blocks:
            d = np.zeros((len(qw), len(kw)), dtype=np.uint16)
            for w in range(4):
                d += np.bitwise_count(qw[:, w, None] ^ kw[None, :, w]).astype(np.uint16)
            per_orig = np.minimum.reduceat(d, starts, axis=1)  # (rows, owners)
            # min over the rows of each (query, query tag), then into out[query, tag, t, owner]
            keys = rows_owner * nq + rows_tag
            order = np.argsort(keys, kind="stable")
            first = np.r_[0, np.nonzero(np.diff(keys[order]))[0] + 1]
            reduced = np.minimum.reduceat(per_orig[order], first, axis=0).astype(np.uint8)
            uq, ut = np.divmod(keys[order][first], nq)
            idx = (uq[:, None], ut[:, None], np.full((1, 1), t), owners[None, :])
            out[idx] = np.minimum(out[idx], reduced)
    return out


_LOCAL_INDEX: LocalIndex | None = None


def _load_local_index(features: list[LocalFeatures]) -> None:
    global _LOCAL_INDEX
    _LOCAL_INDEX = LocalIndex(features, range(len(features)))


def _match_local(queries: list[LocalFeatures]) -> list[list[tuple[int, int]]]:
    assert _LOCAL_INDEX is not None
    return [[(m.owner, m.inliers) for m in _LOCAL_INDEX.match(q, min_inliers=1)] for q in queries]


def local_distances(
    originals: Sequence[Hashed], queries: Sequence[LocalFeatures], workers: int = 1
) -> np.ndarray:
    """(Q, N) uint8: each query's local distance (``local_distance``) to each original it was
    checked against (the few with the most matched descriptors), ``FAR`` to the others."""
    known = [o.known_local or LocalFeatures.empty() for o in originals]
    out = np.full((len(queries), len(originals)), FAR, dtype=np.uint8)
    chunks = [list(queries[a : a + 64]) for a in range(0, len(queries), 64)]
    if workers <= 1:
        _load_local_index(known)
        results = [r for c in chunks for r in _match_local(c)]
    else:
        with ProcessPoolExecutor(workers, initializer=_load_local_index, initargs=(known,)) as pool:
            results = [r for part in pool.map(_match_local, chunks) for r in part]
    for qi, found in enumerate(results):
        for owner, inliers in found:
            out[qi, owner] = min(local_distance(inliers), FAR - 1)
    return out


def method_distances(
    tags: np.ndarray, method: Method, low_quality_penalty: int = 0, local: np.ndarray | None = None
) -> np.ndarray:
    """(Q, N): the smallest distance over the method's query and known tags.

    A method with ``low_quality`` also counts the pairs with a low-quality hash on either side
    (the known side's only when the method is augmented), ``low_quality_penalty`` bits further:
    at the operating threshold they match only within their tighter distance, and the held-out
    threshold sweep sees them at the same offset. A method with ``local`` also counts the
    ``local`` distances (``local_distances``)."""
    q = sorted(method.query)
    k = sorted(method.known)
    best = tags[:, q][:, :, k].min(axis=(1, 2))
    if method.local and local is not None:
        best = np.minimum(best, local)
    if not method.low_quality:
        return best
    low = tags[:, [LOW_Q]][:, :, k + ([LOW_K] if method.augmented else [])].min(axis=(1, 2))
    if method.augmented:
        low = np.minimum(low, tags[:, q][:, :, [LOW_K]].min(axis=(1, 2)))
    shifted = np.minimum(low.astype(np.int64) + low_quality_penalty, FAR).astype(np.uint8)
    return np.minimum(best, shifted)


# --------------------------------------------------------------------------------------------
# the run


@dataclass
class EvalResult:
    config: dict
    corpus: dict
    transforms: list[dict[str, str]]
    methods: list[Scores]

    def method(self, name: str) -> Scores:
        return next(m for m in self.methods if m.method == name)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)


def run_evaluation(cfg: EvalConfig, progress: Callable[[str, int, int], None] | None = None) -> EvalResult:
    """The whole protocol; ``progress(stage, done, total)`` is called as items are hashed."""
    suite = select(default_suite(), cfg.transforms)
    if not suite:
        raise OpspoorError(f"no transform matches {', '.join(cfg.transforms)}")
    pictures, source = corpus_pictures(cfg)
    rng = np.random.default_rng(cfg.seed)
    pictures = [pictures[i] for i in rng.permutation(len(pictures))]

    def stage(name: str) -> Callable[[int, int], None] | None:
        return (lambda done, total: progress(name, done, total)) if progress else None

    # fingerprint only as many as needed (with a margin for the duplicates dropped)
    wanted = cfg.n + cfg.distractors
    fingerprints: list[Fingerprint | None] = []
    kept: list[int] = []
    dropped: dict[str, int] = {}
    pairs: list[dict[str, str | int]] = []
    start = 0
    while len(kept) < wanted and start < len(pictures):
        batch = pictures[start : start + max(wanted - len(kept), 1) + 8]
        fingerprints += _run_jobs(
            _fingerprint, [(p, cfg) for p in batch], cfg.workers, stage("deduplicating")
        )
        start += len(batch)
        margin = cfg.threshold + cfg.dedup_margin
        kept, dropped, pairs = deduplicate(
            pictures[: len(fingerprints)],
            fingerprints,
            margin,
            cfg.threshold - cfg.low_quality_distance,
            local_near_pairs(fingerprints, margin) if cfg.local else None,
        )
    kept = kept[:wanted]
    n_orig = min(cfg.n, len(kept))
    n_distr = min(cfg.distractors, len(kept) - n_orig)
    if n_orig < 2:
        raise OpspoorError(f"corpus too small: {len(kept)} distinct pictures ({source})")
    originals = [pictures[i] for i in kept[:n_orig]]
    distractors = [pictures[i] for i in kept[n_orig : n_orig + n_distr]]
    jobs = [_Job(p, i, True, cfg) for i, p in enumerate(originals)]
    jobs += [_Job(p, i, False, cfg) for i, p in enumerate(distractors)]
    hashed: list[Hashed] = _run_jobs(_hash_item, jobs, cfg.workers, stage("hashing"))
    orig_h, distr_h = hashed[:n_orig], hashed[n_orig:]

    queries = [q for h in hashed for q in h.queries]
    truth = np.array(
        [i if i < n_orig else -1 for i, h in enumerate(hashed) for _ in h.queries], dtype=np.int64
    )
    transform_of = np.array([j for h in hashed for j in h.transforms], dtype=np.int64)
    # halves: by original (all copies of one original together), distractors alternately
    half_orig = np.zeros(n_orig, dtype=bool)
    half_orig[np.random.default_rng([cfg.seed, 3]).permutation(n_orig)[n_orig // 2 :]] = True
    owner = np.array([i for i, h in enumerate(hashed) for _ in h.queries], dtype=np.int64)
    half_b = np.where(truth >= 0, half_orig[np.maximum(truth, 0)], (owner - n_orig) % 2 == 1)

    items = originals + distractors
    labels = [
        f"{items[i].name} [{suite[j].name if j >= 0 else 'as is'}]"
        for i, h in enumerate(hashed)
        for j in h.transforms
    ]
    tags = tag_distances(orig_h, queries)
    local = None
    if cfg.local:
        stage_local = stage("local features")
        local = local_distances(orig_h, [f for h in hashed for f in h.query_local], cfg.workers)
        if stage_local:
            stage_local(len(queries), len(queries))
    scores = []
    for m in METHODS:
        if m.local and local is None:
            continue
        q_tags = m.query | ({LOW_Q} if m.low_quality else set())
        k_tags = m.known | ({LOW_K} if m.low_quality and m.augmented else set())
        per_query = np.mean([sum(1 for _, t in q if t in q_tags) for q in queries])
        per_orig = np.mean([sum(1 for _, t in o.known if t in k_tags) for o in orig_h])
        dist = method_distances(tags, m, cfg.threshold - cfg.low_quality_distance, local)
        scores.append(
            score_method(
                m,
                dist,
                truth,
                transform_of,
                half_b,
                suite,
                cfg,
                (float(per_query), float(per_orig)),
                (labels, [p.name for p in originals]),
                np.array([h.quality < FLAT_QUALITY for h in orig_h], dtype=bool),
            )
        )
    config = asdict(cfg)
    config["corpus"] = str(cfg.corpus) if cfg.corpus else None
    config["benchmark"] = str(cfg.benchmark) if cfg.benchmark else None
    corpus = {
        "source": source,
        "originals": n_orig,
        "distractors": n_distr,
        "edited_queries": int((truth >= 0).sum()),
        "distractor_queries": int((truth < 0).sum()),
        "dropped": dropped,
        "near_duplicate_pairs": pairs,
        "original_names": [p.name for p in originals],
        "distractor_names": [p.name for p in distractors],
        "low_quality_originals": sum(h.quality < cfg.min_quality for h in orig_h),
        "flat_originals": sum(h.quality < FLAT_QUALITY for h in orig_h),
        "low_quality_distractors": sum(h.quality < cfg.min_quality for h in distr_h),
    }
    transforms = [{"name": t.name, "family": t.family} for t in suite]
    return EvalResult(config, corpus, transforms, scores)


def default_workers() -> int:
    return max(1, (os.cpu_count() or 1))


__all__ = [
    "EvalConfig",
    "EvalResult",
    "Scores",
    "default_workers",
    "method_distances",
    "run_evaluation",
    "tag_distances",
]
