"""Memory of a scan meeting a zip of large members (issue 17: a 42 MB zip holding two 700 MB members
took a worker to 3.2 GB).

A zip holds two members of ``--member-mb`` MiB each (one size just under the in-memory room, one
well above it, by default), compressible about 25:1 (1 KiB blocks of 32 random
bytes and zeros: no bomb by ratio), next to a few small pictures. ``scan_case`` (2 workers) scans it
while a thread samples the resident memory of the main process and of each worker every 50 ms. In the
same run, the anchor is the same scan of a zip whose two members are 1 MiB: what a scan costs anyway
(interpreter, numba kernels, indexes). Printed: the peaks of both runs and their difference, with the
members' in-memory room (``Limits.max_in_memory``; ``--room-mb`` changes it).

Goal: memory bounded by the room whatever the members' size: a member above the room is hashed as
it streams and never held (cost about 0); one that fits is held by the main process while it reads
ahead and sends it, and by a worker while it arrives (about twice): worker peak - anchor <= 2 x room,
main peak - anchor <= 3 x room (each + 64 MiB of noise).
Usage: ``python bench/scan_memory.py [--member-mb 250 700] [--room-mb 256] [--workers 2]`` (256 MiB,
as docs/reliability.md's figures; the scan's default room, ``Limits()`` and ``--max-member-memory``,
is 1024 MiB: ``--room-mb 1024 --member-mb 1000 1100`` measures it).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))  # process_memory, shared with the memory tests

import numpy as np  # noqa: E402

from opspoor.casefile.scan import scan_case  # noqa: E402
from opspoor.demo.images import generate_image  # noqa: E402
from opspoor.hashsets.model import Category, Entry  # noqa: E402
from opspoor.sources import Limits  # noqa: E402
from opspoor.store import import_entries, open_store  # noqa: E402
from opspoor.triage.config import ScanConfig  # noqa: E402
from process_memory import PeakMemory  # noqa: E402
from setup_info import setup_line  # noqa: E402

MiB = 1 << 20
SLACK = 64  # MiB: allocator and interpreter noise between two runs


def compressible(n_bytes: int, seed: int) -> bytes:
    """``n_bytes`` that deflate about 25:1: each KiB is 32 random bytes and 992 zeros."""
    rows = np.zeros((n_bytes // 1024, 1024), dtype=np.uint8)
    rows[:, :32] = np.random.default_rng(seed).integers(0, 256, (len(rows), 32), dtype=np.uint8)
    return rows.tobytes()


def make_evidence(folder: Path, member_bytes: int) -> str:
    """The zip of two large members and four small pictures; returns the first member's MD5."""
    folder.mkdir(parents=True)
    first = compressible(member_bytes, 1)
    with zipfile.ZipFile(folder / "big.zip", "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zf.writestr("a.bin", first)
        zf.writestr("b.bin", compressible(member_bytes, 2))
    for k in range(4):
        buf = io.BytesIO()
        generate_image(k, 320, 240, style="shapes").save(buf, "JPEG")
        (folder / f"p{k}.jpg").write_bytes(buf.getvalue())
    return hashlib.md5(first).hexdigest()


def scan_peaks(
    work: Path, name: str, member_bytes: int, room: int, workers: int, db: str, scheduler: str | None = None
) -> tuple[int, int, dict]:
    folder = work / name
    md5 = make_evidence(folder, member_bytes)
    store = open_store(db)
    import_entries(store, name, [Entry({"md5": md5}, Category("us-cat", "1"), external_id="a")])
    store.close()
    cfg = ScanConfig(
        sources=[folder], hashsets=[name], case_dir=work / f"case-{name}", db_url=db, workers=workers,
        limits=Limits(max_in_memory=room), local=False,
        executor="dask" if scheduler else "local", scheduler=scheduler,
    )  # fmt: skip
    with PeakMemory(interval=0.05) as s:
        result = scan_case(cfg)
    assert result.reconciled
    return s.main, s.worker, result.summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--member-mb", type=int, nargs="+", default=[250, 700])
    ap.add_argument("--room-mb", type=int, default=256)  # docs/reliability.md's figures; Limits(): 1024
    ap.add_argument("--workers", type=int, default=2)
    # (dask: a LocalCluster of --workers single-threaded processes; its scheduler runs in the main
    # process, so "main" is the client and the scheduler together, which both hold members in flight)
    ap.add_argument("--executor", choices=["local", "dask"], default="local")
    args = ap.parse_args()
    if args.executor == "dask":
        import os

        from distributed import LocalCluster

        os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])
        with LocalCluster(
            n_workers=args.workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster:
            measure(args, cluster.scheduler_address)
    else:
        measure(args, None)


def measure(args: argparse.Namespace, scheduler: str | None) -> None:
    room = args.room_mb * MiB
    print(setup_line())
    with tempfile.TemporaryDirectory(prefix="opspoor-scan-memory-") as tmp:
        work = Path(tmp)
        db = f"sqlite:///{work / 'store.sqlite'}"
        a_main, a_worker, _ = scan_peaks(work, "anchor", MiB, room, args.workers, db, scheduler)
        print(f"in-memory room {args.room_mb} MiB; {args.workers} workers; executor {args.executor}")
        print(
            f"anchor, 2 x 1 MiB members:   main peak {a_main / MiB:6.0f} MiB   "
            f"worker peak {a_worker / MiB:6.0f} MiB"
        )
        for mb in args.member_mb:
            t0 = time.perf_counter()
            b_main, b_worker, summary = scan_peaks(
                work, f"m{mb}", mb * MiB, room, args.workers, db, scheduler
            )
            seconds = time.perf_counter() - t0
            d_main, d_worker = (b_main - a_main) / MiB, (b_worker - a_worker) / MiB
            ok = d_main <= 3 * args.room_mb + SLACK and d_worker <= 2 * args.room_mb + SLACK
            print(
                f"2 x {mb:4d} MiB members:        main peak {b_main / MiB:6.0f} MiB   worker peak "
                f"{b_worker / MiB:6.0f} MiB   cost: main +{d_main:.0f}, worker +{d_worker:.0f} MiB "
                f"({seconds:.1f} s) goal {'met' if ok else 'NOT met'}"
            )
            print(f"    verdicts: {summary['by_status']}  errors: {summary['errors_by_reason']}")


if __name__ == "__main__":
    main()
