"""A scan on Dask against the local process pool, and the parts of a throughput model (docs/scale.md).

The benchmark photo corpus is laid out as in ``bench/scan.py`` (a quarter in zip archives, one nested)
and scanned against a known set of ``--entries`` entries (index cached, as after an import). In one
run, in interleaved rounds on the same files:

  local: ``scan_case`` with the process pool of 2 workers (the default executor);
  dask:  ``scan_case --executor dask`` on a ``distributed.LocalCluster`` of 2 single-threaded worker
         processes on loopback (started once, before the rounds, as a cluster would be);

and, for the model: each worker's CPU per file (read from the workers), the client's main-thread CPU
per file (walking, reading archive members, matching, case writes: what one client can take at most),
and the scheduler's cost per task (2,000 empty tasks through the same in-flight window as the scan).

Goal (issue 25): dask files/s >= 0.9 x local files/s, in the same round.
Usage: ``python bench/scan_dask.py [--n 300] [--entries 100000] [--rounds 3] [--robust fast]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from corpus import describe, photo_corpus  # noqa: E402
from opspoor.casefile.scan import scan_case  # noqa: E402
from opspoor.matching import build_index_cache  # noqa: E402
from opspoor.signals.engine import ROBUST_PRESETS, HashOptions  # noqa: E402
from opspoor.store import open_store  # noqa: E402
from opspoor.triage.config import ScanConfig  # noqa: E402
from scan import WORK, known_set, lay_out  # noqa: E402
from setup_info import print_report, setup_line  # noqa: E402

GOAL = 0.9


def _cpu() -> float:
    import psutil

    t = psutil.Process().cpu_times()
    return t.user + t.system


def _noop(i: int) -> int:
    return i


def workers_cpu(client: Any) -> float:
    return float(sum(client.run(_cpu).values()))


def scheduler_per_task(client: Any, n: int = 2000, depth: int = 8) -> float:
    """Wall seconds per empty task with ``depth`` in flight: the scheduler's and the round trip's
    cost, which no file can go below."""
    from distributed import wait

    t = time.perf_counter()
    inflight = [client.submit(_noop, i, pure=False) for i in range(depth)]
    sent = depth
    while inflight:
        done, rest = wait(inflight, return_when="FIRST_COMPLETED")
        inflight = list(rest)
        for _ in done:
            if sent < n:
                inflight.append(client.submit(_noop, sent, pure=False))
                sent += 1
    return (time.perf_counter() - t) / n


def one_scan(evidence: Path, db: str, opts: HashOptions, **kw: Any) -> tuple[float, float, int]:
    """(seconds, main-thread CPU seconds, files) of one scan into a fresh case."""
    case = WORK / "case-dask-bench"
    if case.exists():
        shutil.rmtree(case)
    cfg = ScanConfig([evidence], ["bench-known"], case, db_url=db, workers=2, options=opts, **kw)
    t, cpu = time.perf_counter(), time.thread_time()
    result = scan_case(cfg)
    assert result.reconciled
    return time.perf_counter() - t, time.thread_time() - cpu, int(result.summary["files_accounted"])


def main() -> None:
    from distributed import Client, LocalCluster

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--entries", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--robust", choices=sorted(ROBUST_PRESETS), default="fast")
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    photos = photo_corpus(min_count=a.n)[: a.n]
    WORK.mkdir(parents=True, exist_ok=True)
    evidence = WORK / "evidence"
    files, nbytes = lay_out(photos, evidence)
    db = str(WORK / f"store-{a.entries}.sqlite")
    known_set(db, photos, a.entries)
    with open_store(db) as store:
        build_index_cache(store, "bench-known")
    opts = HashOptions(robust=ROBUST_PRESETS[a.robust])
    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])
    rows, ratios = [], []
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
        ) as cluster,
        Client(cluster.scheduler_address) as probe,  # (the default client: distributed.wait needs one)
    ):
        address = cluster.scheduler_address
        one_scan(evidence, db, opts, executor="dask", scheduler=address)  # warm both sides once
        per_task = scheduler_per_task(probe)
        worker_cpu, client_cpu = [], []
        for r in range(a.rounds):
            lt, _, n = one_scan(evidence, db, opts)
            w0 = workers_cpu(probe)
            dt, main_cpu, n2 = one_scan(evidence, db, opts, executor="dask", scheduler=address)
            worker_cpu.append((workers_cpu(probe) - w0) / n2)
            client_cpu.append(main_cpu / n2)
            ratio = (n2 / dt) / (n / lt)
            ratios.append(ratio)
            rows.append(f"| {r + 1} | {n / lt:.1f} | {n2 / dt:.1f} | **{ratio:.2f}** |")
        per_task_after = scheduler_per_task(probe)
    wcpu, ccpu = statistics.median(worker_cpu), statistics.median(client_cpu)
    lines = [
        f"setup: {setup_line()}",
        f"corpus: {describe(photos)}; laid out as {files} files ({nbytes / 1e6:.0f} MB), a quarter in "
        f"zip archives; known set {a.entries:,} entries (SQLite, index cached); --robust {a.robust}",
        "dask: LocalCluster, 2 worker processes x 1 thread, loopback; local: process pool of 2",
        "",
        "| round | local files/s | dask files/s | dask / local |",
        "| --- | ---: | ---: | ---: |",
        *rows,
        "",
        f"dask / local, median of {a.rounds} rounds: **{statistics.median(ratios):.2f}** (goal >= {GOAL})",
        f"worker CPU per file (dask, both workers' processes): {1000 * wcpu:.1f} ms -> one busy "
        f"worker core does about {1 / wcpu:.0f} files/s",
        f"client main-thread CPU per file (walk, members, matching, case writes): {1000 * ccpu:.1f} ms "
        f"-> one client takes at most about {1 / ccpu:.0f} files/s",
        f"scheduler + round trip per empty task (8 in flight): {1000 * per_task:.2f} ms before the "
        f"rounds, {1000 * per_task_after:.2f} ms after -> at most about "
        f"{1 / max(per_task, per_task_after):.0f} tasks/s through one scheduler",
    ]
    text = "\n".join(lines)
    print_report(text, a.out)


if __name__ == "__main__":
    main()
