"""Recall of the default scan's border query hashes on JPEG copies: regions cut from the pixels of
the one decode (issue 25) against regions cut from a second, larger decode (before).

The recall evaluation of docs/robustness.md writes its pads and letterboxes as BMP, whose first
decode loads every pixel: the change of issue 25 (a JPEG is never decoded a second time for its
regions; a region that would want more pixels than the DCT scale drafted for 512 gives is cut
from those) does not reach it. Here the same 8 pad / letterbox transforms of the suite are written
as JPEG quality 90, from each of ``--n`` photos spread over the benchmark corpus at three sizes (as
they come, fit 2,048 and fit 1,280 px: different DCT scales). Each copy is hashed with the scan's
default query hashes (``--robust fast``: turns, borders, low-quality) both ways; its distance is
the smallest between any of its hashes and the plain PDQ of the original (the original at that
size written as JPEG quality 90, hashed as a scan hashes it), a low-quality hash counting only
within its own ``max_distance``. Printed per transform: copies matched within 31 both ways, and
how many copies the one decode served with fewer pixels than the second decode had.

Usage: ``python bench/region_recall.py [--n 40] [--out FILE]``.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from corpus import describe, photo_corpus  # noqa: E402
from opspoor.evaluate.transforms import Transform, apply_transform, default_suite  # noqa: E402
from opspoor.media.image import Redecode, decode_image, decode_with_detail, redecoder  # noqa: E402
from opspoor.signals.pdq import PDQ, pdq_hash_image  # noqa: E402
from opspoor.signals.robust import LOW_QUALITY_DISTANCE, QueryHash, query_hashes  # noqa: E402
from setup_info import print_report, setup_line  # noqa: E402

THRESHOLD = 31
SIZES = (None, 2048, 1280)  # None: the photo as it comes


def jpeg(img: Image.Image, rng: np.random.Generator | None = None) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def fast(rgb: np.ndarray, detail: Redecode) -> list[QueryHash]:
    return query_hashes(rgb, embedded=False, low_quality_distance=LOW_QUALITY_DISTANCE, detail=detail)


def distance(hashes: list[QueryHash], known: str) -> int:
    return min(
        (d for q in hashes if (d := PDQ.distance(q.hash, known)) <= (q.max_distance or THRESHOLD)),
        default=256,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=40, help="photos (spread over the corpus)")
    ap.add_argument("--out", type=Path, help="also write the report here")
    a = ap.parse_args()
    corpus = photo_corpus()
    photos = corpus[:: max(1, len(corpus) // a.n)][: a.n]
    # the suite's pads and letterboxes, written as JPEG instead of BMP
    suite = [Transform(t.name, t.family, (*t.steps, jpeg)) for t in default_suite() if t.family == "pad"]
    found: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    dist: dict[str, list[int]] = defaultdict(list)
    for i, p in enumerate(photos):
        with Image.open(p) as im:
            whole = im.convert("RGB")
        for size in SIZES:
            img = whole.copy()
            if size is not None:
                img.thumbnail((size, size), Image.Resampling.LANCZOS)
            known = pdq_hash_image(decode_image(jpeg(img))).hash
            for t in suite:
                data = apply_transform(t, img, np.random.default_rng([i, size or 0]))
                one, detail = decode_with_detail(data)
                asked: list[int] = []

                def watched(target: int, detail: Redecode = detail, asked: list[int] = asked) -> np.ndarray:
                    asked.append(target)
                    return detail(target)

                d_one = distance(fast(one.rgb, watched), known)
                d_two = distance(fast(decode_image(data).rgb, redecoder(data)), known)
                row = found[t.name]
                row["copies"] += 1
                row["one"] += d_one <= THRESHOLD
                row["two"] += d_two <= THRESHOLD
                assert one.loaded is not None
                row["fewer"] += any(one.loaded.fit(target) is None for target in asked)
                dist["one"].append(min(d_one, 64))
                dist["two"].append(min(d_two, 64))
        print(f"{i + 1}/{len(photos)}", file=sys.stderr, flush=True)
    lines = [
        f"setup: {setup_line()}",
        f"corpus: {describe(photos)}; each at 3 sizes (as it comes, fit 2048, fit 1280), the 8 pad / "
        "letterbox transforms written as JPEG q90; --robust fast query hashes",
        "",
        "| transform | copies | matched @31, one decode | matched @31, second decode "
        "| served with fewer pixels |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    totals: dict[str, int] = defaultdict(int)
    for name, row in found.items():
        lines.append(f"| {name} | {row['copies']} | {row['one']} | {row['two']} | {row['fewer']} |")
        for k, v in row.items():
            totals[k] += v
    n = totals["copies"]
    lines.append(
        f"| **all** | {n} | **{totals['one']}** ({100 * totals['one'] / n:.1f} %) "
        f"| **{totals['two']}** ({100 * totals['two'] / n:.1f} %) | {totals['fewer']} |"
    )
    lines += [
        "",
        f"mean distance (capped at 64): one decode {statistics.mean(dist['one']):.2f}, "
        f"second decode {statistics.mean(dist['two']):.2f}",
    ]
    text = "\n".join(lines)
    print_report(text, a.out)


if __name__ == "__main__":
    main()
