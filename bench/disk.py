"""Disk images: scanning photos from inside an E01 of an ext4 file system against the same photos in a
folder, and the carving search over 1 GiB of unallocated space (see docs/benchmarks.md).

In one run:
  folder: ``scan_case`` of the benchmark photos (bench/corpus.py: benign Debian photos) in a folder,
          2 workers, ``--robust off`` (isolates the machinery), a small known set;
  e01:    the same photos inside an ext4 file system (``mke2fs -d``) acquired as an uncompressed E01
          (``ewfacquire``), scanned the same way (the E01 file as the source, as ``opspoor scan
          laptop.E01``); folder and E01 scans alternate (``--rounds``) and the median of the rounds'
          ratios is reported, with the load average, since this shared VM's speed drifts;
  carve:  ``find_headers`` (the search itself) and ``carve`` (search and parsing of the hits) over
          1 GiB of random bytes (64 MiB repeated) with a JPEG, a PNG and an MP4 planted, one core.

Goals (issue 21): E01 rate >= 0.8 x folder rate; carving search <= 2 s per GiB of one core.
Usage: ``python bench/disk.py [--n 150] [--rounds 3] [--out FILE]``.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from corpus import CACHE, describe, photo_corpus  # noqa: E402
from opspoor.casefile.scan import scan_case  # noqa: E402
from opspoor.demo.disks import ext4_image, to_ewf  # noqa: E402
from opspoor.demo.images import generate_image  # noqa: E402
from opspoor.hashsets.model import Category, Entry  # noqa: E402
from opspoor.signals.engine import HashOptions, hash_bytes  # noqa: E402
from opspoor.sources.carving import SECTOR, carve, find_headers  # noqa: E402
from opspoor.store import import_entries, open_store  # noqa: E402
from opspoor.triage.config import ScanConfig  # noqa: E402
from setup_info import print_report, setup_line  # noqa: E402

WORK = CACHE / "bench-disk"
SCAN_GOAL = 0.8
CARVE_GOAL = 2.0  # seconds per GiB
GiB = 1 << 30


def build(photos: list[Path]) -> tuple[Path, Path, str, int]:
    if WORK.exists():
        shutil.rmtree(WORK)
    folder = WORK / "folder" / "photos"
    folder.mkdir(parents=True)
    files = {}
    for p in photos:
        shutil.copy(p, folder / p.name)
        files[p.name] = p.read_bytes()
    nbytes = sum(len(b) for b in files.values())
    raw = WORK / "ext4.raw"
    ext4_image(
        raw, {f"photos/{k}": v for k, v in files.items()}, size_mib=nbytes * 13 // 10 // (1 << 20) + 32
    )
    (WORK / "e01").mkdir()
    to_ewf(raw, WORK / "e01" / "laptop")
    raw.unlink()
    db = f"sqlite:///{WORK / 'store.sqlite'}"
    store = open_store(db)
    known = [Entry({"md5": hash_bytes(b).md5}, Category("us-cat", "1")) for b in list(files.values())[::10]]
    import_entries(store, "known", known, kind="known")
    store.close()
    return folder.parent, WORK / "e01" / "laptop.E01", db, nbytes


def scan_seconds(source: Path, db: str, case: Path) -> float:
    if case.exists():
        shutil.rmtree(case)
    cfg = ScanConfig(sources=[source], hashsets=["known"], case_dir=case, db_url=db, workers=2,
                     options=HashOptions(), local=False)  # fmt: skip
    t = time.perf_counter()
    result = scan_case(cfg)
    took = time.perf_counter() - t
    assert result.reconciled
    return took


def carving() -> tuple[float, float, int]:
    block = bytearray(os.urandom(64 << 20))
    planted = []
    for i, ext in enumerate(("JPEG", "PNG")):
        buf = io.BytesIO()
        generate_image(i, 320, 240).save(buf, ext)
        off = (i + 1) * (8 << 20)
        block[off : off + len(buf.getvalue())] = buf.getvalue()
        planted.append(off)
    mp4 = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + b"\x00\x00\x00\x10moov" + bytes(8)
    mp4 += b"\x00\x00\x04\x00mdat" + bytes(1024 - 8)
    block[40 << 20 : (40 << 20) + len(mp4)] = mp4
    data = bytes(block)
    n = len(data)

    def read(off: int, length: int) -> bytes:
        start = off % n
        out = data[start : start + length]
        while len(out) < length and off + len(out) < GiB:
            out += data[: length - len(out)]
        return out[: max(0, min(length, GiB - off))]

    t = time.process_time()
    hits = sum(1 for _ in find_headers(read, 0, GiB))
    search = time.process_time() - t
    t = time.process_time()
    found = list(carve(read, 0, GiB, 20 << 20, set()))
    full = time.process_time() - t
    assert all(any(c.offset == k * n + p for c in found) for k in range(GiB // n) for p in planted)
    assert SECTOR == 512
    return search, full, hits


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=150)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    photos = photo_corpus(args.n)[: args.n]
    folder, e01, db, nbytes = build(photos)
    load = [os.getloadavg()[0]]
    times: dict[str, list[float]] = {"folder": [], "e01": []}
    for _ in range(args.rounds):  # interleaved: folder, E01, folder, E01 ...
        times["folder"].append(scan_seconds(folder, db, WORK / "case-folder"))
        times["e01"].append(scan_seconds(e01, db, WORK / "case-e01"))
        load.append(os.getloadavg()[0])
    # a round's ratio compares two scans minutes apart at most; the median of the rounds is reported
    ratios = [f / e for f, e in zip(times["folder"], times["e01"], strict=True)]
    ratio = statistics.median(ratios)
    med = {k: statistics.median(v) for k, v in times.items()}
    rate = {k: len(photos) / v for k, v in med.items()}
    search, full, hits = carving()
    lines = [
        f"setup: {setup_line()}",
        f"load average (1 min) at start and after each round: {', '.join(f'{x:.1f}' for x in load)}",
        f"corpus: {describe(photos)}, {nbytes / 1e6:.0f} MB; ext4 in an uncompressed E01 scanned as a file "
        "(opspoor scan laptop.E01); 2 workers, robust off",
        f"folder scan: median {med['folder']:.2f} s ({rate['folder']:.1f} photos/s), "
        f"rounds {[round(t, 2) for t in times['folder']]}",
        f"E01 scan:    median {med['e01']:.2f} s ({rate['e01']:.1f} photos/s), "
        f"rounds {[round(t, 2) for t in times['e01']]}",
        f"E01 / folder rate per round: {[round(r, 2) for r in ratios]}; "
        f"median {ratio:.2f} (goal >= {SCAN_GOAL})",
        f"carving search over 1 GiB (one core): {search:.2f} s/GiB (goal <= {CARVE_GOAL}); "
        f"with parsing its {hits} header hits: {full:.2f} s/GiB",
    ]
    text = "\n".join(lines)
    print_report(text, args.out)


if __name__ == "__main__":
    main()
