"""Local-feature matcher: the LSH index (``LocalIndex.match``) against exact matching (the anchor).

Originals: the benchmark photos (bench/corpus.py, benign Debian photos, as far as built), topped
up with generated benign pictures (``generate_image(seed, 800, 600, "mixed")``) to N. Queries:
``--crops`` off-centre crops (10 % cut off the right and bottom) of randomly chosen originals
(seeded) and ``--unrelated`` generated pictures that are not in the index, each with its mirror
image's features, as the scan extracts a query's (the mirror is searched when the picture as it
is shows no original: for every unrelated query).

For each N it reports feature extraction per image (one process, timed around
``local_features`` only), the index arrays, the LSH build, and per query the time, recall of the
crops (own original found) and false matches (a crop matched to another original, an unrelated
picture matched to any) of ``match`` and of the anchor in the same run on the same queries.

The anchor is ``brute_force_match`` (exact nearest neighbours, in chunks of 2^17 descriptors:
OpenCV's brute-force matcher refuses 2^18 or more in one train set).
Above ``--bf-full-limit`` descriptors the anchor runs on a subset of the queries
(``--bf-queries``, crops and unrelated in proportion); the ratio and the LSH's numbers next to it
are then taken on that subset too.

Usage: ``python bench/local.py [--sizes 300,3000,10000] [--quick] [--out FILE] [--json FILE]``
(``--quick`` or BENCH_QUICK=1: N = 300 only).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import psutil  # noqa: E402

from corpus import PHOTOS  # noqa: E402
from opspoor.demo.images import generate_image  # noqa: E402
from opspoor.evaluate.harness import Picture, benchmark_photos, load_picture, photo_sources  # noqa: E402
from opspoor.signals.local import (  # noqa: E402
    LocalFeatures,
    LocalIndex,
    LocalMatch,
    local_features,
)
from setup_info import print_report, setup_line  # noqa: E402

WORK_SIZE = 1024
CROP = 0.9  # share of width and height a crop keeps (from the top left)
UNRELATED_SEED = 10_000_000  # generated unrelated queries: far from the originals' seeds


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --- data ------------------------------------------------------------------------------------


def original_rgb(i: int, photos: Sequence[Path]) -> np.ndarray:
    """Original ``i``: a benchmark photo, or beyond them the generated picture with seed ``i``."""
    if i < len(photos):
        return np.asarray(load_picture(Picture(photos[i].name, str(photos[i])), WORK_SIZE))
    return np.asarray(generate_image(i, 800, 600, "mixed"))


def _features_of(i: int, photos: Sequence[Path]) -> tuple[LocalFeatures, float]:
    rgb = original_rgb(i, photos)
    t = time.perf_counter()
    f = local_features(rgb)
    return f, time.perf_counter() - t


def extend_originals(
    feats: list[LocalFeatures], secs: list[float], n: int, photos: Sequence[Path], workers: int
) -> None:
    """Features of originals ``len(feats)..n-1``; each extraction timed inside its own process
    (decoding and generating run in ``workers`` processes so that N = 10k stays affordable)."""
    todo = list(range(len(feats), n))
    if not todo:
        return
    with ProcessPoolExecutor(workers) as pool:
        for f, s in pool.map(_features_of, todo, [photos] * len(todo), chunksize=16):
            feats.append(f)
            secs.append(s)


@dataclass
class Query:
    features: LocalFeatures
    own: int | None  # the original a crop was cut from; None for an unrelated picture
    extract_s: float  # time of local_features(..., mirror=True), as a scan's worker runs it


def make_queries(n: int, crops: int, unrelated: int, photos: Sequence[Path], seed: int) -> list[Query]:
    rng = np.random.default_rng(seed)
    out = []
    for i in rng.choice(n, size=min(crops, n), replace=False).tolist():
        rgb = original_rgb(i, photos)
        h, w = rgb.shape[:2]
        out.append(_query(rgb[: int(h * CROP), : int(w * CROP)], i))
    for k in range(unrelated):
        out.append(_query(np.asarray(generate_image(UNRELATED_SEED + k, 800, 600, "mixed")), None))
    return out


def _query(rgb: np.ndarray, own: int | None) -> Query:
    t = time.perf_counter()
    f = local_features(rgb, mirror=True)
    return Query(f, own, time.perf_counter() - t)


def subset(queries: list[Query], k: int) -> list[Query]:
    """``k`` queries, crops and unrelated in their proportion (all when ``k`` covers them)."""
    if k >= len(queries):
        return queries
    crops = [q for q in queries if q.own is not None]
    other = [q for q in queries if q.own is None]
    kc = round(k * len(crops) / len(queries))
    return crops[:kc] + other[: k - kc]


# --- the anchor ------------------------------------------------------------------------------


# --- measuring -------------------------------------------------------------------------------


@dataclass
class Outcome:
    queries: int
    ms_per_query: float
    crops: int
    recall: float  # crops whose own original is among the matches
    wrong: int  # crops matched to another original
    unrelated_matched: int  # unrelated pictures matched to any original


def run_queries(
    fn: Callable[[LocalFeatures], list[LocalMatch]], queries: list[Query], threads: int = 1
) -> tuple[Outcome, list]:
    """Every query through ``fn``; with ``threads`` > 1 on a thread pool over one shared index, as
    the scan's matcher looks up the images nothing else matched (``IndexGroup.find_local``)."""
    t = time.perf_counter()
    if threads > 1:
        with ThreadPoolExecutor(threads) as pool:
            found = [{m.owner for m in r} for r in pool.map(fn, [q.features for q in queries])]
    else:
        found = [{m.owner for m in fn(q.features)} for q in queries]
    ms = 1000 * (time.perf_counter() - t) / max(1, len(queries))
    crops = [(q, f) for q, f in zip(queries, found, strict=True) if q.own is not None]
    hit = sum(q.own in f for q, f in crops)
    wrong = sum(bool(f - {q.own}) for q, f in crops)
    unrelated = sum(bool(f) for q, f in zip(queries, found, strict=True) if q.own is None)
    return Outcome(len(queries), ms, len(crops), hit / max(1, len(crops)), wrong, unrelated), found


@dataclass
class Row:
    n: int
    photos: int
    descriptors: int
    arrays_mib: float
    lsh_build_s: float
    lsh_rss_mib: float
    lsh: Outcome  # all queries
    lsh_on_anchor_set: Outcome
    anchor: Outcome
    ratio: float  # anchor ms / LSH ms on the same queries
    agree: int  # anchor-set queries where both found the same originals
    query_extract_ms: float  # per query, with its mirror
    threaded: Outcome  # all queries, on a thread pool
    threaded_agree: int  # queries where one thread and the pool found the same originals
    threads: int


def rss_mib() -> float:
    gc.collect()
    return psutil.Process().memory_info().rss / 2**20


def measure(n: int, feats: list[LocalFeatures], photos: Sequence[Path], args: argparse.Namespace) -> Row:
    log(f"[N={n}] queries")
    queries = make_queries(n, args.crops, args.unrelated, photos, seed=n)
    index = LocalIndex(feats[:n], list(range(n)))
    arrays = sum(getattr(index, a).nbytes for a in LocalIndex.ARRAYS) / 2**20
    log(f"[N={n}] LSH build over {len(index):,} descriptors")
    before = rss_mib()
    t = time.perf_counter()
    index.warm_up()  # else built on first use; built here so that its time is not in the first query's
    build_s = time.perf_counter() - t
    lsh_rss = max(0.0, rss_mib() - before)
    log(f"[N={n}] match, {len(queries)} queries")
    lsh, lsh_found = run_queries(index.match, queries)
    log(f"[N={n}] match on {args.threads} threads")
    threaded, threaded_found = run_queries(index.match, queries, args.threads)
    k = len(queries) if len(index) <= args.bf_full_limit else args.bf_queries
    anchor_set = subset(queries, k)
    log(f"[N={n}] anchor, {len(anchor_set)} queries")
    lsh_sub, sub_found = run_queries(index.match, anchor_set)
    anchor, anchor_found = run_queries(index.brute_force_match, anchor_set)
    agree = sum(a == b for a, b in zip(sub_found, anchor_found, strict=True))
    row = Row(
        n,
        min(n, len(photos)),
        len(index),
        arrays,
        build_s,
        lsh_rss,
        lsh,
        lsh_sub,
        anchor,
        anchor.ms_per_query / max(1e-9, lsh_sub.ms_per_query),
        agree,
        1000 * float(np.mean([q.extract_s for q in queries])),
        threaded,
        sum(a == b for a, b in zip(lsh_found, threaded_found, strict=True)),
        args.threads,
    )
    del index
    gc.collect()
    return row


# --- output ----------------------------------------------------------------------------------


def outcome_cells(o: Outcome) -> str:
    return f"{o.queries} | {o.ms_per_query:.1f} | {o.recall:.3f} | {o.wrong} | {o.unrelated_matched}"


def table(rows: list[Row], extract_ms: float, encoded: float, kpts: float, note: str) -> str:
    lines = [
        f"setup: {setup_line()}, OpenCV {cv2.__version__} (1 thread, as in the scan workers)",
        f"data: {note}; queries per N: crops of originals (10 % cut off right and bottom) and unrelated "
        "generated pictures",
        f"features: {extract_ms:.1f} ms per image to extract (one process, `local_features` only, over "
        f"{rows[-1].n:,} originals), {kpts:.0f} keypoints and {encoded / 1024:.1f} KiB encoded per image "
        "(`len(features.encode())`); a query's with its mirror (`mirror=True`, as the scan extracts them): "
        f"{np.mean([r.query_extract_ms for r in rows]):.1f} ms",
        "",
        "| N (photos) | descriptors | arrays MiB | LSH build s | LSH +RSS MiB | matcher | queries | "
        "ms/query | crop recall | crops to a wrong original | unrelated matched |",
        "| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        head = (
            f"| {r.n:,} ({r.photos}) | {r.descriptors:,} | {r.arrays_mib:.1f} | {r.lsh_build_s:.2f} "
            f"| {r.lsh_rss_mib:.0f}"
        )
        blank = "| | | | |"
        anchor_name = "exact (anchor)"
        lines.append(f"{head} | LSH `match`, all queries | {outcome_cells(r.lsh)} |")
        lines.append(f"{blank} | LSH `match`, {r.threads} threads | {outcome_cells(r.threaded)} |")
        if r.anchor.queries != r.lsh.queries:
            lines.append(f"{blank} | LSH `match`, anchor subset | {outcome_cells(r.lsh_on_anchor_set)} |")
        lines.append(f"{blank} | {anchor_name} | {outcome_cells(r.anchor)} |")
    lines.append("")
    for r in rows:
        sub = "" if r.anchor.queries == r.lsh.queries else f" (on a subset of {r.anchor.queries} queries)"
        lines.append(
            f"N = {r.n:,}: exact / LSH time **{r.ratio:.1f}x**{sub}; same originals found for "
            f"{r.agree} of {r.anchor.queries} queries; {r.threads} threads / one: "
            f"**{r.lsh.ms_per_query / max(1e-9, r.threaded.ms_per_query):.2f}x** as fast, same "
            f"originals for {r.threaded_agree} of {r.lsh.queries} queries"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="300,3000,10000", help="numbers of originals, comma-separated")
    ap.add_argument("--crops", type=int, default=100)
    ap.add_argument("--unrelated", type=int, default=50)
    ap.add_argument(
        "--bf-full-limit",
        type=int,
        default=300_000,
        help="descriptors up to which the anchor runs on every query",
    )
    ap.add_argument("--bf-queries", type=int, default=30, help="anchor queries above that")
    ap.add_argument("--workers", type=int, default=2, help="processes that decode/generate the originals")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="lookup threads (as the scan)")
    ap.add_argument("--quick", action="store_true", help="N = 300 only (also with BENCH_QUICK=1)")
    ap.add_argument("--out", type=Path, help="also write the table (markdown) to this file")
    ap.add_argument("--json", type=Path, help="also write the results as JSON (default: next to --out)")
    args = ap.parse_args()
    if args.out and not args.json:
        args.json = args.out.with_suffix(".json")
    sizes = sorted(int(s) for s in args.sizes.split(","))
    if args.quick or os.environ.get("BENCH_QUICK"):
        sizes = [300]
    # whole photographs only: the corpus also holds regions cut out of its largest photographs,
    # and a crop of a photograph rightly matches such a region (the same picture)
    regions = {p for p, (_, region) in photo_sources(PHOTOS).items() if region}
    photos = [p for p in benchmark_photos(PHOTOS) or [] if p not in regions]
    note = (
        f"{min(len(photos), sizes[-1])} benchmark photos (bench/corpus.py, regions cut out of larger "
        "photographs left out) + generated 800x600 'mixed' "
        "pictures up to N"
        if photos
        else "no benchmark photos built: generated 800x600 'mixed' pictures only"
    )
    feats: list[LocalFeatures] = []
    secs: list[float] = []
    rows = []
    for n in sizes:
        log(f"[N={n}] features of originals {len(feats)}..{n - 1}")
        extend_originals(feats, secs, n, photos, args.workers)
        rows.append(measure(n, feats, photos, args))
    sample = feats[: sizes[-1]]
    extract_ms = 1000 * float(np.mean(secs))
    encoded = float(np.mean([len(f.encode()) for f in sample]))
    kpts = float(np.mean([len(f) for f in sample]))
    text = table(rows, extract_ms, encoded, kpts, note)
    print_report(text, args.out)
    if args.json:
        result = {
            "setup": setup_line(),
            "opencv": cv2.__version__,
            "data": note,
            "extract_ms_per_image": extract_ms,
            "encoded_bytes_per_image": encoded,
            "keypoints_per_image": kpts,
            "rows": [asdict(r) for r in rows],
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
