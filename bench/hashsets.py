"""Benchmark: import a synthetic VICS 2.0 hash set into SQLite and PostgreSQL.

The file holds N benign, random entries (MD5, SHA-1 and a PDQ in AlternativeHashes, a category and
flags); it is written once by streaming and cached under .cache/. Each import runs in a child
process through the real path (``read_entries`` -> ``import_entries``), so its peak RSS is the
child's own (``wait4`` rusage). The reader alone is timed too (as batches of columns, which is what
the import reads, and as Entry objects), and the store alone on in-memory batches.

Each line gives the CPU time per entry of the importing process (``client``) and, for PostgreSQL,
of the server backends serving the benchmark's database (``server``, polled from /proc; the
server's WAL writer and checkpointer are shown apart, as they also serve others). The import
logs how long its phases took: loading the rows, building the deferred indexes, and the
duplicate search. On a shared machine, compare CPU per entry rather than wall-clock rates.

    .venv/bin/python bench/hashsets.py --n 200000          # quick check
    .venv/bin/python bench/hashsets.py                     # 10M entries (the issue's goal)

Goal (issue 3): >= 200k entries/s into PostgreSQL, peak RSS < 1 GiB independent of file size.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import numpy as np

from opspoor.hashsets.formats import EntryBatch
from opspoor.hashsets.model import Category

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache"
PG_ADMIN = os.environ.get("OPSPOOR_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
CONTEXT = "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/Default/$metadata#Media"
CHUNK = 10_000
GOAL_RATE = 200_000
GOAL_RSS = 1 << 30


def bench_file(n: int, seed: int = 1) -> Path:
    """The cached synthetic VICS 2.0 file of ``n`` entries (written on first use)."""
    CACHE.mkdir(exist_ok=True)
    path = CACHE / f"bench-vics2-cat1-5-{n}.json"  # categories 1-5: a known set stores every record
    if path.exists():
        return path
    rng = np.random.default_rng(seed)
    tmp = path.with_suffix(".partial")
    with tmp.open("w", encoding="ascii") as f:
        f.write(f'{{"@odata.context": "{CONTEXT}", "value": [\n')
        for start in range(0, n, CHUNK):
            k = min(CHUNK, n - start)
            md5 = rng.bytes(16 * k).hex().upper()
            sha1 = rng.bytes(20 * k).hex().upper()
            pdq = rng.bytes(32 * k).hex()
            cat = rng.integers(1, 6, k)  # category 0 (uncategorised) is not imported into a known set
            size = rng.integers(1_000, 20_000_000, k)
            flags = rng.integers(0, 2, (k, 3))
            tf = ("false", "true")
            lines = [
                f'{{"MediaID": {start + i + 1}, "Category": {cat[i]}, '
                f'"MD5": "{md5[32 * i : 32 * i + 32]}", "SHA1": "{sha1[40 * i : 40 * i + 40]}", '
                f'"MediaSize": {size[i]}, "VictimIdentified": "{tf[flags[i, 0]]}", '
                f'"OffenderIdentified": "{tf[flags[i, 1]]}", "IsDistributed": "{tf[flags[i, 2]]}", '
                f'"Series": "", "Tags": "", "IsPrecategorized": "true", '
                f'"DateUpdated": "2024-01-01T00:00:00Z", '
                f'"AlternativeHashes": [{{"HashName": "PDQ", "HashValue": "{pdq[64 * i : 64 * i + 64]}"}}]}}'
                for i in range(k)
            ]
            f.write((",\n" if start else "") + ",\n".join(lines))
        f.write("\n]}\n")
    tmp.rename(path)
    return path


def synthetic_batches(n: int, seed: int = 2) -> Iterator[EntryBatch]:
    """Batches like the file's, made in memory: the store's own rate, without the reader."""
    rng = np.random.default_rng(seed)
    cats = [Category("us-cat", str(c)) for c in range(6)]
    flag = (False, True)
    for start in range(0, n, CHUNK):
        k = min(CHUNK, n - start)
        md5, sha1, pdq = rng.bytes(16 * k).hex(), rng.bytes(20 * k).hex(), rng.bytes(32 * k).hex()
        bits = rng.integers(0, 2, (3, k)).tolist()
        yield EntryBatch(
            {
                "md5": [md5[i : i + 32] for i in range(0, 32 * k, 32)],
                "sha1": [sha1[i : i + 40] for i in range(0, 40 * k, 40)],
                "pdq": [pdq[i : i + 64] for i in range(0, 64 * k, 64)],
            },
            [cats[c] for c in rng.integers(1, 6, k).tolist()],
            *([flag[b] for b in row] for row in bits),
            [None] * k,
            [()] * k,
            [None] * k,
            ["2024-01-01T00:00:00Z"] * k,
            list(map(str, range(start + 1, start + k + 1))),
            rng.integers(1_000, 20_000_000, k).tolist(),
            [{"vics": {"IsPrecategorized": "true"}} for _ in range(k)],
            [{} for _ in range(k)],
        )


def child(mode: str, arg: str, url: str) -> None:
    """Runs in the child process: read the file, import it, or import in-memory entries."""
    import logging

    from opspoor.hashsets.formats import read_entries

    logging.basicConfig(level=logging.WARNING, format="    %(message)s", stream=sys.stderr)
    logging.getLogger("opspoor.store.hashsets").setLevel(logging.DEBUG)  # phase timings
    from opspoor.store import import_entries, open_store
    from opspoor.store.hashsets import import_batches

    t0, c0 = time.perf_counter(), time.process_time()
    if mode == "read":  # as the import reads: in batches of columns
        out = {"entries": sum(len(b) for b in read_entries(arg, "vics2").batches())}
    elif mode == "read-entries":  # one Entry object at a time
        out = {"entries": sum(1 for _ in read_entries(arg, "vics2"))}
    else:
        with open_store(url) as store:
            t0, c0 = time.perf_counter(), time.process_time()
            if mode == "import":
                r = import_entries(store, "bench", read_entries(arg, "vics2"))
            else:
                r = import_batches(store, "bench", synthetic_batches(int(arg)))
        out = {"entries": r.added, "duplicates": r.duplicates, "rejected": r.rejected}
    out["seconds"] = time.perf_counter() - t0
    out["cpu"] = time.process_time() - c0
    print(json.dumps(out))


def run_child(mode: str, path: Path | int, url: str = "") -> dict[str, float]:
    """Run one measurement in a fresh process; adds its peak RSS (bytes) from wait4 and, for
    PostgreSQL, the CPU seconds of the server processes serving it."""
    server = ServerCpu(url.rsplit("/", 1)[1]) if url.startswith("postgresql") else None
    proc = subprocess.Popen(
        [sys.executable, __file__, "--child", mode, str(path), url], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    text = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if server is not None:
        server.stop()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{mode} child failed with exit status {proc.returncode}")
    result = json.loads(text.strip().splitlines()[-1])
    result["peak_rss"] = usage.ru_maxrss * 1024  # Linux reports KiB
    if server is not None:
        result["server_cpu"], result["server_bg_cpu"] = server.seconds()
    return result


class ServerCpu:
    """CPU seconds of the PostgreSQL backends serving one database (found by their process title,
    ``postgres: USER DB ...``), and of the server's background writers (WAL writer, checkpointer,
    background writer: shared with whatever else the server does meanwhile). Polled from /proc,
    since backends exit with their connection."""

    BACKGROUND = ("walwriter", "checkpointer", "background writer")

    def __init__(self, db: str) -> None:
        self.db = db
        self.seen: dict[int, float] = {}
        self.bg_start = self._background()
        self.bg_end = self.bg_start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    @staticmethod
    def _cpu(pid: str) -> float:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def _titles(self) -> Iterator[tuple[str, str]]:
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:
                    yield pid, Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
                except OSError:
                    continue

    def _background(self) -> float:
        total = 0.0
        for pid, title in self._titles():
            name = title.rstrip("\x00 ").rsplit(": ", 1)[-1]
            if title.startswith("postgres: ") and name in self.BACKGROUND:
                with suppress(OSError, IndexError, ValueError):
                    total += self._cpu(pid)
        return total

    def _poll(self) -> None:
        while not self._stop.wait(0.2):
            for pid, title in self._titles():
                if title.startswith("postgres: ") and f" {self.db} " in title:
                    with suppress(OSError, IndexError, ValueError):
                        self.seen[int(pid)] = self._cpu(pid)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.bg_end = self._background()

    def seconds(self) -> tuple[float, float]:
        return sum(self.seen.values()), self.bg_end - self.bg_start


def setup_text(n: int, path: Path) -> str:
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"CPU {cpu}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"N = {n:,} entries, file {path.stat().st_size / 2**20:,.0f} MiB ({path.name})"
    )


def report(label: str, n: int, r: dict[str, float], goal: bool) -> None:
    rate = r["entries"] / r["seconds"]
    per = 1e6 / max(r["entries"], 1)
    line = (
        f"{label:<27} {r['entries']:>11,.0f} entries {r['seconds']:7.1f} s {rate:>9,.0f} entries/s  "
        f"peak RSS {r['peak_rss'] / 2**20:5.0f} MiB  CPU us/entry: client {r['cpu'] * per:5.1f}"
    )
    if "server_cpu" in r:
        line += f" server {r['server_cpu'] * per:5.1f} (+ WAL/ckpt {r['server_bg_cpu'] * per:4.1f})"
    if goal:
        ok = rate >= GOAL_RATE and r["peak_rss"] < GOAL_RSS
        line += f"  [goal >= {GOAL_RATE:,}/s, < 1 GiB: {'met' if ok else 'NOT met'}]"
    print(line, flush=True)


class _Tee:
    """Print to the terminal and to the --out file."""

    def __init__(self, *streams: Any) -> None:
        self.streams = streams

    def write(self, text: str) -> int:
        for st in self.streams:
            st.write(text)
            st.flush()
        return len(text)

    def flush(self) -> None:
        for st in self.streams:
            st.flush()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10_000_000, help="entries in the synthetic file")
    ap.add_argument("--no-sqlite", action="store_true")
    ap.add_argument("--no-postgres", action="store_true")
    ap.add_argument("--no-reader", action="store_true", help="skip timing the reader alone")
    ap.add_argument("--no-store-only", action="store_true", help="skip importing in-memory entries")
    ap.add_argument("--out", type=Path, help="also write what is printed to this file")
    args = ap.parse_args()
    if args.out is not None:
        sys.stdout = _Tee(sys.stdout, open(args.out, "w", encoding="utf-8"))  # noqa: SIM115

    t = time.perf_counter()
    path = bench_file(args.n)
    made = time.perf_counter() - t
    print(setup_text(args.n, path) + (f"; file written in {made:.0f} s" if made > 1 else ""), flush=True)

    if not args.no_reader:
        report("read only (batches)", args.n, run_child("read", path), goal=False)
        report("read only (Entry objects)", args.n, run_child("read-entries", path), goal=False)
    if not args.no_sqlite:
        db = CACHE / f"bench-{uuid.uuid4().hex[:8]}.sqlite"
        try:
            report("import -> SQLite", args.n, run_child("import", path, str(db)), goal=False)
        finally:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{db}{suffix}").unlink(missing_ok=True)
    if not args.no_postgres:
        with pg_database() as (url, version):
            report(f"import -> PostgreSQL {version}", args.n, run_child("import", path, url), goal=True)
        if not args.no_store_only:
            with pg_database() as (url, _):
                report("  store only (in memory)", args.n, run_child("store", args.n, url), goal=False)


@contextmanager
def pg_database() -> Iterator[tuple[str, str]]:
    """A fresh PostgreSQL database for one measurement, dropped afterwards."""
    import sqlalchemy as sa

    name = f"opspoor_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        version = str(c.execute(sa.text("SHOW server_version")).scalar_one()).split()[0]
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN.rsplit("/", 1)[0] + "/" + name, version
    finally:
        with admin.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(*sys.argv[2:5])
    else:
        main()
