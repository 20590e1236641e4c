"""What the default scan spends beyond the anchor's hashing, per file, in CPU time (issue 25).

Two parts, both on the photos and the evidence layout of ``bench/scan.py`` (a quarter in zips):

1. **Worker steps**, one process, interleaved rounds on the same photos: the anchor (read + every
   signal, ``--robust off``: what ``bench/scan.py`` times), then the worker's ``run_task`` with
   the scan's steps added one at a time (thumbnail, the ``--robust fast`` query hashes, location
   clues). Each row's difference to the one above is that step's cost.
2. **The scan's processes**: ``scan_case`` with 2 workers (as ``bench/scan.py``), its CPU split
   into the workers (inside ``run_task`` and around it: start, warm-up, pickling), the main
   process's main thread by step (the walk, submitting and collecting, matching, case writes,
   groups and clues, outputs), and its other threads (the pool's feeder and manager threads,
   the index loader, the index's search threads), read from ``/proc/self/task`` every 0.2 s.
   The first scan of the process pays its one-off loads (clue models, the geocoder, the report
   template); the next scans show the per-file work.

Usage: ``python bench/scan_costs.py [--n 150] [--entries 100000] [--rounds 3] [--scans 3] [--out FILE]``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

import scan as bench_scan  # noqa: E402
from corpus import describe, photo_corpus  # noqa: E402
from opspoor.casefile import scan as case_scan  # noqa: E402
from opspoor.clues.extract import ClueOptions, share_models  # noqa: E402
from opspoor.matching import Matcher, build_index_cache  # noqa: E402
from opspoor.signals.engine import ROBUST_PRESETS, HashOptions, hash_bytes  # noqa: E402
from opspoor.store import open_store  # noqa: E402
from opspoor.triage import pool as triage_pool  # noqa: E402
from opspoor.triage import scan as triage_scan  # noqa: E402
from opspoor.triage import worker as triage_worker  # noqa: E402
from opspoor.triage.case import CaseDB  # noqa: E402
from opspoor.triage.config import ScanConfig  # noqa: E402
from opspoor.triage.worker import Task, run_task, warm_up  # noqa: E402
from setup_info import print_report, setup_line  # noqa: E402

FAST = ROBUST_PRESETS["fast"]


def load() -> str:
    return open("/proc/loadavg").read().split()[0]


# --- 1. worker steps -----------------------------------------------------------------------------


def worker_steps(photos: list[Path], rounds: int) -> list[tuple[str, list[float]]]:
    """CPU ms per file of each step list, in interleaved rounds."""
    clues = ClueOptions()
    share_models(clues)
    warm_up()

    def task(options: HashOptions, with_clues: bool) -> Callable[[int, Path], Any]:
        return lambda i, p: run_task(
            Task(i, p.name, str(p), None, p.stat().st_size), options, clues if with_clues else None
        )

    steps: list[tuple[str, Callable[[int, Path], Any]]] = [
        ("anchor: read + hash_bytes, --robust off", lambda i, p: hash_bytes(p.read_bytes())),
        ("run_task, --robust off", task(HashOptions(), False)),
        ("+ thumbnail", task(HashOptions(thumbnail=True), False)),
        ("+ --robust fast query hashes", task(HashOptions(thumbnail=True, robust=FAST), False)),
        ("+ location clues (the scan's worker)", task(HashOptions(thumbnail=True, robust=FAST), True)),
    ]
    for _, fn in steps:  # kernels and models loaded, files in the page cache
        for i, p in enumerate(photos[:5]):
            fn(i, p)
    times: dict[str, list[float]] = {label: [] for label, _ in steps}
    for _ in range(rounds):
        for label, fn in steps:
            t = time.process_time()
            for i, p in enumerate(photos):
                fn(i, p)
            times[label].append(1000 * (time.process_time() - t) / len(photos))
    return list(times.items())


# --- 2. the scan's processes ---------------------------------------------------------------------


class ThreadCpu:
    """CPU seconds of each thread of this process, read from /proc every ``every`` seconds."""

    def __init__(self, every: float = 0.2) -> None:
        self.every = every
        self.seen: dict[tuple[int, str], float] = {}
        self.tick = os.sysconf("SC_CLK_TCK")
        threading.Thread(target=self._run, daemon=True, name="bench-thread-cpu").start()

    def _run(self) -> None:
        while True:
            self.sample()
            time.sleep(self.every)

    def sample(self) -> None:
        names = {t.native_id: t.name for t in threading.enumerate()}
        for tid in os.listdir("/proc/self/task"):
            try:
                with open(f"/proc/self/task/{tid}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            key = (int(tid), _thread_kind(names.get(int(tid), "(not a Python thread)")))
            self.seen[key] = max(self.seen.get(key, 0.0), (int(fields[11]) + int(fields[12])) / self.tick)

    def snapshot(self) -> dict[tuple[int, str], float]:
        self.sample()
        return dict(self.seen)


def _thread_kind(name: str) -> str:
    if re.fullmatch(r"Thread-\d+", name):
        return "the pool's result thread (results unpickled)"
    if name == "QueueFeederThread":
        return "the pool's feeder thread (tasks pickled)"
    return name.split("_")[0] if name.startswith("ThreadPoolExecutor") else name


def _timed(acc: Counter[str], label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def timed(*args: Any, **kwargs: Any) -> Any:
        t = time.thread_time()
        try:
            return fn(*args, **kwargs)
        finally:
            acc[label] += time.thread_time() - t

    return timed


def instrument(acc: Counter[str]) -> None:
    """Time the main thread's steps of the scan (and run_task inside the workers, forked from here)."""
    for obj, name, label in (
        (triage_pool.CrashSafePool, "submit", "submit (member bytes pickled by the feeder)"),
        (triage_pool.CrashSafePool, "collect", "collect results"),
        (Matcher, "match_batch", "match (this thread's part)"),
        (CaseDB, "add_files", "case database writes"),
        (triage_scan, "start_executor", "start the pool (clue models loaded, workers forked)"),
        (triage_scan, "assign_groups", "groups, priority, GPS places"),
        (triage_scan, "index_case", "cross-case clue index"),
        (triage_scan, "build_summary", "summary"),
        (case_scan, "write_outputs", "outputs (files.jsonl, report.html, export)"),
    ):
        setattr(obj, name, _timed(acc, label, getattr(obj, name)))
    walk = triage_scan._evidence

    def timed_walk(cfg: ScanConfig) -> Any:
        items = walk(cfg)
        while True:
            t = time.thread_time()
            try:
                item = next(items)
            except StopIteration:
                return
            finally:
                acc["walk (folders, zip members read)"] += time.thread_time() - t
            yield item

    triage_scan._evidence = timed_walk
    triage_pool.run_task = timed_task  # (module level: the pool pickles it by name)
    record = triage_scan._record

    def counted_record(path: str, sig: dict[str, Any], matches: list[dict[str, Any]]) -> dict[str, Any]:
        acc["(workers) inside run_task"] += sig.get("_bench_cpu", 0.0)
        return record(path, sig, matches)

    triage_scan._record = counted_record


def timed_task(task: Task, options: HashOptions, clues: ClueOptions | None = None) -> Any:
    """``run_task`` with its own CPU time in the result (a key the record does not copy)."""
    t = time.process_time()
    seq, path, out, thumb = triage_worker.run_task(task, options, clues)
    out["_bench_cpu"] = time.process_time() - t
    return seq, path, out, thumb


def scans(photos: list[Path], entries: int, count: int) -> list[dict[str, Any]]:
    evidence = bench_scan.WORK / "evidence"
    files, _ = bench_scan.lay_out(photos, evidence)
    db = str(bench_scan.WORK / f"store-{entries}.sqlite")
    bench_scan.known_set(db, photos, entries)
    os.environ["OPSPOOR_CACHE"] = tempfile.mkdtemp(prefix="opspoor-bench-costs-")
    store = open_store(db)
    build_index_cache(store, "bench-known")
    store.close()
    acc: Counter[str] = Counter()
    instrument(acc)
    threads = ThreadCpu()
    bench_scan.hashing_only_rate(photos[:20])  # kernels loaded before the first anchor
    out = []
    for k in range(count):
        anchor = bench_scan.hashing_only_rate(photos)
        case = bench_scan.WORK / "case"
        if case.exists():
            shutil.rmtree(case)
        options = HashOptions(robust=FAST)
        cfg = ScanConfig([evidence], ["bench-known"], case, db_url=db, workers=2, options=options)
        acc.clear()
        before, t, cpu = threads.snapshot(), time.perf_counter(), bench_scan.cpu_seconds()
        own0, main0 = _self_cpu(), time.thread_time()
        result = case_scan.scan_case(cfg)
        main_thread = time.thread_time() - main0
        wall, total, own = time.perf_counter() - t, bench_scan.cpu_seconds() - cpu, _self_cpu() - own0
        after = threads.snapshot()
        per_thread: Counter[str] = Counter()
        for key, v in after.items():
            if key[1] not in ("MainThread", "bench-thread-cpu"):
                per_thread[key[1]] += v - before.get(key, 0.0)
        n = int(result.summary["files_accounted"])
        out.append(
            dict(
                scan="first scan of the process" if k == 0 else "next scan",
                files=n,
                wall=wall,
                anchor_ms=1000 * anchor[2],
                total_ms=1000 * total / n,
                workers_ms=1000 * (total - own) / n,
                inside_ms=1000 * acc.pop("(workers) inside run_task") / n,
                main_ms=1000 * own / n,
                main_thread_ms=1000 * main_thread / n,
                steps={label: 1000 * v / n for label, v in acc.items()},
                threads={name: 1000 * v / n for name, v in per_thread.most_common() if v > 0.001},
                load=load(),
            )
        )
        assert files == n
    return out


def _self_cpu() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=150, help="photos (default 150)")
    ap.add_argument("--entries", type=int, default=100_000, help="entries in the known set")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds of the worker steps")
    ap.add_argument("--scans", type=int, default=3, help="scans in a row (the first pays the one-off loads)")
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    photos = photo_corpus(min_count=a.n)[: a.n]
    bench_scan.WORK.mkdir(parents=True, exist_ok=True)
    load0 = load()
    steps = worker_steps(photos, a.rounds)
    runs = scans(photos, a.entries, a.scans)
    lines = [
        f"setup: {setup_line()}",
        f"corpus: {describe(photos)}; known set {a.entries:,} entries; load average {load0} at the start",
        "",
        f"1. Worker steps, one process, CPU ms per file, median of {a.rounds} interleaved rounds (range):",
        "",
        "| step | CPU ms per file | range | step's cost |",
        "| --- | ---: | ---: | ---: |",
    ]
    prev = None
    for label, v in steps:
        med = statistics.median(v)
        extra = "" if prev is None or label.startswith("run_task") else f"+{med - prev:.1f}"
        lines.append(f"| {label} | {med:.1f} | {min(v):.1f}-{max(v):.1f} | {extra} |")
        prev = med
    lines += ["", "2. The scan (2 workers, --robust fast, clues on), CPU ms per file:", ""]
    cols = [r["scan"] + f" (load {r['load']})" for r in runs]
    lines += ["| part | " + " | ".join(cols) + " |", "| --- |" + " ---: |" * len(runs)]

    def row(label: str, values: list[float]) -> None:
        lines.append(f"| {label} | " + " | ".join(f"{v:.2f}" for v in values) + " |")

    row("anchor (hashing only, 1 core, right before)", [r["anchor_ms"] for r in runs])
    row("**scan, all processes**", [r["total_ms"] for r in runs])
    row("workers", [r["workers_ms"] for r in runs])
    row("  inside run_task", [r["inside_ms"] for r in runs])
    row("  around it (start, warm-up, pickling)", [r["workers_ms"] - r["inside_ms"] for r in runs])
    row("main process", [r["main_ms"] for r in runs])
    row("  main thread", [r["main_thread_ms"] for r in runs])
    labels = sorted({k for r in runs for k in r["steps"]}, key=lambda k: -runs[-1]["steps"].get(k, 0.0))
    for label in labels:
        row(f"    {label}", [r["steps"].get(label, 0.0) for r in runs])
    row("  other threads", [r["main_ms"] - r["main_thread_ms"] for r in runs])
    names = sorted({k for r in runs for k in r["threads"]}, key=lambda k: -runs[-1]["threads"].get(k, 0.0))
    for name in names:
        row(f"    {name}", [r["threads"].get(name, 0.0) for r in runs])
    row(
        "    threads that ended between two reads (e.g. the index's search threads)",
        [r["main_ms"] - r["main_thread_ms"] - sum(r["threads"].values()) for r in runs],
    )
    row("CPU ratio (anchor / scan)", [r["anchor_ms"] / r["total_ms"] for r in runs])
    lines += [
        "",
        "Main-thread steps are timed by wrappers (thread CPU); other threads are read from /proc every "
        "0.2 s (a thread that ends between two reads loses its last slice). The walk includes reading "
        "zip members in the main process; matching also runs in the index's search threads.",
    ]
    print_report("\n".join(lines), a.out)


if __name__ == "__main__":
    main()
