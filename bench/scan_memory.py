"""Memory of a scan meeting a zip of large members (issue 17: a 42 MB zip holding two 700 MB members
took a worker to 3.2 GB).

A zip on disk holds a raw (uncompressed) AVI video and a BMP of ``--member-mb`` MiB each, a PNG whose
decode would take more than a worker's budget, and a small picture in the hash set: benign, generated
(``tests/large_media.py``) and compressible about 10-30:1. ``scan_case`` (2 workers) scans it while a
thread samples the resident memory of the main process and of each worker every 50 ms. In the same
run, the anchor is the same scan of a zip of small members (a 4-frame video, a 64 x 64 BMP and PNG):
what a scan costs anyway (interpreter, numba kernels, indexes). Printed: the peaks of both runs, their
difference, the time, and what became of each member.

Goal: memory bounded by a worker's budget (``HashOptions.max_in_memory``, 512 MiB by default, lowered
by ``scan --max-member-memory``) whatever the members' size: a member of a zip on disk above 32 MiB
(``Limits.stream_above``) is checked by the main process as it streams past and read again by its
worker from the zip; a video is decoded from that stream, a file above the budget is hashed and not
held, an image whose decode would not fit is refused from its header. Main peak - anchor <= 64 MiB,
worker peak - anchor <= budget + 64 MiB.
Usage: ``python bench/scan_memory.py [--member-mb 700] [--budget-mb 512] [--room-mb 1024] [--workers 2]
[--executor local|dask] [--scheduler-process]``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))  # process_memory, large_media: shared with the memory tests

from large_media import make_zip  # noqa: E402
from opspoor.casefile.scan import scan_case  # noqa: E402
from opspoor.hashsets.model import Category, Entry  # noqa: E402
from opspoor.signals.engine import ROBUST_PRESETS, HashOptions  # noqa: E402
from opspoor.sources import Limits  # noqa: E402
from opspoor.store import import_entries, open_store  # noqa: E402
from opspoor.triage.config import ScanConfig  # noqa: E402
from process_memory import PeakMemory  # noqa: E402
from setup_info import setup_line  # noqa: E402

MiB = 1 << 20
SLACK = 64  # MiB: allocator and interpreter noise between two runs


def scan_peaks(
    work: Path,
    name: str,
    sizes: tuple[int, int, int],
    budget: int,
    room: int,
    workers: int,
    db: str,
    scheduler: str | None = None,
) -> tuple[int, int, dict[str, dict]]:
    folder = work / name
    md5 = make_zip(folder, *sizes)
    store = open_store(db)
    import_entries(store, name, [Entry({"md5": md5["p.jpg"]}, Category("us-cat", "1"), external_id="a")])
    store.close()
    options = HashOptions(robust=ROBUST_PRESETS["fast"], max_in_memory=budget)
    cfg = ScanConfig(
        sources=[folder], hashsets=[name], case_dir=work / f"case-{name}", db_url=db, workers=workers,
        limits=Limits(max_in_memory=room), options=options, local=False,
        executor="dask" if scheduler else "local", scheduler=scheduler,
    )  # fmt: skip
    with PeakMemory(interval=0.05) as s:
        result = scan_case(cfg)
    assert result.reconciled
    case = work / f"case-{name}"
    recs = {r["path"]: r for r in map(json.loads, (case / "files.jsonl").read_text().splitlines())}
    return s.main, s.worker, recs


def sizes_for(member_mb: int, budget: int) -> tuple[int, int, int]:
    """Video frames and BMP side for members of about ``member_mb`` MiB; a PNG side whose decode
    (about 5 bytes a pixel) is above the budget."""
    frames = max(4, round(member_mb * MiB / (1280 * 720 * 3)))
    return frames, max(64, math.isqrt(member_mb * MiB // 3)), math.isqrt(budget * 6 // 25) + 64


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--member-mb", type=int, nargs="+", default=[700])
    ap.add_argument("--budget-mb", type=int, default=HashOptions().max_in_memory // MiB)
    ap.add_argument("--room-mb", type=int, default=Limits().max_in_memory // MiB)
    ap.add_argument("--workers", type=int, default=2)
    # (dask: a LocalCluster of --workers single-threaded processes; its scheduler runs in the main
    # process, so "main" is the client and the scheduler together, which both hold members in flight)
    ap.add_argument("--executor", choices=["local", "dask"], default="local")
    # (with dask: the scheduler in a process of its own, as on a cluster, so that "main" is the
    # client alone; "worker" is then the largest other process, scheduler or worker)
    ap.add_argument("--scheduler-process", action="store_true")
    args = ap.parse_args()
    if args.executor == "dask":
        import os

        from distributed import LocalCluster
        from distributed.deploy.subprocess import SubprocessCluster

        os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])
        cluster = (
            SubprocessCluster(
                host="127.0.0.1", n_workers=args.workers, threads_per_worker=1, dashboard_address=":0"
            )
            if args.scheduler_process
            else LocalCluster(
                n_workers=args.workers,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=":0",
            )
        )
        with cluster:
            measure(args, cluster.scheduler_address)
    else:
        measure(args, None)


def measure(args: argparse.Namespace, scheduler: str | None) -> None:
    budget, room = args.budget_mb * MiB, args.room_mb * MiB
    print(setup_line())
    with tempfile.TemporaryDirectory(prefix="opspoor-scan-memory-") as tmp:
        work = Path(tmp)
        db = f"sqlite:///{work / 'store.sqlite'}"
        a_main, a_worker, _ = scan_peaks(
            work, "anchor", (4, 64, 64), budget, room, args.workers, db, scheduler
        )
        print(
            f"worker budget {args.budget_mb} MiB, archive room {args.room_mb} MiB; "
            f"{args.workers} workers; executor {args.executor}"
            + (", scheduler in its own process" if args.scheduler_process else "")
        )
        print(
            f"anchor, small members:    main peak {a_main / MiB:6.0f} MiB   "
            f"worker peak {a_worker / MiB:6.0f} MiB"
        )
        for mb in args.member_mb:
            t0 = time.perf_counter()
            sizes = sizes_for(mb, budget)
            b_main, b_worker, recs = scan_peaks(
                work, f"m{mb}", sizes, budget, room, args.workers, db, scheduler
            )
            seconds = time.perf_counter() - t0
            d_main, d_worker = (b_main - a_main) / MiB, (b_worker - a_worker) / MiB
            ok = d_main <= SLACK and d_worker <= args.budget_mb + SLACK
            print(
                f"{mb} MiB video and BMP:  main peak {b_main / MiB:6.0f} MiB   worker peak "
                f"{b_worker / MiB:6.0f} MiB   cost: main +{d_main:.0f}, worker +{d_worker:.0f} MiB "
                f"({seconds:.1f} s with generating) goal {'met' if ok else 'NOT met'}"
            )
            for path, rec in sorted(recs.items()):
                if "!/" in path:
                    what = rec["error"] or (
                        f"{len(rec['vpdq_frames'])} vPDQ frames" if rec.get("vpdq_frames") else rec["status"]
                    )
                    print(
                        f"    {path.split('!/')[1]:9s} {rec['size'] / MiB:7.1f} MiB  md5 {rec['md5']}  {what}"
                    )


if __name__ == "__main__":
    main()
