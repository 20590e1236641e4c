"""Benchmark: hotline intake end to end, on PostgreSQL (issue 22).

Starts the real server (``opspoor serve``, 2 workers) on a fresh PostgreSQL database with one known
hash set (the MD5s of a tenth of the pictures), then C keep-alive connections each run whole
reports, one after another: submit (JSON), upload three benign JPEGs of about 64 KB (generated
gradients and shapes, 640x480), finish (hashing at upload, matching, bundling, referral by IP at
finish). Pictures are drawn from a pool smaller than the number of files, so reports share files
and bundle as viral files do.

The client is bench/service.py's: requests written directly on asyncio streams (httpx spends
2-4 ms of CPU per request, and the client shares the 2 cores with the server and PostgreSQL).

It prints the sustained rate (reports/s over the whole run and over its slowest tenth), errors,
the CPU per report of the server, of PostgreSQL's backends and of the client, the server's RSS at
every tenth, and, as the anchor measured in the same run, how many reports/s one core would do if
it only hashed the three files in-process: the ratio says what the rest costs.

    .venv/bin/python bench/intake.py --reports 300                    # quick
    .venv/bin/python bench/intake.py --reports 10000                  # the issue's size
    .venv/bin/python bench/intake.py --recall                         # bundling recall (below)

``--recall``: bundling recall on re-encoded copies of the same benign pictures, on the embedded
SQLite store through the service: P pictures, each reported R times as a different encoding
(JPEG quality 95..50, a 0.8x downscale, PNG), in shuffled order, one file per report, plus the
same number of reports with a picture each of its own. Every report of one picture must end in
one bundle, no bundle may hold two pictures, and a picture reported once stays alone.

Goals (issue 22): >= 100 reports/s sustained on 2 cores, 0 errors, memory flat; bundling recall
100 % with no bundle holding two pictures.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import suppress
from pathlib import Path

from service import (
    _read_response,
    event_loop_factory,
    free_port,
    pg_database,
    server_cpu,
    server_rss,
    upload_request,
    wait_ready,
)
from setup_info import setup_line

ROOT = Path(__file__).resolve().parents[1]
GOAL_RPS = 100.0
CORES = 2
DOC = {
    "report": {
        "incidentSummary": {
            "incidentType": "Child Pornography (possession, manufacture, and distribution)",
            "incidentDateTime": "2026-02-28T10:00:00Z",
        },
        "personOrUserReported": [{"ipCaptureEvent": [{"ipAddress": "193.0.6.139", "eventName": "Upload"}]}],
    }
}


def picture(seed: int) -> bytes:
    """A benign JPEG of about 64 KB."""
    from opspoor.demo.images import generate_image

    out = io.BytesIO()
    generate_image(seed, 640, 480, style="mixed").save(out, "JPEG", quality=92)
    return out.getvalue()


def pictures(n: int) -> list[bytes]:
    with ProcessPoolExecutor(CORES) as ex:
        return list(ex.map(picture, range(n), chunksize=16))


def hash_only_rps(pics: list[bytes], n: int = 60) -> float:
    """Reports/s of one core that only hashes three files each, in-process (the anchor)."""
    from opspoor.signals.engine import hash_bytes

    hash_bytes(pics[0])
    t = time.process_time()
    for i in range(n):
        hash_bytes(pics[i % len(pics)])
    return 1 / ((time.process_time() - t) / n * 3)


def postgres_cpu(database: str) -> float:
    """CPU seconds used so far by the PostgreSQL backends serving ``database``."""
    import psutil

    total = 0.0
    for p in psutil.process_iter(["cmdline"]):
        with suppress(psutil.Error):
            line = " ".join(p.info["cmdline"] or [])
            if line.startswith("postgres:") and f" {database} " in f"{line} ":
                t = p.cpu_times()
                total += t.user + t.system
    return total


class Wire:
    """Whole HTTP/1.1 requests of the intake, as bytes."""

    def __init__(self, token: str) -> None:
        self.head = f"Host: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        self.submit = self.post("/v1/intake/submit", "application/json", json.dumps(DOC).encode())

    def post(self, path: str, ctype: str | None, body: bytes) -> bytes:
        kind = f"Content-Type: {ctype}\r\n" if ctype else ""
        return f"POST {path} HTTP/1.1\r\n{self.head}{kind}Content-Length: {len(body)}\r\n\r\n".encode() + body

    def upload(self, rid: int, data: bytes) -> bytes:
        req = upload_request("p.jpg", data)
        return self.post(f"/v1/intake/reports/{rid}/upload", req.content_type, req.body)

    def finish(self, rid: int) -> bytes:
        return self.post(f"/v1/intake/reports/{rid}/finish", None, b"")


async def run_reports(
    port: int, wire: Wire, ks: Iterator[int], clients: int, files_of: list[list[bytes]]
) -> tuple[list[float], list[str]]:
    """Whole reports over ``clients`` connections; (completion times, errors)."""
    done: list[float] = []
    errors: list[str] = []

    async def one() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)

        async def call(data: bytes, expect: int) -> bytes:
            writer.write(data)
            status, body = await _read_response(reader)
            if status != expect:
                raise ValueError(f"{status} {body[:200]!r}")
            return body

        try:
            for k in ks:
                try:
                    rid = json.loads(await call(wire.submit, 201))["reportId"]
                    for data in files_of[k]:
                        await call(wire.upload(rid, data), 200)
                    await call(wire.finish(rid), 200)
                    done.append(time.perf_counter())
                except ValueError as exc:
                    errors.append(f"report {k}: {exc}")
        except (OSError, asyncio.IncompleteReadError) as exc:
            errors.append(f"connection: {type(exc).__name__}: {exc}")
        finally:
            writer.close()

    await asyncio.gather(*(one() for _ in range(clients)))
    return done, errors


def wait_health(base: str, timeout: float = 120) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with suppress(httpx.HTTPError):
            if httpx.get(f"{base}/v1/health", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise SystemExit("the server did not start")


def throughput(args: argparse.Namespace) -> None:
    from opspoor.hashsets.model import Category, Entry
    from opspoor.store import import_entries, open_store
    from opspoor.store.tokens import create_token

    print(setup_line(), flush=True)
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    pool = args.pool or min(args.reports, 2000)
    t = time.perf_counter()
    pics = pictures(pool)
    print(
        f"{pool} pictures, {sum(map(len, pics)) / pool / 1024:.0f} KB on average "
        f"({time.perf_counter() - t:.0f} s to make)",
        flush=True,
    )
    rng = random.Random(22)
    total = args.clients + args.reports  # the first ``clients`` reports warm up
    files_of = [[pics[rng.randrange(pool)] for _ in range(3)] for _ in range(total)]
    with pg_database() as url:
        database = url.rsplit("/", 1)[1]
        with open_store(url) as store:
            known = [
                Entry({"md5": hashlib.md5(p).hexdigest()}, category=Category("us-cat", "1"))
                for p in pics[::10]
            ]
            import_entries(store, "known", known, tenant="hl")
            reporter = create_token(store, "reporter", "hl")[1]
        port = free_port()
        env = {**os.environ, "OPSPOOR_SERVICE_INTAKE_KEY": os.urandom(32).hex()}
        cmd = [sys.executable, "-m", "opspoor", "serve", "--db", url, "--port", str(port)]
        cmd += ["--workers", str(args.workers), "--rate", "0", "--log-level", "warning"]
        server = subprocess.Popen(cmd, cwd=ROOT, env=env)
        wire = Wire(reporter)
        try:
            wait_health(f"http://127.0.0.1:{port}")
            wait_ready(f"http://127.0.0.1:{port}", reporter, 0, 120)  # both workers' match index loaded
            if args.pause:  # time to attach a profiler to the server
                print(f"server pid {server.pid}; starting in {args.pause:g} s", flush=True)
                time.sleep(args.pause)
            factory = event_loop_factory()
            runner = asyncio.Runner(loop_factory=factory) if factory else asyncio.Runner()
            with runner:
                _, warm_errors = runner.run(
                    run_reports(port, wire, iter(range(args.clients)), args.clients, files_of)
                )
                rss = [server_rss(server.pid)]
                cpu, pg, client = server_cpu(server.pid), postgres_cpu(database), time.process_time()
                tenth = max(1, args.reports // 10)

                async def sampled() -> tuple[list[float], list[str]]:
                    async def sample() -> None:
                        while True:
                            await asyncio.sleep(max(1.0, args.reports / 2000))
                            rss.append(server_rss(server.pid))

                    task = asyncio.create_task(sample())
                    try:
                        return await run_reports(
                            port, wire, iter(range(args.clients, total)), args.clients, files_of
                        )
                    finally:
                        task.cancel()

                t = time.perf_counter()
                done, errors = runner.run(sampled())
                elapsed = time.perf_counter() - t
            cpu = server_cpu(server.pid) - cpu
            pg = postgres_cpu(database) - pg
            client = time.process_time() - client
            rss.append(server_rss(server.pid))
            with open_store(url) as store, store.read() as conn:
                import sqlalchemy as sa

                bundles = conn.execute(
                    sa.text(
                        "SELECT count(DISTINCT bundle_id), count(*), count(bundle_id) FROM intake_reports "
                        "WHERE status = 'finished'"
                    )
                ).one()
        finally:
            server.terminate()
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
    if warm_errors:
        print(f"warm-up errors (not counted): {len(warm_errors)}; first: {warm_errors[0]}")
    done.sort()
    windows = [
        tenth / (done[i + tenth - 1] - (done[i - 1] if i else t))
        for i in range(0, len(done) - tenth + 1, tenth)
    ]
    rps = len(done) / elapsed
    anchor = hash_only_rps(pics[:60])
    mib = 2**20
    n = max(1, len(done))
    per = {"server": cpu / n * 1000, "postgres": pg / n * 1000, "client": client / n * 1000}
    print(f"{args.reports} reports x 3 files, {args.clients} connections, {args.workers} workers")
    print(f"intake: {rps:.1f} reports/s ({elapsed:.1f} s), errors {len(errors)}")
    print("reports/s per tenth of the run:", " ".join(f"{w:.1f}" for w in windows))
    print(f"slowest tenth: {min(windows, default=0):.1f} reports/s")
    print(
        f"anchor: hashing alone, one core in-process: {anchor:.1f} reports/s "
        f"({1000 / anchor:.1f} ms CPU per report); intake/anchor = {rps / anchor:.2f}"
    )
    print(
        "CPU per report: "
        + ", ".join(f"{k} {v:.1f} ms" for k, v in per.items())
        + f"; total {sum(per.values()):.1f} ms against a budget of {CORES * 1000 / GOAL_RPS:.0f} ms "
        f"({CORES} cores at {GOAL_RPS:.0f} reports/s)"
    )
    step = max(1, len(rss) // 10)
    print("server RSS (MiB) over the run:", " ".join(f"{r / mib:.0f}" for r in rss[::step]))
    growth = rss[-1] / rss[0] - 1
    print(f"server RSS: {rss[0] / mib:.0f} MiB at start, {rss[-1] / mib:.0f} MiB at end ({growth:+.1%})")
    print(f"bundles: {bundles[0]} holding {bundles[2]} of {bundles[1]} finished reports")
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for e in errors[:5]:
        print("error:", e)
    print("goal >= 100 reports/s:", "met" if rps >= GOAL_RPS and not errors else "NOT met")


VARIANTS = ("jpeg q95", "jpeg q75", "jpeg q50", "0.8x jpeg q85", "png")


def variant(seed: int, how: str) -> bytes:
    """A benign picture encoded one way (the variants of one picture are the same photo)."""
    from opspoor.demo.images import generate_image

    img = generate_image(seed, 640, 480, style="mixed")
    out = io.BytesIO()
    if how == "png":
        img.save(out, "PNG")
    elif how.startswith("0.8x"):
        img.resize((512, 384)).save(out, "JPEG", quality=85)
    else:
        img.save(out, "JPEG", quality=int(how.rsplit("q", 1)[1]))
    return out.getvalue()


def recall(args: argparse.Namespace) -> None:
    """Bundling recall through the service on the embedded SQLite store (see the module)."""
    import tempfile

    from fastapi.testclient import TestClient

    from opspoor.service.app import create_app
    from opspoor.service.settings import Settings
    from opspoor.store import open_store
    from opspoor.store.tokens import create_token

    print(setup_line(), flush=True)
    n = args.pictures
    reports = [(seed, how) for seed in range(5000, 5000 + n) for how in VARIANTS]
    reports += [(seed, "jpeg q90") for seed in range(6000, 6000 + n)]  # pictures reported once
    random.Random(22).shuffle(reports)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/store.sqlite"
        with open_store(url) as store:
            rep, hl = create_token(store, "reporter", "hl")[1], create_token(store, "hotline", "hl")[1]
        # a loaded machine may take long over the first decode (the kernels load): no time limit here
        settings = Settings(db=url, intake_key=os.urandom(32).hex(), rate_per_second=0, decode_seconds=600)
        bundle_of: dict[int, int | None] = {}
        seed_of: dict[int, int] = {}
        with TestClient(create_app(settings)) as c:
            r_h, h_h = {"Authorization": f"Bearer {rep}"}, {"Authorization": f"Bearer {hl}"}
            t = time.perf_counter()
            for seed, how in reports:
                r = c.post("/v1/intake/submit", headers=r_h, json=DOC)
                rid = r.json()["reportId"]
                for r in (
                    c.post(
                        f"/v1/intake/reports/{rid}/upload",
                        headers=r_h,
                        files={"file": ("p", variant(seed, how))},
                    ),
                    c.post(f"/v1/intake/reports/{rid}/finish", headers=r_h),
                ):
                    if r.status_code != 200:
                        raise SystemExit(f"report {rid} ({seed}, {how}): {r.status_code} {r.text[:300]}")
                seed_of[rid] = seed
            elapsed = time.perf_counter() - t
            for rid in seed_of:
                bundle_of[rid] = c.get(f"/v1/intake/reports/{rid}", headers=h_h).json()["bundleId"]
    by_seed: dict[int, set[int | None]] = {}
    by_bundle: dict[int, set[int]] = {}
    for rid, seed in seed_of.items():
        by_seed.setdefault(seed, set()).add(bundle_of[rid])
        if bundle_of[rid] is not None:
            by_bundle.setdefault(bundle_of[rid], set()).add(seed)  # type: ignore[arg-type]
    repeated = [s for s in by_seed if s < 6000]
    whole = sum(1 for s in repeated if len(by_seed[s]) == 1 and None not in by_seed[s])
    mixed = sum(1 for seeds in by_bundle.values() if len(seeds) > 1)
    singles_alone = sum(1 for s in by_seed if s >= 6000 and by_seed[s] == {None})
    print(
        f"{len(reports)} reports in {elapsed:.1f} s: {n} pictures x {len(VARIANTS)} encodings "
        f"({', '.join(VARIANTS)}), shuffled, and {n} pictures reported once"
    )
    print(f"pictures whose reports all ended in one bundle: {whole} / {n} ({whole / n:.1%})")
    print(f"bundles holding two or more pictures: {mixed} of {len(by_bundle)}")
    print(f"pictures reported once left alone: {singles_alone} / {n}")
    met = whole == n and mixed == 0 and singles_alone == n
    print(
        "goal (every picture's reports in one bundle, no bundle of two pictures):",
        "met" if met else "NOT met",
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reports", type=int, default=300)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--pool", type=int, default=0, help="distinct pictures (default: min(reports, 2000))")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--recall", action="store_true", help="the bundling recall benchmark instead")
    ap.add_argument("--pictures", type=int, default=60, help="--recall: pictures reported 5 times each")
    ap.add_argument("--pause", type=float, default=0, help="seconds to wait (to attach a profiler)")
    args = ap.parse_args()
    if args.recall:
        recall(args)
    else:
        throughput(args)


if __name__ == "__main__":
    main()
