"""``make bench``: run every benchmark in turn and collect their tables in docs/benchmarks.md.

Each benchmark runs its anchor in the same run on the same data and prints the ratio; this
script only sequences them (one at a time, so they do not compete for the 2 cores).
Set BENCH_QUICK=1 for a smoke run of every script at small sizes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "results"

QUICK = bool(os.environ.get("BENCH_QUICK"))
BENCHES: list[tuple[str, list[str], list[str]]] = [
    # (name, full args, quick args)
    ("hashing", [], ["--quick"]),
    ("index", [], ["--quick"]),
    ("hashsets", [], ["--n", "200000"]),
    ("scan", [], ["--n", "40", "--entries", "20000"]),
    ("service", [], ["--entries", "10000", "--seconds", "5"]),
    ("local", [], ["--quick"]),
    ("robust_cost", [], ["--n", "6", "--rounds", "1"]),
    (
        "live",
        [],
        ["--entries", "20000", "--clips", "3", "--streams", "20", "--seconds", "5", "--minutes", "2"],
    ),
]


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    only = set(sys.argv[1:])
    failed = []
    for name, full, quick in BENCHES:
        if only and name not in only:
            continue
        script = ROOT / "bench" / f"{name}.py"
        if not script.exists():
            print(f"== {name}: bench/{name}.py not present, skipped")
            continue
        out = OUT / f"{name}.md"
        args = [sys.executable, str(script), *(quick if QUICK else full), "--out", str(out)]
        print(f"\n== {name}: {' '.join(args[1:])}", flush=True)
        t = time.time()
        rc = subprocess.run(args, cwd=ROOT, check=False).returncode
        print(f"== {name}: exit {rc} after {time.time() - t:.0f} s", flush=True)
        if rc:
            failed.append(name)
    print(f"\nresults in {OUT}/ (copy them into docs/benchmarks.md)")
    if failed:
        sys.exit(f"benchmarks failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
