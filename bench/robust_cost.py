"""What the scan's robust query hashes cost per image, now and with the region scaling before it.

Border, pad and embedded regions are hashed from a larger picture of the same file
(``signals.robust.region_lumas``). Before 2026-12-06 that picture was a second decode of the file
and each region was scaled in RGB; now the pixels the first decode loaded are kept
(``decode_image(keep=True)``, used whenever a second decode would draft the same pixels) and each
region is scaled as one luma channel. On the same files, in one process, interleaved rounds, it
times (CPU time per file, median of the rounds):

  anchor:            decode + plain PDQ (``--robust off``);
  <preset>, before:  decode + ``query_hashes``, regions from a second decode scaled in RGB (the
                     implementation before, kept below as this benchmark's reference);
  <preset>, now:     ``decode_with_detail`` + ``query_hashes``, as the scan's worker does;

for the presets ``fast`` (dihedral, borders, low-quality: the scan's default) and ``full`` (+
embedded pictures), on three layouts of the benchmark photos: as they come (JPEG), letterboxed 10 %
black (JPEG quality 90) and inside a desktop screenshot (PNG, as screenshots are saved), both made
from the photo brought to fit 2,048 px. It prints how many hashes differ between before and now
(only by the 8-bit rounding of RGB, which the luma scaling skips).

Usage: ``python bench/robust_cost.py [--n 40] [--rounds 3] [--out FILE]``.
"""

from __future__ import annotations

import argparse
import io
import math
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

import opspoor.signals.robust as robust_mod  # noqa: E402
from corpus import describe, photo_corpus  # noqa: E402
from opspoor.errors import OpspoorError  # noqa: E402
from opspoor.evaluate.transforms import Transform, apply_transform, default_suite  # noqa: E402
from opspoor.media.image import PDQ_TARGET, decode_image, decode_with_detail, fit_within, redecoder  # noqa: E402
from opspoor.signals.pdq import PDQ, pdq_hash_image, pdq_luma  # noqa: E402
from opspoor.signals.robust import CANONICAL_REGIONS, LOW_QUALITY_DISTANCE, MAX_DETAIL, query_hashes  # noqa: E402
from setup_info import print_report, setup_line  # noqa: E402

#: layout -> (transform of the suite, format written)
LAYOUTS = {
    "as they come": (None, "JPEG"),
    "letterbox 10% black": ("letterbox 10% black", "JPEG"),
    "screenshot desktop": ("screenshot desktop", "PNG"),
}
PRESETS = {"fast": False, "full": True}  # preset -> embedded pictures searched too


def saved_as(fmt: str) -> Callable[[Image.Image, np.random.Generator], bytes]:
    def step(img: Image.Image, rng: np.random.Generator) -> bytes:
        buf = io.BytesIO()
        img.save(buf, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
        return buf.getvalue()

    return step


def layout_files(photos: list[Path], layout: str) -> list[bytes]:
    name, fmt = LAYOUTS[layout]
    if name is None:
        return [p.read_bytes() for p in photos]
    t = next(t for t in default_suite() if t.name == name)
    written = Transform(t.name, t.family, (*t.steps, saved_as(fmt)))
    out = []
    for i, p in enumerate(photos):
        with Image.open(p) as im:
            img = im.convert("RGB")
        img.thumbnail((2048, 2048), Image.Resampling.LANCZOS)
        out.append(apply_transform(written, img, np.random.default_rng(i)))
    return out


def region_lumas_before(rgb, regions, detail=None):  # type: ignore[no-untyped-def]
    """``signals.robust.region_lumas`` as it was before 2026-12-06: each region cut from the
    larger picture and scaled in RGB, then its luma (the reference this benchmark compares with)."""
    whole = pdq_luma(rgb)
    out = [np.ascontiguousarray(whole[b[1] : b[3], b[0] : b[2]]) for _, b in regions]
    height, width = rgb.shape[:2]
    cut = [i for i, (region, _) in enumerate(regions) if region not in CANONICAL_REGIONS]
    if detail is None or not cut or max(height, width) < PDQ_TARGET:
        return out
    need = max(max(width / (b[2] - b[0]), height / (b[3] - b[1])) for b in (regions[i][1] for i in cut))
    try:
        big = detail(min(MAX_DETAIL, math.ceil(PDQ_TARGET * need)))
    except OpspoorError:
        return out
    if big.shape[0] <= height or big.shape[1] <= width:
        return out
    sx, sy = big.shape[1] / width, big.shape[0] / height
    for i in cut:
        x0, y0, x1, y1 = regions[i][1]
        piece = Image.fromarray(
            np.ascontiguousarray(big[round(y0 * sy) : round(y1 * sy), round(x0 * sx) : round(x1 * sx)])
        )
        size = fit_within(piece.width, piece.height, PDQ_TARGET)
        if size != piece.size:
            piece = piece.resize(size, Image.Resampling.BICUBIC, reducing_gap=2.0)
        out[i] = pdq_luma(np.asarray(piece))
    return out


NOW = robust_mod.region_lumas


def anchor(data: bytes) -> list[str]:
    return [pdq_hash_image(decode_image(data)).hash]


def robust(embedded: bool, before: bool) -> Callable[[bytes], list[str]]:
    def run(data: bytes) -> list[str]:
        if before:
            img, detail = decode_image(data), redecoder(data)
        else:
            img, detail = decode_with_detail(data)
        robust_mod.region_lumas = region_lumas_before if before else NOW  # type: ignore[assignment]
        try:
            hashes = query_hashes(
                img.rgb, embedded=embedded, low_quality_distance=LOW_QUALITY_DISTANCE, detail=detail
            )
        finally:
            robust_mod.region_lumas = NOW  # type: ignore[assignment]
        return [h.hash for h in hashes]

    return run


def cpu_ms_per_file(fn: Callable[[bytes], list[str]], files: list[bytes]) -> tuple[float, list[list[str]]]:
    start = time.process_time()
    out = [fn(d) for d in files]
    return 1000 * (time.process_time() - start) / len(files), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=40, help="photos (spread over the corpus)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", type=Path, help="also write the report here")
    a = ap.parse_args()
    corpus = photo_corpus()
    photos = corpus[:: max(1, len(corpus) // a.n)][: a.n]
    lines = [f"setup: {setup_line()}", f"corpus: {describe(photos)}; {a.rounds} rounds, one process"]
    lines += [
        "",
        "| layout | run | CPU ms per file | hashes per file | x anchor | now / before |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    changed = total = widest = 0
    for layout in LAYOUTS:
        files = layout_files(photos, layout)
        runs: dict[str, Callable[[bytes], list[str]]] = {"anchor (plain PDQ)": anchor}
        for preset, embedded in PRESETS.items():
            runs[f"{preset}, before"] = robust(embedded, before=True)
            runs[f"{preset}, now"] = robust(embedded, before=False)
        for fn in runs.values():  # warm up: compiled kernels, caches
            fn(files[0])
        times: dict[str, list[float]] = {name: [] for name in runs}
        hashes: dict[str, list[list[str]]] = {}
        for _ in range(a.rounds):  # interleaved, so drift of the machine touches every run alike
            for name, fn in runs.items():
                ms, hashes[name] = cpu_ms_per_file(fn, files)
                times[name].append(ms)
        for preset in PRESETS:
            for old_h, new_h in zip(hashes[f"{preset}, before"], hashes[f"{preset}, now"], strict=True):
                total += 1
                changed += old_h != new_h
                if len(old_h) == len(new_h):  # the same regions: compare hash by hash
                    widest = max([widest, *(PDQ.distance(a, b) for a, b in zip(old_h, new_h, strict=True))])
        base = statistics.median(times["anchor (plain PDQ)"])
        for name in runs:
            ms = statistics.median(times[name])
            per = statistics.mean(len(h) for h in hashes[name])
            ratio = ""
            if name.endswith(", now"):
                ratio = f"{ms / statistics.median(times[name.replace(', now', ', before')]):.2f}"
            lines.append(f"| {layout} | {name} | {ms:.1f} | {per:.1f} | {ms / base:.2f} | {ratio} |")
    lines += [
        "",
        f"files whose query hashes differ between before and now: {changed} of {total} "
        f"(at most {widest} bits apart, hash by hash)",
    ]
    text = "\n".join(lines)
    print_report(text, a.out)


if __name__ == "__main__":
    main()
