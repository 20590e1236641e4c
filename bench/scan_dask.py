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
The cluster runs with ``dask_pool.CLUSTER_CONFIG`` (as docs/scale.md deploys one), or with Dask's
defaults (``--dask-config dask``). CPU per file is reported per process: the pool's or the cluster's
workers, the scan's main thread, the bench process's other threads (the Dask client's event loop),
and the LocalCluster's thread in the bench process (scheduler and nannies).

Usage: ``python bench/scan_dask.py [--n 300] [--entries 100000] [--rounds 3] [--robust fast]
[--dask-config opspoor|dask]``.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import sys
import threading
import time
from dataclasses import dataclass
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
from opspoor.triage.dask_pool import CLUSTER_CONFIG  # noqa: E402
from scan import WORK, known_set, lay_out  # noqa: E402
from setup_info import print_report, setup_line  # noqa: E402

GOAL = 0.9
PARTS = ("workers", "main", "client_other", "cluster")


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


@dataclass
class Spent:
    """One scan's wall time and CPU seconds, by process (and thread of the bench's process)."""

    seconds: float
    files: int
    main: float  # the scan's main thread: walk, members, submit, matching, case writes
    client_other: float  # the bench process's other threads, but the cluster's (index load, Dask client loop)
    cluster: float  # threads that outlive the scan: LocalCluster's loop (scheduler and nannies), the probe
    workers: float  # the local pool's processes, or the Dask workers'


def _thread_cpu() -> dict[int, float]:
    import psutil

    return {t.id: t.user_time + t.system_time for t in psutil.Process().threads()}


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)  # (reaped children: the local pool's workers)
    return ru.ru_utime + ru.ru_stime


def one_scan(evidence: Path, db: str, opts: HashOptions, probe: Any, **kw: Any) -> Spent:
    """One scan into a fresh case, with where its CPU went."""
    case = WORK / "case-dask-bench"
    if case.exists():
        shutil.rmtree(case)
    cfg = ScanConfig([evidence], ["bench-known"], case, db_url=db, workers=2, options=opts, **kw)
    threads0, proc0, kids0, workers0 = _thread_cpu(), _cpu(), _children_cpu(), workers_cpu(probe)
    t, cpu = time.perf_counter(), time.thread_time()
    result = scan_case(cfg)
    seconds, main = time.perf_counter() - t, time.thread_time() - cpu
    assert result.reconciled
    threads1, proc1 = _thread_cpu(), _cpu()
    main_id = threading.get_native_id()
    cluster = sum(v - threads0[k] for k, v in threads1.items() if k in threads0 and k != main_id)
    workers = workers_cpu(probe) - workers0 if kw.get("executor") == "dask" else _children_cpu() - kids0
    files = int(result.summary["files_accounted"])
    return Spent(seconds, files, main, proc1 - proc0 - main - cluster, cluster, workers)


def per_file_ms(spent: list[Spent], part: str) -> float:
    return 1000 * statistics.median(getattr(s, part) / s.files for s in spent)


def main() -> None:
    import dask
    from distributed import Client, LocalCluster

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--entries", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--robust", choices=sorted(ROBUST_PRESETS), default="fast")
    ap.add_argument("--out", type=Path)
    ap.add_argument(
        "--dask-config",
        choices=["opspoor", "dask"],
        default="opspoor",
        help="cluster settings: dask_pool.CLUSTER_CONFIG (as docs/scale.md deploys it) or Dask's defaults",
    )
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
    settings = CLUSTER_CONFIG if a.dask_config == "opspoor" else {}
    with (
        dask.config.set(settings),
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=":0"
        ) as cluster,
        Client(cluster.scheduler_address) as probe,  # (the default client: distributed.wait needs one)
    ):
        address = cluster.scheduler_address
        one_scan(evidence, db, opts, probe, executor="dask", scheduler=address)  # warm both sides once
        per_task = scheduler_per_task(probe)
        local, remote = [], []
        for r in range(a.rounds):
            lo = one_scan(evidence, db, opts, probe)
            da = one_scan(evidence, db, opts, probe, executor="dask", scheduler=address)
            local.append(lo)
            remote.append(da)
            ratio = (da.files / da.seconds) / (lo.files / lo.seconds)
            ratios.append(ratio)
            rows.append(
                f"| {r + 1} | {lo.files / lo.seconds:.1f} | {da.files / da.seconds:.1f} | **{ratio:.2f}** "
                f"| {os.getloadavg()[0]:.1f} |"
            )
        per_task_after = scheduler_per_task(probe)
    cpu_rows = []
    for part, what in (
        ("workers", "worker processes (read, hash, decode, thumbnail; on Dask also its event loop)"),
        ("main", "scan's main thread (walk, members, submit, matching, case writes)"),
        ("client_other", "client's other threads (index load; on Dask the client's event loop)"),
        ("cluster", "LocalCluster's thread in the bench process (scheduler, nannies)"),
    ):
        lo_ms, da_ms = per_file_ms(local, part), per_file_ms(remote, part)
        ratio = f"{da_ms / lo_ms:.2f}" if lo_ms > 0.05 else "-"
        cpu_rows.append(f"| {what} | {lo_ms:.1f} | {da_ms:.1f} | {ratio} |")
    total = [
        1000 * statistics.median(sum(getattr(s, p) for p in PARTS) / s.files for s in x)
        for x in (local, remote)
    ]
    cpu_rows.append(f"| all | {total[0]:.1f} | {total[1]:.1f} | {total[1] / total[0]:.2f} |")
    wcpu = per_file_ms(remote, "workers") / 1000
    ccpu = per_file_ms(remote, "main") / 1000
    lines = [
        f"setup: {setup_line()}",
        f"corpus: {describe(photos)}; laid out as {files} files ({nbytes / 1e6:.0f} MB), a quarter in "
        f"zip archives; known set {a.entries:,} entries (SQLite, index cached); --robust {a.robust}",
        "dask: LocalCluster, 2 worker processes x 1 thread, loopback, "
        + ("dask_pool.CLUSTER_CONFIG" if settings else "Dask's default settings")
        + "; local: process pool of 2",
        "",
        "| round | local files/s | dask files/s | dask / local | load (1 min) |",
        "| --- | ---: | ---: | ---: | ---: |",
        *rows,
        "",
        f"dask / local, median of {a.rounds} rounds: **{statistics.median(ratios):.2f}** (goal >= {GOAL})",
        "",
        "| CPU per file, median of the rounds (ms) | local | dask | dask / local |",
        "| --- | ---: | ---: | ---: |",
        *cpu_rows,
        "",
        f"one busy Dask worker core does about {1 / wcpu:.0f} files/s; one client's main thread takes at "
        f"most about {1 / ccpu:.0f} files/s",
        f"scheduler + round trip per empty task (8 in flight): {1000 * per_task:.2f} ms before the "
        f"rounds, {1000 * per_task_after:.2f} ms after -> at most about "
        f"{1 / max(per_task, per_task_after):.0f} tasks/s through one scheduler",
    ]
    text = "\n".join(lines)
    print_report(text, a.out)


if __name__ == "__main__":
    main()
