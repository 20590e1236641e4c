"""Match index benchmark: opspoor's Hamming index against FAISS, and the exact index (docs/index.md).

Data, for each of two kinds:
  uniform    N random 256-bit hashes;
  clustered  families of near-duplicates grown from real PDQ hashes of benign photos
             (``bench/corpus.py``; generated images if the corpus is unavailable, and the output
             says which): a family's centre is a seed with 32..127 random bits flipped (a new
             picture with the structure of a real one), its members the centre with 0..40 bits
             flipped (re-encodes, crops, edits); family sizes 1 + geometric, mean 10.
Queries: half a haystack entry with 0..31 bits flipped (a fifth exactly 31), half with none
planted (uniform: random; clustered: a new family centre).

Compared in the same run with 2 threads: FAISS ``IndexBinaryFlat`` range search (the ground
truth), FAISS ``IndexBinaryMultiHash(256, 16, 16)`` with nflip = 1 (HMA's configuration), and
opspoor's ``HammingIndex``. The FAISS indexes run on a subset of the queries (``--anchor-queries``,
they take ~10 ms a query at 10M); recall and the speed ratio are computed on that same subset.
Then the exact index: ``--exact-queries`` MD5 lookups (half present) against ``--exact-n`` keys.

Usage: ``python bench/index.py [--n 10000000] [--queries 10000] [--quick] [--out FILE]``
(``--quick``: N = 200000, 50k exact keys; for checking the script, not for numbers).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

import faiss  # noqa: E402
import numpy as np  # noqa: E402
import psutil  # noqa: E402
from numba import njit  # noqa: E402

from opspoor.index import ExactIndex, HammingIndex  # noqa: E402
from opspoor.index.mih import bytes_per_hash  # noqa: E402
from opspoor.signals.pdq import hex_to_words, pdq_from_rgb  # noqa: E402
from setup_info import cpu_model, print_report  # noqa: E402

T = TypeVar("T")
THREADS = 2
RADIUS = 31
GOAL_SPEEDUP = 10.0
GOAL_BYTES = 100.0


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def rss() -> int:
    """Resident bytes, after handing freed heap memory back to the system (else reuse hides growth)."""
    gc.collect()
    with contextlib.suppress(OSError):  # not glibc: no trim
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    return int(psutil.Process().memory_info().rss)


# --- data ------------------------------------------------------------------------------------


@njit(cache=True)
def _flip(words: np.ndarray, counts: np.ndarray, seed: int) -> None:  # pragma: no cover - compiled
    """Flip exactly ``counts[i]`` distinct random bits of row ``i``, in place."""
    np.random.seed(seed)
    chosen = np.empty(256, dtype=np.int64)
    for i in range(words.shape[0]):
        k = 0
        while k < counts[i]:
            b = np.random.randint(0, 256)
            dup = False
            for j in range(k):
                if chosen[j] == b:
                    dup = True
                    break
            if dup:
                continue
            chosen[k] = b
            k += 1
            words[i, b >> 6] ^= np.uint64(1) << np.uint64(b & 63)


def flipped(words: np.ndarray, counts: np.ndarray, seed: int) -> np.ndarray:
    out = np.ascontiguousarray(words, dtype=np.uint64).copy()
    _flip(out, np.ascontiguousarray(counts, dtype=np.int64), seed)
    return out


def photo_seeds() -> tuple[np.ndarray, str]:
    """Real PDQ hashes of the benchmark photos, or of generated images when there are none."""
    try:
        from corpus import MANIFEST, photo_corpus

        paths = photo_corpus()
        meta = json.loads(MANIFEST.read_text()) if MANIFEST.is_file() else {"photos": []}
        known = {str(ROOT / p["path"]): p["pdq"] for p in meta["photos"]}
        hexes = [known.get(str(p)) or _hash_file(p) for p in paths]
        return hex_to_words(hexes), f"{len(hexes)} real PDQ hashes of benign photos (bench/corpus.py)"
    except Exception as exc:  # no corpus (offline machine): say so, fall back
        log(f"photo corpus unavailable ({type(exc).__name__}: {exc}); seeding from generated images")
        return generated_seeds(300), "300 PDQ hashes of generated images (photo corpus unavailable)"


def _hash_file(path: Path) -> str:
    from opspoor.media.image import decode_image
    from opspoor.signals.pdq import pdq_hash_image

    return pdq_hash_image(decode_image(path.read_bytes(), where=str(path))).hash


def generated_seeds(n: int) -> np.ndarray:
    """PDQ of benign generated images: gradients, rectangles and smoothed noise."""
    rng = np.random.default_rng(17)
    yy, xx = np.mgrid[0:256, 0:256] / 255.0
    out = []
    for _ in range(n):
        img = np.zeros((256, 256, 3))
        for c in range(3):
            a, b, f = rng.uniform(-1, 1, 3)
            img[:, :, c] = 0.5 + 0.25 * (a * xx + b * yy) + 0.2 * np.sin(6 * f * (xx + yy))
        for _ in range(rng.integers(1, 6)):
            x0, y0 = rng.integers(0, 200, 2)
            img[y0 : y0 + rng.integers(10, 56), x0 : x0 + rng.integers(10, 56)] = rng.uniform(0, 1, 3)
        noise = rng.normal(0, 0.05, (32, 32, 3)).repeat(8, 0).repeat(8, 1)
        rgb = (np.clip(img + noise, 0, 1) * 255).astype(np.uint8)
        out.append(pdq_from_rgb(rgb).hash)
    return hex_to_words(out)


def uniform_data(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 2**64, size=(n, 4), dtype=np.uint64)


def clustered_data(n: int, seeds: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    sizes = 1 + rng.geometric(1 / 9.0, size=n // 5 + 10)
    sizes = sizes[: np.searchsorted(np.cumsum(sizes), n) + 1]
    centres = new_centres(len(sizes), seeds, rng)
    members = np.repeat(centres, sizes, axis=0)[:n]
    return flipped(members, rng.integers(0, 41, size=n), int(rng.integers(2**31)))


def new_centres(k: int, seeds: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    base = seeds[rng.integers(0, len(seeds), size=k)]
    return flipped(base, rng.integers(32, 128, size=k), int(rng.integers(2**31)))


def make_queries(
    hay: np.ndarray, nq: int, rng: np.random.Generator, absent: Callable[[int], np.ndarray]
) -> np.ndarray:
    """Half planted (0..31 bits from an entry, a fifth of them exactly 31), half not."""
    planted = nq // 2
    d = rng.integers(0, 31, size=planted)
    d[: planted // 5] = 31
    near = flipped(hay[rng.integers(0, len(hay), size=planted)], d, int(rng.integers(2**31)))
    q = np.concatenate([near, absent(nq - planted)])
    return q[rng.permutation(nq)]


# --- runs ------------------------------------------------------------------------------------


@dataclass
class Run:
    name: str
    build_s: float
    bytes_per_hash: float
    load_s: float | None = None
    qps: dict[str, float] = field(default_factory=dict)  # by query set
    pairs: set[tuple[int, int, int]] = field(default_factory=set)  # (query, entry, distance) on anchors


def timed(fn: Callable[..., T], *args: object) -> tuple[float, T]:
    t = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t, out


def faiss_pairs(index: faiss.IndexBinary, q: np.ndarray) -> set[tuple[int, int, int]]:
    lims, dist, ids = index.range_search(q.view(np.uint8), RADIUS + 1)  # FAISS: distance < radius
    qi = np.repeat(np.arange(len(q)), np.diff(lims).astype(np.int64))
    return set(zip(qi.tolist(), ids.astype(np.int64).tolist(), dist.astype(np.int64).tolist(), strict=True))


def run_faiss(name: str, make: Callable[[], faiss.IndexBinary], hay: np.ndarray, anchors: np.ndarray) -> Run:
    before = rss()
    build_s, index = timed(_faiss_add, make(), hay)
    per_hash = max(0, rss() - before) / len(hay)
    q_s, pairs = timed(faiss_pairs, index, anchors)
    run = Run(name, build_s, per_hash, qps={"anchors": len(anchors) / q_s}, pairs=pairs)
    del index
    gc.collect()
    return run


def _faiss_add(index: faiss.IndexBinary, hay: np.ndarray) -> faiss.IndexBinary:
    index.add(hay.view(np.uint8))
    return index


def opspoor_pairs(index: HammingIndex, q: np.ndarray) -> set[tuple[int, int, int]]:
    m = index.search(q, RADIUS)
    return set(zip(m.query_idx.tolist(), m.ids.tolist(), m.distances.astype(np.int64).tolist(), strict=True))


def run_opspoor(hay: np.ndarray, queries: np.ndarray, anchors: np.ndarray, workdir: Path) -> tuple[Run, str]:
    gc.collect()
    build_s, index = timed(HammingIndex.build, hay, np.arange(len(hay)), None, THREADS)
    seg = index.snapshot().base
    layout = f"m={seg.layout.m}, b={seg.layout.b}, addr_bits={seg.layout.addr_bits}"
    per_hash = index.nbytes / len(hay)
    assert abs(per_hash - bytes_per_hash(seg.layout, len(hay))) < 0.01
    index.search(queries[:100], RADIUS)  # compile and warm up
    qs = {}
    t, _ = timed(index.search, queries, RADIUS)
    qs["all"] = len(queries) / t
    t, pairs = timed(opspoor_pairs, index, anchors)
    qs["anchors"] = len(anchors) / t
    nd = min(len(queries), 1000)
    others = [flipped(queries[:nd], np.full(nd, 64), s) for s in range(7)]  # stand-ins for 7 rotations
    variants = np.stack([queries[:nd], *others], axis=1)
    t, _ = timed(index.search_dihedral, variants, RADIUS)
    qs["dihedral"] = nd / t
    # persistence: save, then load memory-mapped and search from the files
    path = workdir / "hamming"
    index.save(path)
    del index, seg
    gc.collect()
    before = rss()
    load_s, loaded = timed(HammingIndex.load, path, True)
    load_rss = max(0, rss() - before)
    loaded.threads = THREADS
    loaded.search(queries[:100], RADIUS)
    t, _ = timed(loaded.search, queries, RADIUS)
    qs["all, after load"] = len(queries) / t
    run = Run("opspoor HammingIndex", build_s, per_hash, load_s, qs, pairs)
    note = f"{layout}; load maps the files (+{load_rss / 2**20:.0f} MiB resident right after loading)"
    del loaded
    shutil.rmtree(path, ignore_errors=True)
    return run, note


def bench_kind(kind: str, hay: np.ndarray, queries: np.ndarray, n_anchor: int, workdir: Path) -> list[str]:
    anchors = queries[:n_anchor]
    log(f"[{kind}] opspoor")
    ours, note = run_opspoor(hay, queries, anchors, workdir)
    log(f"[{kind}] FAISS IndexBinaryFlat")
    flat = run_faiss("FAISS IndexBinaryFlat", lambda: faiss.IndexBinaryFlat(256), hay, anchors)
    log(f"[{kind}] FAISS IndexBinaryMultiHash(256, 16, 16), nflip=1")
    hma = run_faiss("FAISS IndexBinaryMultiHash(256,16,16) nflip=1 (HMA)", lambda: _multihash(), hay, anchors)
    truth = flat.pairs
    lines = [
        f"**{kind}** (N = {len(hay):,}; {len(queries):,} queries, FAISS on the first {n_anchor:,}; "
        f"{len(truth):,} matches within {RADIUS} on those, "
        f"{len({q for q, _, _ in truth}):,} queries with one)",
        "",
        "| index | queries/s (anchor set) | recall vs flat | bytes/hash | build s | load s |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in (flat, hma, ours):
        recall = len(r.pairs & truth) / max(1, len(truth))
        extra = len(r.pairs - truth)
        rec = f"{recall:.4f}" + (f" (+{extra} not in flat)" if extra else "")
        load = "-" if r.load_s is None else f"{r.load_s:.2f}"
        qps = f"{r.qps['anchors']:,.0f}"
        lines.append(f"| {r.name} | {qps} | {rec} | {r.bytes_per_hash:.1f} | {r.build_s:.1f} | {load} |")
    speedup = ours.qps["anchors"] / hma.qps["anchors"]
    exact = ours.pairs == truth
    lines += [
        "",
        f"opspoor on all {len(queries):,} queries: {ours.qps['all']:,.0f} queries/s in memory, "
        f"{ours.qps['all, after load']:,.0f} queries/s memory-mapped after load; "
        f"dihedral (8 variants a query): {ours.qps['dihedral']:,.0f} queries/s. Layout {note}.",
        f"Speed ratio to HMA's configuration: **{speedup:.1f}x** (goal >= {GOAL_SPEEDUP:.0f}x: "
        f"{'met' if speedup >= GOAL_SPEEDUP else 'NOT met'}); bytes/hash {ours.bytes_per_hash:.1f} (goal <= "
        f"{GOAL_BYTES:.0f}: {'met' if ours.bytes_per_hash <= GOAL_BYTES else 'NOT met'}); "
        f"results identical to the flat search: {'yes' if exact else 'NO'}.",
        "",
    ]
    return lines


def _multihash() -> faiss.IndexBinary:
    index = faiss.IndexBinaryMultiHash(256, 16, 16)
    index.nflip = 1
    return index


def bench_exact(n: int, nq: int, workdir: Path) -> list[str]:
    log(f"[exact] {n:,} MD5 keys, {nq:,} lookups")
    rng = np.random.default_rng(5)
    keys = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    build_s, index = timed(ExactIndex.build, keys, np.arange(n), THREADS)
    seg = index.snapshot().base
    key_bytes = (seg.prefix.nbytes + seg.rest.nbytes + seg.offsets.nbytes) / n
    absent = rng.integers(0, 256, (nq - nq // 2, 16), np.uint8)
    queries = np.concatenate([keys[rng.integers(0, n, nq // 2)], absent])
    index.lookup(queries[:1000])
    t, hits = timed(index.lookup, queries)
    found = len(np.unique(hits.query_idx))
    path = workdir / "exact"
    index.save(path)
    del index, seg
    gc.collect()
    load_s, loaded = timed(ExactIndex.load, path)
    loaded.threads = THREADS
    loaded.lookup(queries[:1000])
    t2, _ = timed(loaded.lookup, queries)
    shutil.rmtree(path, ignore_errors=True)
    return [
        f"**exact** (MD5): {nq:,} lookups against {n:,} keys in {t:.2f} s ({nq / t:,.0f}/s; goal for 1M vs "
        f"50M: < 2 s), {t2:.2f} s memory-mapped after load; "
        f"{found:,} queries found (of {nq // 2:,} present); "
        f"{key_bytes:.1f} bytes per key without ids = {key_bytes / 16:.2f}x the raw key (goal <= 1.5x), "
        f"+8 per id; build {build_s:.1f} s, load {load_s:.2f} s.",
        "",
    ]


def run(n: int, nq: int, n_anchor: int, exact_n: int, exact_q: int, kinds: list[str]) -> str:
    faiss.omp_set_num_threads(THREADS)
    rng = np.random.default_rng(2024)
    seeds, seed_note = photo_seeds() if "clustered" in kinds else (np.zeros((1, 4), np.uint64), "")
    lines = [
        f"Setup: {cpu_model()}, {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB; "
        f"{THREADS} threads for every index; NumPy {np.__version__}, FAISS {faiss.__version__}; "
        f"N = {n:,}, {nq:,} queries, radius {RADIUS}."
        + (f" Clustered seeds: {seed_note}." if seed_note else ""),
        "",
    ]
    cache = ROOT / ".cache"
    cache.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache, prefix="bench-index-") as tmp:
        for kind in kinds:
            log(f"[{kind}] generating {n:,} hashes")
            if kind == "uniform":
                hay = uniform_data(n, rng)
                queries = make_queries(hay, nq, rng, lambda k: uniform_data(k, rng))
            else:
                hay = clustered_data(n, seeds, rng)
                queries = make_queries(hay, nq, rng, lambda k: new_centres(k, seeds, rng))
            lines += bench_kind(kind, hay, queries, min(n_anchor, nq), Path(tmp))
            del hay, queries
            gc.collect()
        if exact_n:
            lines += bench_exact(exact_n, exact_q, Path(tmp))
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000_000, help="hashes in the haystack (default 10M)")
    ap.add_argument("--queries", type=int, default=10_000)
    ap.add_argument("--anchor-queries", type=int, default=1000, help="queries given to the FAISS indexes")
    ap.add_argument("--exact-n", type=int, default=50_000_000, help="keys in the exact index (0: skip)")
    ap.add_argument("--exact-queries", type=int, default=1_000_000)
    ap.add_argument("--kinds", default="uniform,clustered")
    ap.add_argument("--quick", action="store_true", help="N = 200k, 50k exact keys: checks the script")
    ap.add_argument("--out", type=Path, help="also write the markdown to this file")
    args = ap.parse_args()
    if args.quick:
        args.n, args.exact_n, args.exact_queries = 200_000, 50_000, 100_000
    text = run(
        args.n, args.queries, args.anchor_queries, args.exact_n, args.exact_queries, args.kinds.split(",")
    )
    print_report(text, args.out)


if __name__ == "__main__":
    main()
