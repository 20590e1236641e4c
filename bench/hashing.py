"""PDQ hashing speed and agreement on benign photos (see docs/pdq.md and docs/benchmarks.md).

On the same files, in one process (numbers are per core), it times:
  (a) python-threatexchange's path, the anchor: Pillow full decode + ``pdqhash.compute`` on the full image;
  (b) Meta's Python port's style: ``thumbnail((512, 512))`` + ``pdqhash.compute``;
  (c) opspoor PDQ: ``decode_image`` + ``pdq_hash_image`` on the bytes read from disk;
  (d) (c) plus MD5, SHA-1 and SHA-256 of the same bytes (one read);
and prints the Hamming distance of (c) to PDQ at full resolution (a) and to the C++ tool's
nearest-neighbour 512x512 pre-scale, and of (b) to (a) for comparison.

Usage: ``python bench/hashing.py [--quick] [--n N] [--out FILE]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

import numpy as np  # noqa: E402
import pdqhash  # noqa: E402
from PIL import Image  # noqa: E402

from corpus import describe, photo_corpus  # noqa: E402
from opspoor.media.digests import digest_bytes  # noqa: E402
from opspoor.media.image import decode_image  # noqa: E402
from opspoor.signals.pdq import PDQ, pdq_from_rgb, pdq_hash_image  # noqa: E402
from setup_info import cpu_model  # noqa: E402

GOALS = {"c/a": 8.0, "c/b": 1.5, "d/a": 6.0}


def _hex(vector: np.ndarray) -> str:
    return np.packbits(np.asarray(vector, dtype=np.uint8)).tobytes().hex()


def full_resolution(path: Path) -> str:
    """(a) what python-threatexchange (and so HMA) computes."""
    with Image.open(path) as im:
        rgb = np.asarray(im.convert("RGB"))
    return _hex(pdqhash.compute(rgb)[0])


def python_port(path: Path) -> str:
    """(b) Meta's Python port's pre-scale: Pillow thumbnail((512, 512))."""
    with Image.open(path) as im:
        im.thumbnail((512, 512))
        rgb = np.asarray(im.convert("RGB"))
    return _hex(pdqhash.compute(rgb)[0])


def cpp_tool(path: Path) -> str:
    """The C++ tool's pre-scale (pdqio.cpp): CImg nearest neighbour to 512x512, aspect ratio not kept."""
    with Image.open(path) as im:
        rgb = np.asarray(im.convert("RGB"))
    h, w = rgb.shape[:2]
    if h > 512 or w > 512:  # CImg's nearest neighbour samples at floor(i * old / new)
        rgb = rgb[(np.arange(512) * h) // 512][:, (np.arange(512) * w) // 512]
    return _hex(pdqhash.compute(np.ascontiguousarray(rgb))[0])


def opspoor_pdq(path: Path) -> str:
    """(c)"""
    data = path.read_bytes()
    return pdq_hash_image(decode_image(data, where=str(path))).hash


def opspoor_pdq_and_digests(path: Path) -> str:
    """(d)"""
    data = path.read_bytes()
    digest_bytes(data)
    return pdq_hash_image(decode_image(data, where=str(path))).hash


@dataclass
class Timing:
    label: str
    seconds: float
    hashes: list[str]

    def rate(self) -> float:
        return len(self.hashes) / self.seconds


def timed(label: str, fn: Callable[[Path], str], paths: list[Path]) -> Timing:
    fn(paths[0])  # warm up (numba cache load, libraries)
    t0 = time.perf_counter()
    out = [fn(p) for p in paths]
    return Timing(label, time.perf_counter() - t0, out)


def distances(a: list[str], b: list[str]) -> tuple[float, int]:
    d = [PDQ.distance(x, y) for x, y in zip(a, b, strict=True)]
    return statistics.fmean(d), max(d)


def run(n: int) -> str:
    corpus = photo_corpus(max(n, 300))
    paths = corpus[:: max(1, len(corpus) // n)][:n]  # a spread: the corpus is sorted by size
    warnings.simplefilter("ignore")  # Pillow per-file warnings would only clutter the table
    pdq_from_rgb(np.zeros((64, 64, 3), np.uint8))
    runs = [
        timed(
            "(a) Pillow full decode + pdqhash.compute (python-threatexchange, HMA)", full_resolution, paths
        ),
        timed("(b) thumbnail((512, 512)) + pdqhash.compute (Meta's Python port)", python_port, paths),
        timed("(c) opspoor PDQ (decode_image + pdq_hash_image)", opspoor_pdq, paths),
        timed("(d) opspoor PDQ + MD5 + SHA-1 + SHA-256, one read", opspoor_pdq_and_digests, paths),
    ]
    a, b, c, d = runs
    cpp = [cpp_tool(p) for p in paths]
    ratios = {"c/a": c.rate() / a.rate(), "c/b": c.rate() / b.rate(), "d/a": d.rate() / a.rate()}
    lines = [
        f"Setup: {cpu_model()}, {os.cpu_count()} cores (one process, so rates are per core); "
        f"Python {platform.python_version()}, NumPy {np.__version__}, Pillow {Image.__version__}; "
        f"{describe(paths)}.",
        "",
        "| pipeline | images/s per core | ratio to (a) |",
        "| --- | ---: | ---: |",
    ]
    for r in runs:
        lines.append(f"| {r.label} | {r.rate():.2f} | {r.rate() / a.rate():.1f}x |")
    lines += ["", "| ratio | measured | goal |", "| --- | ---: | ---: |"]
    for k, v in ratios.items():
        lines.append(
            f"| ({k[0]})/({k[2]}) | {v:.2f}x | >= {GOALS[k]:.1f}x {'met' if v >= GOALS[k] else 'NOT met'} |"
        )
    lines += ["", "| Hamming distance | mean | max |", "| --- | ---: | ---: |"]
    for label, x, y in [
        ("(c) opspoor to (a) full-resolution PDQ", c.hashes, a.hashes),
        ("(c) opspoor to the C++ tool's nearest-neighbour 512x512", c.hashes, cpp),
        ("(c) opspoor to (b) thumbnail + pdqhash", c.hashes, b.hashes),
        ("(b) thumbnail + pdqhash to (a) full resolution", b.hashes, a.hashes),
    ]:
        mean, mx = distances(x, y)
        lines.append(f"| {label} | {mean:.1f} | {mx} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke run on 30 photos")
    ap.add_argument("--n", type=int, default=300, help="number of photos (default 300)")
    ap.add_argument("--out", type=Path, help="also write the markdown table to this file")
    args = ap.parse_args()
    table = run(30 if args.quick else args.n)
    print(table)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(table)


if __name__ == "__main__":
    main()
