"""16-bit grey PNGs: opspoor's PDQ against python-threatexchange's, with and without ``clip16``.

python-threatexchange (and HMA, which uses it) hashes a 16-bit grey image (Pillow mode ``I;16``)
by ``convert("RGB")``, which clips every value above 255 to white; opspoor's canonical pipeline
keeps the high byte. For generated benign pictures stored three ways as 16-bit PNGs (8-bit values
times 257: the full range; times 4; times 1: 8-bit values in a 16-bit file), it prints the
distance of opspoor's plain PDQ to theirs, whether the ``clip16`` query hash was made (it is left
out when weak, as other extra hashes are) and its distance to theirs, and their quality (HMA
drops a hash below 50). Needs the ``threatexchange`` package (the test extra).

Usage: ``python bench/sixteen_bit.py [--n 40]``.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from threatexchange.signal_type.pdq.pdq_hasher import pdq_from_bytes  # noqa: E402

from opspoor.demo.images import generate_image  # noqa: E402
from opspoor.signals.engine import ROBUST_PRESETS, HashOptions, hash_bytes  # noqa: E402
from opspoor.signals.pdq import PDQ  # noqa: E402

SCALES = ((257, "full range (x257)"), (4, "values up to 1,020 (x4)"), (1, "8-bit values (x1)"))


def png16(seed: int, scale: int) -> bytes:
    grey = np.asarray(generate_image(seed, 640, 480).convert("L")).astype(np.uint32)
    buf = io.BytesIO()
    Image.fromarray(np.clip(grey * scale, 0, 65535).astype(np.uint16)).save(buf, "PNG")
    return buf.getvalue()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=40)
    args = ap.parse_args()
    options = HashOptions(robust=ROBUST_PRESETS["fast"])
    print(f"{args.n} generated pictures per row; distances to python-threatexchange's PDQ")
    print(
        "| stored as | their quality (median) | plain PDQ: median distance, within 31 | clip16 made | "
        "clip16 within 31 | their hash kept by HMA (quality >= 50) | of those, found by clip16 |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for scale, label in SCALES:
        plain, clipped, quality, found = [], [], [], 0
        for seed in range(args.n):
            data = png16(seed, scale)
            theirs, q = pdq_from_bytes(data)
            sig = hash_bytes(data, options=options)
            plain.append(PDQ.distance(sig.pdq, theirs))
            made = [v[0] for v in sig.pdq_variants or [] if v[1] == "clip16"]
            clipped.extend(PDQ.distance(h, theirs) for h in made)
            quality.append(q)
            found += q >= 50 and any(PDQ.distance(h, theirs) <= 31 for h in made)
        kept = sum(q >= 50 for q in quality)
        print(
            f"| {label} | {statistics.median(quality):.0f} | {statistics.median(plain):.0f}, "
            f"{sum(d <= 31 for d in plain)} | {len(clipped)} | {sum(d <= 31 for d in clipped)} | "
            f"{kept} | {found} |"
        )


if __name__ == "__main__":
    main()
