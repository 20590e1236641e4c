"""What the scan's robust query hashes cost per image, and what keeping the first decode saves.

Border, pad and embedded regions are hashed from a larger picture of the same file
(``signals.robust.region_lumas``). That picture was a second decode of the file; now the pixels the
first decode loaded are kept (``decode_image(keep=True)``) and the regions cut from them whenever a
second decode would draft the same pixels (``LoadedPixels.fit``). On the same files, in one
process, interleaved, it times (CPU time per file, median of the rounds):

  anchor: decode + plain PDQ (``--robust off``);
  <preset>, second decode: decode + ``query_hashes`` with ``detail=redecoder(data)`` (before);
  <preset>, kept pixels:   ``decode_image(keep=True)`` + ``redecoder(data, loaded=...)`` (now);

for the presets ``fast`` (dihedral, borders, low-quality: the scan's default) and ``full`` (+
embedded pictures), on three layouts of the benchmark photos: as they come, letterboxed 10 %
black, and inside a desktop screenshot (both made from the photo brought to fit 2,048 px and saved
as JPEG quality 90, as a scan would meet them). It checks that both ways give the same hashes.

Usage: ``python bench/robust_cost.py [--n 40] [--rounds 3] [--out FILE]``.
"""

from __future__ import annotations

import argparse
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

from corpus import describe, photo_corpus  # noqa: E402
from opspoor.evaluate.transforms import Transform, apply_transform, default_suite, jpeg  # noqa: E402
from opspoor.media.image import decode_image, redecoder  # noqa: E402
from opspoor.signals.pdq import pdq_hash_image  # noqa: E402
from opspoor.signals.robust import LOW_QUALITY_DISTANCE, query_hashes  # noqa: E402
from setup_info import setup_line  # noqa: E402

LAYOUTS = ("as they come", "letterbox 10% black", "screenshot desktop")
PRESETS = {"fast": False, "full": True}  # preset -> embedded pictures searched too


def layout_files(photos: list[Path], layout: str) -> list[bytes]:
    if layout == "as they come":
        return [p.read_bytes() for p in photos]
    t = next(t for t in default_suite() if t.name == layout)
    as_jpeg = Transform(t.name, t.family, (*t.steps, jpeg(90)))
    out = []
    for i, p in enumerate(photos):
        with Image.open(p) as im:
            img = im.convert("RGB")
        img.thumbnail((2048, 2048), Image.Resampling.LANCZOS)
        out.append(apply_transform(as_jpeg, img, np.random.default_rng(i)))
    return out


def anchor(data: bytes) -> list[str]:
    return [pdq_hash_image(decode_image(data)).hash]


def robust(embedded: bool, keep: bool) -> Callable[[bytes], list[str]]:
    def run(data: bytes) -> list[str]:
        img = decode_image(data, keep=keep)
        hashes = query_hashes(
            img.rgb,
            embedded=embedded,
            low_quality_distance=LOW_QUALITY_DISTANCE,
            detail=redecoder(data, loaded=img.loaded),
        )
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
        "| layout | run | CPU ms per file | hashes per file | x anchor | kept / second decode |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    same = True
    for layout in LAYOUTS:
        files = layout_files(photos, layout)
        runs: dict[str, Callable[[bytes], list[str]]] = {"anchor (plain PDQ)": anchor}
        for preset, embedded in PRESETS.items():
            runs[f"{preset}, second decode"] = robust(embedded, keep=False)
            runs[f"{preset}, kept pixels"] = robust(embedded, keep=True)
        for fn in runs.values():  # warm up: compiled kernels, caches
            fn(files[0])
        times: dict[str, list[float]] = {name: [] for name in runs}
        hashes: dict[str, list[list[str]]] = {}
        for _ in range(a.rounds):  # interleaved, so drift of the machine touches every run alike
            for name, fn in runs.items():
                ms, hashes[name] = cpu_ms_per_file(fn, files)
                times[name].append(ms)
        for preset in PRESETS:
            same &= hashes[f"{preset}, second decode"] == hashes[f"{preset}, kept pixels"]
        base = statistics.median(times["anchor (plain PDQ)"])
        for name in runs:
            ms = statistics.median(times[name])
            per = statistics.mean(len(h) for h in hashes[name])
            ratio = ""
            if name.endswith("kept pixels"):
                before = statistics.median(times[name.replace("kept pixels", "second decode")])
                ratio = f"{ms / before:.2f}"
            lines.append(f"| {layout} | {name} | {ms:.1f} | {per:.1f} | {ms / base:.2f} | {ratio} |")
    lines += ["", f"hashes identical both ways: {'yes' if same else 'NO'}"]
    text = "\n".join(lines)
    print(text)
    if a.out:
        a.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
