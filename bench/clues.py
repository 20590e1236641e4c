"""Location clues (issue 23): language accuracy, text clues on photos without text, and what the
clues add to a scan's CPU time (docs/benchmarks.md, "Location clues").

1. ``--text`` generated pictures with text in 5 languages (Dutch, English, German, French, Spanish:
   4-10 common words, DejaVu fonts, 16-40 px, a third on generated photos, a sixth turned 90°),
   read as the scan reads them (``clues.extract.image_clues``): the language called right of
   those whose OCR kept >= 4 words, and of all.
2. The benchmark photo corpus (``bench/corpus.py``: benign Debian photos, nearly all without
   text): the share that gets any text clue (OCR words), and what the cheap text-likeness test
   and OCR cost per photo.
   The clue step is timed as the scan's worker runs it, after the hash step and on the picture
   that step decoded, split into file name, text-likeness test and OCR; and the CPU of loading
   each model once, in a fresh process (what each worker pays when it first needs it).
3. The scan's CPU time per file, with clues and with ``--no-clues`` (the anchor), in pairs whose
   order alternates, in the same run; the median of the pairs' ratios. CPU over all the scan's
   processes (each scan runs in a child process; its workers are its children), after one untimed
   scan (a fresh checkout compiles its numba kernels on its first scan). First on the corpus photos
   (the goal), then on them plus a tenth as many text pictures.

Usage: ``python bench/clues.py [--text 300] [--photos 300] [--repeat 4] [--parts 123]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))

import numpy as np  # noqa: E402

from clue_pictures import jpeg_bytes, text_picture  # noqa: E402
from corpus import describe, photo_corpus  # noqa: E402
from opspoor.clues.extract import ClueOptions, image_clues  # noqa: E402
from opspoor.clues.language import words_of  # noqa: E402
from opspoor.demo.images import generate_image  # noqa: E402
from setup_info import setup_line  # noqa: E402

#: common words per language, space-separated
WORDS = {
    "nl": "de het een en van in is dat op te zijn met voor niet aan er ook als bij maar om nog wel "
    "naar kan dan uit worden heeft hij zij wij jullie huis fiets straat water brood kinderen school "
    "morgen vandaag gisteren mooi groot klein altijd nooit",
    "en": "the and of to in is that for it with as was on be at by this have from or one had not but "
    "what all were when we there can an your which their said each house bicycle street water bread "
    "children school tomorrow today yesterday beautiful always never",
    "de": "der die und in den von zu das mit sich des auf für ist im dem nicht ein eine als auch es an "
    "werden aus er hat dass sie nach wird bei einer um am sind noch wie Haus Fahrrad Straße Wasser "
    "Brot Kinder Schule morgen heute gestern schön immer niemals",
    "fr": "le la les de des et en un une du est que pour dans qui pas sur au avec ce il elle nous vous "
    "mais ou donc car ne plus se sont maison vélo rue eau pain enfants école demain aujourd hier "
    "beau toujours jamais",
    "es": "el la los las de y en un una que es por con para no se del al lo como más pero sus le ya o "
    "este sí porque esta entre cuando casa bicicleta calle agua pan niños escuela mañana hoy ayer "
    "bonito siempre nunca",
}


STYLES = ("clouds", "gradient", "shapes")


def text_corpus(n: int, folder: Path) -> list[tuple[Path, str, int]]:
    """(path, language, words) of ``n`` generated text pictures."""
    rng = np.random.default_rng(23)
    out = []
    langs = sorted(WORDS)
    for i in range(n):
        lang = langs[i % len(langs)]
        k = int(rng.integers(4, 11))
        text = " ".join(str(w) for w in rng.choice(WORDS[lang].split(), size=k, replace=False))
        text = text[0].upper() + text[1:]
        height = int(rng.integers(16, 41))
        if i % 3 == 0:
            photo = generate_image(
                1000 + i, 1024, 768, style=["clouds", "gradient", "shapes"][i % 3 // 1 % 3]
            )
            width = max(1024, int(height * 0.62 * len(text)) + 4 * height)
            img = text_picture([text], height, (width, 768), photo)
        else:
            img = text_picture([text], height)
        if i % 6 == 1:
            img = img.rotate(90, expand=True)
        path = folder / f"text_{lang}_{i:03d}.jpg"
        path.write_bytes(jpeg_bytes(img, quality=90))
        out.append((path, lang, k))
    return out


def languages(pictures: list[tuple[Path, str, int]]) -> dict[str, float]:
    opts = ClueOptions()
    image_clues(pictures[0][0].read_bytes(), "warm.jpg", opts)  # load the models first
    right = right4 = with4 = 0
    t0 = time.process_time()
    wrong: list[str] = []
    for path, lang, _ in pictures:
        found = image_clues(path.read_bytes(), path.name, opts).clues
        text = next((c.value for c in found if c.kind == "text"), "")
        called = [c.value for c in found if c.kind == "language" and c.source == "ocr"]
        ok = called[:1] == [lang]
        right += ok
        if len(words_of(text)) >= 4:
            with4 += 1
            right4 += ok
        if not ok and len(wrong) < 5:
            wrong.append(f"{path.name}: {called} from {text!r}")
    cpu = time.process_time() - t0
    for w in wrong:
        print("  wrong:", w)
    return {
        "n": len(pictures),
        "ocr_4_words": with4,
        "right_of_4_words": right4 / max(with4, 1),
        "right_of_all": right / len(pictures),
        "cpu_ms": 1000 * cpu / len(pictures),
    }


def textless(photos: list[Path]) -> dict[str, float]:
    """Text clues on the corpus photos, and the clue step's cost per photo split up, as the scan's
    worker runs it: after the hash step, on the picture that step decoded (``FileSignals.pixels``)."""
    from opspoor.clues.filenames import filename_clues
    from opspoor.clues.textlike import grey, text_likeness
    from opspoor.signals.engine import ROBUST_PRESETS, HashOptions, hash_bytes

    opts = ClueOptions()
    hash_opts = HashOptions(robust=ROBUST_PRESETS["fast"], thumbnail=True)  # the scan's default
    datas = [p.read_bytes() for p in photos]
    cpu = {"hash": 0.0, "clues": 0.0, "names": 0.0, "test": 0.0}
    with_text = ocr_runs = 0
    examples = []
    for p, data in zip(photos, datas, strict=True):
        path = f"evidence/{p.name}"
        t0 = time.process_time()
        sig = hash_bytes(data, where=path, options=hash_opts)
        t1 = time.process_time()
        out = image_clues(lambda data=data: data, path, opts, sig.pixels)
        t2 = time.process_time()
        filename_clues(path)
        t3 = time.process_time()
        text_likeness(grey(sig.pixels)) if sig.pixels is not None else None
        t4 = time.process_time()
        cpu["hash"] += t1 - t0
        cpu["clues"] += t2 - t1
        cpu["names"] += t3 - t2
        cpu["test"] += t4 - t3
        ocr_runs += any(n.startswith("ocr") for n in out.notes)
        text = [c for c in out.clues if c.source not in ("name", "path")]  # (names are no text in it)
        if text:
            with_text += 1
            if len(examples) < 5:
                examples.append(f"{p.name}: {[c.describe() for c in text][:2]}")
    for e in examples:
        print("  text clue on a photo:", e)
    n = len(photos)
    ms = {k: 1000 * v / n for k, v in cpu.items()}
    return {
        "n": n,
        "with_text_clue": with_text,
        "ocr_runs": ocr_runs,
        "cpu_ms": ms["clues"],
        "hash_ms": ms["hash"],
        "names_ms": ms["names"],
        "test_ms": ms["test"],
        "ocr_ms": ms["clues"] - ms["names"] - ms["test"],
    }


def model_loads() -> dict[str, float]:
    """CPU seconds of loading each model in a fresh process (what a worker pays once, when it first
    needs the model)."""
    code = (
        "import sys, time, json; sys.path.insert(0, {!r})\n"
        "import opspoor.clues.extract\n"
        "t = time.process_time()\n"
        "from opspoor.clues.language import _identifier; _identifier()\n"
        "a = time.process_time() - t; t = time.process_time()\n"
        "from opspoor.clues.ocr import _engine; _engine()\n"
        "print(json.dumps({{'language': a, 'tesseract': time.process_time() - t}}))\n"
    ).format(str(ROOT / "src"))
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


SCAN = """
import json, resource, sys, time
sys.path.insert(0, {src!r})
from pathlib import Path
from opspoor.casefile.scan import scan_case
from opspoor.triage.config import ScanConfig
cfg = ScanConfig(sources=[Path({ev!r})], hashsets=["bench"], case_dir=Path({case!r}), db_url={db!r},
                 workers=2, clues={clues!r})
t = time.perf_counter()
r = scan_case(cfg)
print(json.dumps({{"wall": time.perf_counter() - t, "files": r.summary["files_in"]}}))
"""


def scan_cpu(evidence: Path, db: str, case: Path, clues: bool) -> tuple[float, float, int]:
    """(CPU seconds of the scan's processes, wall seconds, files) of one scan in a child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    code = SCAN.format(src=str(ROOT / "src"), ev=str(evidence), case=str(case), db=db, clues=clues)
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    return cpu, res["wall"], res["files"]


def scans(evidence: Path, db: str, root: Path, repeat: int, tag: str) -> dict[str, Any]:
    """``repeat`` pairs of scans, ``--no-clues`` and with clues, the order alternating; the median of
    the pairs' ratios (each pair ran back to back, under about the same load)."""
    cpu: dict[bool, list[float]] = {True: [], False: []}
    wall: dict[bool, list[float]] = {True: [], False: []}
    files = 0
    # untimed: a fresh checkout's first scan compiles the numba kernels into their cache and unpacks
    # the language model, which would land on the first pair's anchor alone
    scan_cpu(evidence, db, root / f"case-{tag}-warm", True)
    loads = [os.getloadavg()[0]]
    for r in range(repeat):
        for clues in (False, True) if r % 2 == 0 else (True, False):
            c, w, files = scan_cpu(evidence, db, root / f"case-{tag}-{r}-{clues}", clues)
            cpu[clues].append(c)
            wall[clues].append(w)
            loads.append(os.getloadavg()[0])
            name = "with clues " if clues else "--no-clues"
            print(f"   {tag}: scan {name} pair {r + 1}: {c:.1f} s CPU, {w:.1f} s wall, load {loads[-1]:.1f}")
    ratios = [b / a for a, b in zip(cpu[False], cpu[True], strict=True)]
    return {
        "files": files,
        "anchor_ms": 1000 * statistics.median(cpu[False]) / files,
        "clues_ms": 1000 * statistics.median(cpu[True]) / files,
        "ratio": statistics.median(ratios),
        "ratios": ratios,
        "wall": (statistics.median(wall[False]), statistics.median(wall[True])),
        "load": (min(loads), max(loads)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--text", type=int, default=300)
    ap.add_argument("--photos", type=int, default=300)
    ap.add_argument("--repeat", type=int, default=4, help="pairs of scans per evidence folder")
    ap.add_argument("--parts", default="123", help="which measurements: any of 1, 2, 3")
    args = ap.parse_args()
    print("setup:", setup_line())
    print(f"load average at start: {os.getloadavg()}")
    photos = photo_corpus(args.photos)[: args.photos]
    print("corpus:", describe(photos))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "text").mkdir()
        pictures = text_corpus(args.text, root / "text")
        if "1" in args.parts:
            lang = languages(pictures)
            print(
                f"1. language of {lang['n']} text pictures (5 languages): right for "
                f"**{100 * lang['right_of_4_words']:.1f} %** of the {lang['ocr_4_words']} whose OCR kept "
                f">= 4 words (goal >= 95 %), {100 * lang['right_of_all']:.1f} % of all; "
                f"{lang['cpu_ms']:.0f} ms CPU per picture"
            )
        if "2" in args.parts:
            loads = model_loads()
            less = textless(photos)
            print(
                f"2. photos without text: {less['with_text_clue']} of {less['n']} "
                f"(**{100 * less['with_text_clue'] / less['n']:.1f} %**, goal <= 2 %) got a text clue; "
                f"OCR ran on {less['ocr_runs']}. CPU per photo: hash step {less['hash_ms']:.1f} ms, "
                f"clue step {less['cpu_ms']:.2f} ms (file name {less['names_ms']:.2f}, text-likeness "
                f"test {less['test_ms']:.2f}, OCR and the rest {less['ocr_ms']:.2f}); models loaded once "
                f"per worker: language {loads['language']:.2f} s, Tesseract {loads['tesseract']:.2f} s"
            )
        if "3" not in args.parts:
            return
        # 3. the scan: the photo corpus (the goal), then it with a tenth as many text pictures
        from opspoor.hashsets.model import Category, Entry
        from opspoor.store import import_entries, open_store

        db = f"sqlite:///{root / 'store.sqlite'}"
        store = open_store(db)
        import_entries(store, "bench", [Entry({"md5": "0" * 32}, Category("us-cat", "1"))])
        store.close()
        ev = root / "evidence"
        ev.mkdir()
        for i, p in enumerate(photos):  # (numbered: photos of different packages share names)
            (ev / f"{i:03d}_{p.name}").write_bytes(p.read_bytes())
        n_text = max(1, len(photos) // 10)
        mixed = root / "mixed"
        shutil.copytree(ev, mixed)
        for p, _, _ in pictures[:n_text]:
            (mixed / p.name).write_bytes(p.read_bytes())
        for folder, tag, what in (
            (ev, "photos", "the corpus photos (the goal)"),
            (mixed, "mixed", f"the corpus photos + {n_text} text pictures"),
        ):
            r = scans(folder, db, root, args.repeat, tag)
            print(
                f"3. scan of {r['files']} files, {what}, 2 workers, median of {args.repeat} alternating "
                f"pairs: --no-clues {r['anchor_ms']:.1f} ms CPU per file, with clues {r['clues_ms']:.1f} ms: "
                f"**{100 * (r['ratio'] - 1):+.1f} %** (goal <= +15 %; pairs "
                f"{', '.join(f'{100 * (x - 1):+.1f}' for x in r['ratios'])}); wall {r['wall'][0]:.1f} s vs "
                f"{r['wall'][1]:.1f} s; load average {r['load'][0]:.1f}-{r['load'][1]:.1f}"
            )


if __name__ == "__main__":
    main()
