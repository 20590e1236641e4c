"""Micro-benchmark: the per-request work of the service's JSON ``POST /v1/match``, two source trees
back to back.

One request is what :func:`opspoor.service.routes_match.match_values` does, without the event loop,
the batcher's thread hop, authentication, audit and metrics: the body parsed by the route's schema
(``MatchRequest``), a query per value (``query_for_value``), the lookup in the service's live matcher
(``LiveMatcher.match_queries``: ``_Prepared.of``, the indexes, the entries' details) and the answer
(``match_json``, ``json.dumps``). The matcher holds one SQLite hash set of N benign random entries,
each with an MD5, SHA-1, SHA-256 and PDQ value (seeded, the same in every tree). Two workloads,
a fixed list of 64 bodies each, cycled:

  pdq    one PDQ value per request (as ``bench/service.py`` (a)); one in 16 is 8 bits from a stored one
  mixed  one MD5, SHA-1, SHA-256 and PDQ value per request; one request in 4 hits stored values

Each tree runs in its own process (``PYTHONPATH`` at its ``src``), in turn, with the same data:

  * CPU time (``time.process_time``): best and median of ``--repeats`` rounds of ``--requests``
    requests per workload, after a warm-up round; the rounds of the trees are interleaved
    (before, after, before, after, ...) so that a change of load hits both alike;
  * with ``--callgrind``: instructions per request counted by ``valgrind --tool=callgrind``
    (repeatable on a loaded machine): two runs per tree and workload, with ``--cg-small`` and
    ``--cg-large`` requests after the same warm-up, and the difference divided by the extra requests,
    so the imports and the set-up drop out (``PYTHONHASHSEED=0``).

    .venv/bin/python bench/match_request.py --before /work/wt-before/src --after src --callgrind

It prints the figures of both trees and the ratio after/before. ``--steps`` also times the steps
(parse, queries, lookup, answer) one by one in the after tree, for profiling.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WORKLOADS = ("pdq", "mixed")
BODIES = 64


# --- the worker: runs inside one tree ------------------------------------------------------------
def _random_hex(rng: Any, nbytes: int) -> str:
    return bytes(rng.integers(0, 256, nbytes, dtype="uint8")).hex()


def _flip_bits(value: str, bits: int, rng: Any) -> str:
    n = int(value, 16)
    for b in rng.choice(256, bits, replace=False):
        n ^= 1 << int(b)
    return f"{n:064x}"


def build(folder: str, entries: int) -> tuple[Any, dict[str, list[bytes]]]:
    """The store, the service's live matcher over it, and the request bodies of each workload."""
    import numpy as np

    from opspoor.hashsets.model import Category, Entry
    from opspoor.service.live import LiveMatcher
    from opspoor.store import get_hashset, import_entries, open_store

    rng = np.random.default_rng(19)
    widths = {"md5": 16, "sha1": 20, "sha256": 32, "pdq": 32}
    stored = [{sig: _random_hex(rng, n) for sig, n in widths.items()} for _ in range(entries)]
    store = open_store(f"sqlite:///{folder}/bench.db")
    cat = Category("us-cat", "1")
    import_entries(store, "bench", (Entry(s, category=cat, external_id=str(i)) for i, s in enumerate(stored)))
    matcher = LiveMatcher(store, "default", [get_hashset(store, "bench")])

    def pdq_body(i: int) -> bytes:
        v = _flip_bits(stored[i]["pdq"], 8, rng) if i % 16 == 0 else _random_hex(rng, 32)
        return json.dumps({"signals": [{"type": "pdq", "value": v}]}).encode()

    def mixed_body(i: int) -> bytes:
        hit = stored[i] if i % 4 == 0 else {sig: _random_hex(rng, n) for sig, n in widths.items()}
        return json.dumps({"signals": [{"type": sig, "value": hit[sig]} for sig in widths]}).encode()

    return matcher, {
        "pdq": [pdq_body(i) for i in range(BODIES)],
        "mixed": [mixed_body(i) for i in range(BODIES)],
    }


def answer(matcher: Any, body: bytes) -> bytes:
    """One request: what ``routes_match.match_values`` does, less the loop, batcher and metrics."""
    from opspoor.service.routes_match import MatchRequest, match_json, query_for_value

    req = MatchRequest.model_validate_json(body)
    queries = [query_for_value(s) for s in req.signals]
    found_all = matcher.match_queries(queries)
    out = {
        "results": [
            {"input": i, "type": s.type, "value": s.value.lower(), "matches": [match_json(m) for m in found]}
            for i, (s, found) in enumerate(zip(req.signals, found_all, strict=True))
        ]
    }
    return json.dumps(out, separators=(",", ":")).encode()


def run_requests(matcher: Any, bodies: list[bytes], n: int) -> int:
    hits = 0
    for i in range(n):
        hits += answer(matcher, bodies[i % len(bodies)]).count(b'"entry_id"')
    return hits


def steps(matcher: Any, bodies: list[bytes], n: int) -> dict[str, float]:
    """CPU µs per request of each step (best of 5 rounds)."""
    from opspoor.service.routes_match import MatchRequest, match_json, query_for_value

    best: dict[str, float] = {}
    for _ in range(5):
        t = dict.fromkeys(("parse", "queries", "lookup", "answer"), 0.0)
        for i in range(n):
            body = bodies[i % len(bodies)]
            t0 = time.process_time()
            req = MatchRequest.model_validate_json(body)
            t1 = time.process_time()
            queries = [query_for_value(s) for s in req.signals]
            t2 = time.process_time()
            found_all = matcher.match_queries(queries)
            t3 = time.process_time()
            json.dumps([[match_json(m) for m in found] for found in found_all])
            t4 = time.process_time()
            for k, d in zip(t, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
                t[k] += d
        for k, v in t.items():
            best[k] = min(best.get(k, float("inf")), v / n * 1e6)
    return best


def worker(args: argparse.Namespace) -> None:
    """Set up, warm up, then either answer rounds of requests on stdin's command, or (callgrind) a
    fixed number of requests per workload and exit."""
    import opspoor

    with tempfile.TemporaryDirectory() as folder:
        matcher, bodies = build(folder, args.entries)
        for w in WORKLOADS:
            run_requests(matcher, bodies[w], 2 * BODIES)  # warm-up: every body once, details cached
        if args.count is not None:  # callgrind: just the requests
            run_requests(matcher, bodies[args.workload], args.count)
            return
        print(json.dumps({"ready": str(Path(opspoor.__file__).parent)}), flush=True)
        for line in sys.stdin:
            cmd = json.loads(line)
            if cmd["do"] == "round":
                t = time.process_time()
                hits = run_requests(matcher, bodies[cmd["workload"]], cmd["n"])
                us = (time.process_time() - t) / cmd["n"] * 1e6
                print(json.dumps({"us": us, "hits": hits}), flush=True)
            elif cmd["do"] == "steps":
                print(json.dumps(steps(matcher, bodies[cmd["workload"]], cmd["n"])), flush=True)
            else:
                return


# --- the parent: runs both trees ------------------------------------------------------------------
class Tree:
    def __init__(self, label: str, src: Path, entries: int) -> None:
        self.label, self.src = label, src
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--worker", "--entries", str(entries)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=tree_env(src),
        )
        ready = self._read()["ready"]
        if Path(ready).resolve() != (src / "opspoor").resolve():
            raise SystemExit(f"{label}: imported opspoor from {ready}, not {src}")

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"{self.label}: the worker stopped")
        return json.loads(line)  # type: ignore[no-any-return]

    def ask(self, **cmd: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"do": "quit"}) + "\n")
        self.proc.stdin.close()
        self.proc.wait()


def tree_env(src: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(src.resolve()), "PYTHONHASHSEED": "0"}


def callgrind_instructions(src: Path, entries: int, workload: str, count: int) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        cmd = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            sys.executable,
            __file__,
            "--worker",
            "--entries",
            str(entries),
            "--workload",
            workload,
            "--count",
            str(count),
        ]
        subprocess.run(cmd, env=tree_env(src), check=True, capture_output=True)
        m = re.search(r"^(?:summary|totals): (\d+)", out.read_text(errors="replace"), re.M)
        if not m:
            raise SystemExit(f"no instruction total in {out}")
        return int(m.group(1))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--before", type=Path, help="src folder of the tree to compare against")
    p.add_argument("--after", type=Path, default=ROOT / "src", help="src folder of the tree measured")
    p.add_argument("--entries", type=int, default=10_000)
    p.add_argument("--requests", type=int, default=2000, help="requests per round")
    p.add_argument("--repeats", type=int, default=15, help="rounds per tree and workload")
    p.add_argument("--callgrind", action="store_true", help="also count instructions per request")
    p.add_argument("--cg-small", type=int, default=200)
    p.add_argument("--cg-large", type=int, default=1200)
    p.add_argument("--steps", action="store_true", help="also time the steps one by one (after tree)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--workload", choices=WORKLOADS, default="pdq", help=argparse.SUPPRESS)
    p.add_argument("--count", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args)
        return
    sys.path.insert(0, str(ROOT / "bench"))
    from setup_info import setup_line

    if os.environ.get("BENCH_QUICK"):
        args.requests, args.repeats, args.entries = 200, 3, 2000
    srcs = {"before": args.before, "after": args.after} if args.before else {"after": args.after}
    print(f"setup: {setup_line()}; load average {os.getloadavg()[0]:.1f}")
    print(
        f"one SQLite set of {args.entries:,} entries (md5, sha1, sha256, pdq); {BODIES} bodies per workload; "
        f"CPU time: best and median of {args.repeats} rounds x {args.requests:,} requests, trees interleaved"
    )
    for label, src in srcs.items():
        print(f"  {label}: {src.resolve()}")

    trees = {label: Tree(label, src, args.entries) for label, src in srcs.items()}
    cpu: dict[tuple[str, str], list[float]] = {(t, w): [] for t in trees for w in WORKLOADS}
    hits: dict[tuple[str, str], int] = {}
    try:
        for _ in range(args.repeats):
            for w in WORKLOADS:
                for label, tree in trees.items():
                    r = tree.ask(do="round", workload=w, n=args.requests)
                    cpu[label, w].append(r["us"])
                    hits[label, w] = r["hits"]
        step_times = (
            {w: trees["after"].ask(do="steps", workload=w, n=args.requests) for w in WORKLOADS}
            if args.steps
            else {}
        )
    finally:
        for tree in trees.values():
            tree.close()

    print("\nCPU µs per request (process_time)")
    print("| workload | tree | best | median | matches per round |")
    print("| --- | --- | ---: | ---: | ---: |")
    for w in WORKLOADS:
        for label in trees:
            xs = cpu[label, w]
            print(f"| {w} | {label} | {min(xs):.1f} | {statistics.median(xs):.1f} | {hits[label, w]} |")
    if "before" in trees:
        for w in WORKLOADS:
            best = min(cpu["after", w]) / min(cpu["before", w])
            med = statistics.median(cpu["after", w]) / statistics.median(cpu["before", w])
            print(f"ratio after/before, {w}: best {best:.3f}, median {med:.3f}")
            if hits["after", w] != hits["before", w]:
                print(f"  MATCHES DIFFER: before {hits['before', w]}, after {hits['after', w]}")
    for w, t in step_times.items():
        print(f"steps (after, {w}), CPU µs per request: " + ", ".join(f"{k} {v:.1f}" for k, v in t.items()))

    if args.callgrind:
        extra = args.cg_large - args.cg_small
        print(
            f"\ninstructions per request (callgrind: ({args.cg_large} - {args.cg_small} requests) / {extra})"
        )
        per: dict[tuple[str, str], float] = {}
        for w in WORKLOADS:
            for label, src in srcs.items():
                small = callgrind_instructions(src, args.entries, w, args.cg_small)
                large = callgrind_instructions(src, args.entries, w, args.cg_large)
                per[label, w] = (large - small) / extra
                print(f"| {w} | {label} | {per[label, w]:,.0f} |", flush=True)
            if "before" in srcs:
                print(f"ratio after/before, {w}: {per['after', w] / per['before', w]:.3f}")


if __name__ == "__main__":
    main()
