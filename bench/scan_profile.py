"""Where a scan worker's time per image goes (see docs/benchmarks.md, "Triage scan").

Runs the scan's per-file work (``triage.worker.run_task``: one read, digests, decode, PDQ, the
robust query hashes, EXIF, thumbnail) in one process under cProfile, with the scan's default
options, on ``--n`` photos spread over the benchmark corpus, and prints the time per image of each
stage; then times matching the resulting records against a set of ``--entries`` random entries
(built in memory, no store).

Usage: ``python bench/scan_profile.py [--n 100] [--robust fast] [--entries 1000000]``.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

import numpy as np  # noqa: E402

from corpus import describe, photo_corpus  # noqa: E402
from opspoor.index import ExactIndex, HammingIndex  # noqa: E402
from opspoor.matching import IndexGroup, Query  # noqa: E402
from opspoor.matching.groups import _Prepared  # noqa: E402
from opspoor.signals.engine import ROBUST_PRESETS, HashOptions  # noqa: E402
from opspoor.triage.worker import Task, run_task, warm_up  # noqa: E402
from setup_info import setup_line  # noqa: E402

#: (stage, function as pstats names it: file suffix, name); cumulative time of each
STAGES = (
    ("whole per-file work (run_task)", "triage/worker.py", "run_task"),
    ("  read the file", "engine.py", "_read_up_to"),
    ("  MD5 + SHA-1 + SHA-256", "media/digests.py", "digest_bytes"),
    ("  decode to RGB <= 512 px (incl. EXIF)", "media/image.py", "decode_image"),
    ("    of which EXIF", "media/exif.py", "read_exif"),
    ("  plain PDQ (canonical pipeline)", "signals/pdq.py", "pdq_hash_image"),
    ("  robust query hashes (query_hashes)", "signals/robust.py", "query_hashes"),
    ("    border search (query_regions)", "signals/robust.py", "query_regions"),
    ("    PDQ luma of the image (pdq_luma)", "signals/pdq.py", "pdq_luma"),
    ("    PDQ of each region (hash_luma)", "signals/pdq.py", "hash_luma"),
    ("    PDQ of its 7 turns (LumaPdq.turns)", "signals/pdq.py", "turns"),
    ("    in both: Jarosz first row pass", "signals/pdq.py", "_first_pass"),
    ("    in both: rest of the filter + decimation", "signals/pdq.py", "_after_first_pass"),
    ("    in both: DCT", "signals/pdq.py", "_dct64_to_16"),
    ("  thumbnail (blurred, grayscale)", "media/thumbs.py", "safe_thumbnail"),
    ("  record as JSON (incl. EXIF fields)", "triage/worker.py", "signals_json"),
)


def profile_hashing(paths: list[Path], options: HashOptions) -> tuple[pstats.Stats, float, list[dict]]:
    warm_up()
    run_task(Task(0, "warm", str(paths[0]), None, paths[0].stat().st_size), options)
    prof = cProfile.Profile()
    records = []
    t = time.perf_counter()
    prof.enable()
    for i, p in enumerate(paths):
        records.append(run_task(Task(i, p.name, str(p), None, p.stat().st_size), options)[2])
    prof.disable()
    wall = time.perf_counter() - t
    return pstats.Stats(prof), wall, records


def cumulative(stats: pstats.Stats, suffix: str, name: str) -> tuple[float, int]:
    total, calls = 0.0, 0
    for (file, _, func), (_, ncalls, _, ct, _) in stats.stats.items():  # type: ignore[attr-defined]
        if func == name and file.endswith(suffix):
            total += ct
            calls += ncalls
    return total, calls


def random_group(n: int) -> IndexGroup:
    """An index group like a set of ``n`` entries with MD5 and PDQ (random values)."""
    rng = np.random.default_rng(1)
    ids = np.arange(1, n + 1, dtype=np.int64)
    group = IndexGroup()
    group.exact["md5"] = ExactIndex.build(rng.integers(0, 256, (n, 16), dtype=np.uint8), ids)
    group.pdq = HammingIndex.build(rng.integers(0, 2**63, (n, 4), dtype=np.uint64), ids)
    return group


def time_matching(records: list[dict], entries: int) -> tuple[float, int]:
    """Seconds to search the records' queries in the indexes of an ``entries``-entry set."""
    group = random_group(entries)
    queries = [Query.from_signals(r) for r in records]
    prepared = _Prepared.of(queries)
    hits: list[int] = []
    group.find(prepared, 31, lambda *a: hits.append(1))  # first search: page in the index
    t = time.perf_counter()
    group.find(_Prepared.of(queries), 31, lambda *a: hits.append(1))
    return time.perf_counter() - t, len(prepared.pdq)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100, help="photos (default 100)")
    ap.add_argument("--robust", choices=sorted(ROBUST_PRESETS), default="fast")
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--top", type=int, default=0, help="also print the N costliest functions")
    a = ap.parse_args()
    corpus = photo_corpus(min_count=a.n)
    photos = corpus[:: max(1, len(corpus) // a.n)][: a.n]  # spread over the corpus (it is sorted by size)
    options = HashOptions(robust=ROBUST_PRESETS[a.robust], thumbnail=True)
    stats, wall, records = profile_hashing(photos, options)
    n = len(photos)
    print(f"setup: {setup_line()}")
    print(f"corpus: {describe(photos)}; scan options: --robust {a.robust}, thumbnails; one process, cProfile")
    print()
    print("| stage | ms per image | calls per image |")
    print("| --- | ---: | ---: |")
    for label, suffix, name in STAGES:
        ct, calls = cumulative(stats, suffix, name)
        print(f"| {label} | {1000 * ct / n:.1f} | {calls / n:.1f} |")
    print(f"| (wall time, profiled) | {1000 * wall / n:.1f} | |")
    seconds, nq = time_matching(records, a.entries)
    print(
        f"| matching in the main process ({nq / n:.1f} PDQ queries per image, {a.entries:,} entries) "
        f"| {1000 * seconds / n:.2f} | |"
    )
    if a.top:
        print()
        stats.sort_stats("tottime").print_stats(a.top)


if __name__ == "__main__":
    main()
