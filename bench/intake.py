"""Benchmark: hotline intake end to end, on PostgreSQL (issue 22).

Starts the real server (``opspoor serve``, 2 workers) on a fresh PostgreSQL database with one known
hash set (the MD5s of a tenth of the pictures), then C client threads each run whole reports:
submit (JSON), upload three benign JPEGs of about 64 KB (generated gradients and shapes), finish
(hashing at upload, matching, bundling, referral by IP at finish). Pictures are drawn from a pool
smaller than the number of files, so reports share files and bundle as viral files do.

It prints reports/s, errors, the server's CPU per report and its RSS at start and end, and, as the
anchor measured in the same run, how many reports/s one core would do if it only hashed the three
files in-process (the floor no intake can beat): the ratio says what the rest costs.

    .venv/bin/python bench/intake.py --reports 300                    # quick
    .venv/bin/python bench/intake.py --reports 10000 --clients 16     # the issue's size

Goals (issue 22): >= 100 reports/s sustained on 2 cores, 0 errors, memory flat.
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from service import free_port, pg_database, server_cpu, server_rss
from setup_info import setup_line

ROOT = Path(__file__).resolve().parents[1]
GOAL_RPS = 100.0


def picture(seed: int) -> bytes:
    """A benign JPEG of about 64 KB."""
    from opspoor.demo.images import generate_image

    out = io.BytesIO()
    generate_image(seed, 640, 480, style="mixed").save(out, "JPEG", quality=92)
    return out.getvalue()


def hash_only_rps(pics: list[bytes], n: int = 30) -> float:
    """Reports/s of one core that only hashes three files each, in-process (the anchor)."""
    from opspoor.signals.engine import hash_bytes

    hash_bytes(pics[0])
    t = time.process_time()
    for i in range(n):
        hash_bytes(pics[i % len(pics)])
    return 1 / ((time.process_time() - t) / n * 3)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reports", type=int, default=300)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--pool", type=int, default=0, help="distinct pictures (default: the number of reports)")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()

    import hashlib

    import httpx

    from opspoor.hashsets.model import Category, Entry
    from opspoor.store import import_entries, open_store
    from opspoor.store.tokens import create_token

    print(setup_line(), flush=True)
    pool = args.pool or args.reports
    pics = [picture(k) for k in range(pool)]
    print(f"{pool} pictures, {sum(map(len, pics)) / pool / 1024:.0f} KB on average", flush=True)
    doc = {
        "report": {
            "incidentSummary": {
                "incidentType": "Child Pornography (possession, manufacture, and distribution)",
                "incidentDateTime": "2026-02-28T10:00:00Z",
            },
            "personOrUserReported": [
                {"ipCaptureEvent": [{"ipAddress": "193.0.6.139", "eventName": "Upload"}]}
            ],
        }
    }
    with pg_database() as url:
        with open_store(url) as store:
            known = [
                Entry({"md5": hashlib.md5(p).hexdigest()}, category=Category("us-cat", "1"))
                for p in pics[::10]
            ]
            import_entries(store, "known", known, tenant="hl")
            reporter = create_token(store, "reporter", "hl")[1]
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {**os.environ, "OPSPOOR_SERVICE_INTAKE_KEY": os.urandom(32).hex()}
        cmd = [sys.executable, "-m", "opspoor", "serve", "--db", url, "--port", str(port)]
        cmd += ["--workers", str(args.workers), "--rate", "0", "--log-level", "warning"]
        server = subprocess.Popen(cmd, cwd=ROOT, env=env)
        errors: list[str] = []
        lock = threading.Lock()
        local = threading.local()

        def client() -> httpx.Client:
            if not hasattr(local, "c"):
                local.c = httpx.Client(
                    base_url=base, timeout=60, headers={"Authorization": f"Bearer {reporter}"}
                )
            return local.c  # type: ignore[no-any-return]

        def one(k: int) -> None:
            c = client()
            try:
                r = c.post("/v1/intake/submit", json=doc)
                r.raise_for_status()
                rid = r.json()["reportId"]
                for j in range(3):
                    data = pics[(k * 3 + j) % pool]
                    c.post(
                        f"/v1/intake/reports/{rid}/upload", files={"file": ("p.jpg", data)}
                    ).raise_for_status()
                c.post(f"/v1/intake/reports/{rid}/finish").raise_for_status()
            except httpx.HTTPError as exc:
                with lock:
                    errors.append(f"report {k}: {exc}")

        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if httpx.get(f"{base}/v1/health", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit("the server did not start")
                time.sleep(0.2)
            with ThreadPoolExecutor(args.clients) as ex:  # warm-up
                list(ex.map(one, range(args.clients)))
            rss_start, cpu = server_rss(server.pid), server_cpu(server.pid)
            t = time.perf_counter()
            with ThreadPoolExecutor(args.clients) as ex:
                list(ex.map(one, range(args.clients, args.clients + args.reports)))
            elapsed = time.perf_counter() - t
            cpu = server_cpu(server.pid) - cpu
            rss_end = server_rss(server.pid)
            with open_store(url) as store, store.read() as conn:
                import sqlalchemy as sa

                bundles = conn.execute(
                    sa.text("SELECT count(DISTINCT bundle_id), count(*) FROM intake_reports")
                ).one()
        finally:
            server.terminate()
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
    rps = args.reports / elapsed
    anchor = hash_only_rps(pics[:30])
    mib = 2**20
    print(f"{args.reports} reports x 3 files, {args.clients} client threads, {args.workers} workers")
    print(f"intake: {rps:.1f} reports/s ({elapsed:.1f} s), errors {len(errors)}")
    print(
        f"anchor: hashing alone, one core in-process: {anchor:.1f} reports/s; "
        f"intake/anchor = {rps / anchor:.2f}"
    )
    print(f"server CPU: {cpu / args.reports * 1000:.1f} ms per report")
    print(
        f"server RSS: {rss_start / mib:.0f} MiB at start, {rss_end / mib:.0f} MiB at end "
        f"({rss_end / rss_start - 1:+.1%})"
    )
    print(f"bundles: {bundles[0]} for {bundles[1]} reports")
    for e in errors[:5]:
        print("error:", e)
    print("goal >= 100 reports/s:", "met" if rps >= GOAL_RPS and not errors else "NOT met")


if __name__ == "__main__":
    main()
