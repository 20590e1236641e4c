"""Benchmark: the HTTP service under load, on PostgreSQL.

Starts the real server (``opspoor serve``, 2 workers) on a fresh PostgreSQL database holding one
hash set of N benign, random PDQ values (imported through the store's import path), then runs 64
concurrent async clients for S seconds (``--seconds``/``--duration``, default 60) against each of:

  (a) ``POST /v1/match`` with one PDQ value (JSON); one query in 16 is 8 bits from a stored value,
      so matches are found and reported too;
  (b) ``POST /v1/match`` with a 1024x768 JPEG upload (generated gradients, shapes and text),
      hashed (PDQ) and matched by the server.

It prints requests/s, p50 and p99 latency (each request timed from its send to its whole response)
and errors for each, the CPU per request of the server and of the load generator itself, and the
server's RSS (parent plus workers) at the start and the end.

The clients are asyncio tasks (on uvloop when installed), each with its own keep-alive HTTP/1.1
connection, written directly on asyncio streams with the requests' bytes made before the clock
starts (``--client raw``, the default): the load generator shares the 2 cores with the server, and
httpx's AsyncClient spends 2-4 ms of CPU per request itself, so with it the benchmark would measure
the client, not the server (``--client httpx`` runs it that way all the same).

    .venv/bin/python bench/service.py --entries 10000 --seconds 5     # quick check
    .venv/bin/python bench/service.py                                 # 1M entries, 60 s each

Goals (issue 7): (a) >= 1,500 requests/s with p99 < 50 ms; (b) >= 150 requests/s; 0 errors;
RSS growth < 5 %.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import io
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from setup_info import setup_line  # noqa: E402

PG_ADMIN = os.environ.get("OPSPOOR_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
GOAL_VALUE_RPS, GOAL_VALUE_P99_MS, GOAL_UPLOAD_RPS, GOAL_RSS_GROWTH = 1500, 50.0, 150, 0.05


@contextmanager
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database, dropped afterwards."""
    import sqlalchemy as sa

    name = f"opspoor_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def fill_store(url: str, n: int, seed: int = 7) -> tuple[np.ndarray, str]:
    """One hash set of ``n`` random PDQ values; returns the values (N, 32) uint8 and a platform token."""
    from opspoor.hashsets.model import Category, Entry
    from opspoor.store import import_entries, open_store
    from opspoor.store.tokens import create_token

    values = np.random.default_rng(seed).integers(0, 256, (n, 32), dtype=np.uint8)
    cat = Category("us-cat", "1")

    def entries() -> Iterator[Entry]:
        for i, row in enumerate(values):
            yield Entry({"pdq": row.tobytes().hex()}, category=cat, external_id=str(i))

    with open_store(url) as store:
        t = time.perf_counter()
        import_entries(store, "bench", entries())
        print(f"imported {n:,} PDQ entries in {time.perf_counter() - t:.1f} s", flush=True)
        _, token = create_token(store, "platform", "default", label="bench")
    return values, token


def benign_jpeg(seed: int) -> bytes:
    """A 1024x768 JPEG of gradients, shapes and text (opspoor's generated demo images)."""
    from opspoor.demo.images import generate_image

    out = io.BytesIO()
    generate_image(seed, 1024, 768, style="mixed").save(out, "JPEG", quality=85)
    return out.getvalue()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_rss(pid: int) -> int:
    import psutil

    parent = psutil.Process(pid)
    total = 0
    for p in [parent, *parent.children(recursive=True)]:
        with suppress(psutil.NoSuchProcess):
            total += p.memory_info().rss
    return total


def server_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by the server and its workers."""
    import psutil

    parent = psutil.Process(pid)
    total = 0.0
    for p in [parent, *parent.children(recursive=True)]:
        with suppress(psutil.NoSuchProcess):
            t = p.cpu_times()
            total += t.user + t.system
    return total


def hashing_ms(jpeg: bytes, n: int = 20) -> float:
    """Milliseconds of one thread to hash the upload in this process (the floor of load (b))."""
    from opspoor.signals.engine import hash_bytes

    hash_bytes(jpeg)
    t = time.process_time()
    for _ in range(n):
        hash_bytes(jpeg)
    return (time.process_time() - t) / n * 1000


def wait_ready(base: str, token: str, n: int, timeout: float) -> None:
    """Until every worker answers ready with the whole set loaded (asked on fresh connections)."""
    import httpx

    deadline = time.monotonic() + timeout
    ready_workers: set[int] = set()
    seen: set[int] = set()
    while time.monotonic() < deadline:
        try:
            r = httpx.get(f"{base}/v1/ready", headers={"Authorization": f"Bearer {token}"}, timeout=5)
            body = r.json()
            seen.add(body["worker"])
            if r.status_code == 200 and body["index"].get("pdq", 0) >= n:
                ready_workers.add(body["worker"])
            if len(ready_workers) >= 2 or (
                ready_workers and len(seen) == 1 and time.monotonic() > deadline - timeout / 2
            ):
                return
        except (httpx.HTTPError, ValueError, KeyError):
            pass
        time.sleep(0.2)
    raise SystemExit(f"the server was not ready within {timeout:.0f} s")


@dataclass
class Load:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str | None = None
    matched: int = 0
    #: server worker (pid) -> connections it accepted (raw client only)
    connections: dict[int | None, int] = field(default_factory=dict)

    def done(self, started: float, status: int, body: bytes) -> None:
        self.latencies.append(time.perf_counter() - started)
        if status == 200:
            self.matched += b'"matches":[{' in body
            return
        self.errors += 1
        if self.first_error is None:
            self.first_error = f"{status} {body[:200]!r}"


@dataclass(frozen=True)
class Request:
    """One request, ready to send: the body and its content type."""

    body: bytes
    content_type: str


def json_request(pdq: bytes) -> Request:
    return Request(
        json.dumps({"signals": [{"type": "pdq", "value": pdq.hex()}]}).encode(), "application/json"
    )


def upload_request(name: str, data: bytes) -> Request:
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            f"Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return Request(body, f"multipart/form-data; boundary={boundary}")


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length, chunked = 0, False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if not chunked:
        return status, await reader.readexactly(length)
    parts = []
    while size := int((await reader.readuntil(b"\r\n")).strip(), 16):
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)
    await reader.readuntil(b"\r\n")
    return status, b"".join(parts)


async def raw_load(
    port: int, token: str, seconds: float, clients: int, requests: list[Request]
) -> tuple[Load, float]:
    """``clients`` connections, each sending requests one after another for ``seconds``."""
    load = Load()
    stop = time.perf_counter() + seconds
    # whole requests, head and body, made before the clock starts
    wire = [
        (
            f"POST /v1/match HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: {req.content_type}\r\nContent-Length: {len(req.body)}\r\n\r\n"
        ).encode()
        + req.body
        for req in requests
    ]

    ready = f"GET /v1/ready HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\r\n"

    async def one(worker: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        i = worker
        try:
            # which worker accepted this connection (it keeps it): the split shapes the p99
            writer.write(ready.encode())
            pid = json.loads((await _read_response(reader))[1]).get("worker")
            load.connections[pid] = load.connections.get(pid, 0) + 1
            while time.perf_counter() < stop:
                data = wire[i % len(wire)]
                i += clients
                t = time.perf_counter()
                writer.write(data)
                status, body = await _read_response(reader)
                load.done(t, status, body)
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            load.errors += 1
            load.first_error = load.first_error or f"{type(exc).__name__}: {exc}"
        finally:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(one(w) for w in range(clients)))
    return load, time.perf_counter() - start


async def httpx_load(
    port: int, token: str, seconds: float, clients: int, requests: list[Request]
) -> tuple[Load, float]:
    import httpx

    load = Load()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", headers=headers, limits=limits, timeout=30
    ) as client:
        stop = time.perf_counter() + seconds

        async def one(worker: int) -> None:
            i = worker
            while time.perf_counter() < stop:
                req = requests[i % len(requests)]
                i += clients
                t = time.perf_counter()
                try:
                    r = await client.post(
                        "/v1/match", content=req.body, headers={"content-type": req.content_type}
                    )
                    load.done(t, r.status_code, r.content)
                except httpx.HTTPError as exc:
                    load.done(t, 0, f"{type(exc).__name__}: {exc}".encode())

        start = time.perf_counter()
        await asyncio.gather(*(one(w) for w in range(clients)))
        return load, time.perf_counter() - start


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop when installed (the server runs on it too), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def summarise(label: str, load: Load, elapsed: float, cpu: float, client_cpu: float) -> dict[str, Any]:
    """``cpu``, ``client_cpu``: the server's and the load generator's CPU seconds over the run."""
    lat = np.array(load.latencies) * 1000 if load.latencies else np.zeros(1)
    r = {
        "cpu_ms": cpu / max(1, len(load.latencies)) * 1000,
        "client_cpu_ms": client_cpu / max(1, len(load.latencies)) * 1000,
        "requests": len(load.latencies),
        "rps": len(load.latencies) / elapsed,
        "p50_ms": float(np.percentile(lat, 50)),
        "p99_ms": float(np.percentile(lat, 99)),
        "errors": load.errors,
        "matched": load.matched,
        "connections": sorted(load.connections.values()),
    }
    print(
        f"{label}: {r['rps']:,.0f} req/s, p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, "
        f"{load.errors} errors, {load.matched:,} with matches, server CPU {r['cpu_ms']:.2f} ms/request, "
        f"client CPU {r['client_cpu_ms']:.2f} ms/request"
        + (f" (first error: {load.first_error})" if load.first_error else "")
        + (f"; connections per worker {split(r)}" if load.connections else ""),
        flush=True,
    )
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--seconds", "--duration", type=float, default=60.0, help="of each load (default 60)")
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--client", choices=("raw", "httpx"), default="raw", help="load generator (see above)")
    ap.add_argument("--out", type=Path, help="write the results table (markdown) here")
    args = ap.parse_args()

    import httpx  # noqa: F401  (fail early when the bench extra is missing)

    print(setup_line(), flush=True)
    with pg_database() as url:
        values, token = fill_store(url, args.entries)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        cmd = [sys.executable, "-m", "opspoor", "serve", "--db", url, "--port", str(port)]
        cmd += ["--workers", str(args.workers), "--rate", "0", "--log-level", "warning"]
        server = subprocess.Popen(cmd, cwd=ROOT)
        try:
            wait_ready(base, token, args.entries, timeout=300)
            rng = np.random.default_rng(11)
            queries = rng.integers(0, 256, (20_000, 32), dtype=np.uint8)
            near = rng.integers(0, len(values), len(queries) // 16)
            close = values[near].copy()
            close[:, :8] ^= np.uint8(1)  # 8 bits away: a match
            queries[::16][: len(near)] = close
            by_value = [json_request(q.tobytes()) for q in queries]
            uploads = [upload_request(f"bench{k}.jpg", benign_jpeg(k)) for k in range(8)]
            load = raw_load if args.client == "raw" else httpx_load

            def run(requests: list[Request], seconds: float, clients: int) -> tuple[Load, float]:
                with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
                    return runner.run(load(port, token, seconds, clients, requests))

            run(by_value, 3.0, 16)  # warm-up: compiled kernels, caches, connections
            run(uploads, 3.0, 4)

            # the load generator's own full collections would stall every client at once
            gc.collect()
            gc.freeze()

            def measure(label: str, requests: list[Request]) -> dict[str, Any]:
                cpu, own = server_cpu(server.pid), time.process_time()
                load, elapsed = run(requests, args.seconds, args.clients)
                return summarise(
                    label, load, elapsed, server_cpu(server.pid) - cpu, time.process_time() - own
                )

            rss_start = server_rss(server.pid)
            a = measure("(a) match by PDQ value", by_value)
            b = measure("(b) upload JPEG, hash, match", uploads)
            rss_end = server_rss(server.pid)
        finally:
            server.terminate()
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
    floor = hashing_ms(benign_jpeg(0))
    print(f"hashing one 1024x768 JPEG takes {floor:.1f} ms of one core in-process (the floor of load (b))")
    growth = rss_end / rss_start - 1
    mib = 2**20
    rss = f"{rss_start / mib:,.0f} MiB at start, {rss_end / mib:,.0f} MiB at end ({growth:+.1%})"
    print(f"server RSS: {rss}")
    verdict = {
        "(a) >= 1500 req/s": a["rps"] >= GOAL_VALUE_RPS,
        "(a) p99 < 50 ms": a["p99_ms"] < GOAL_VALUE_P99_MS,
        "(b) >= 150 req/s": b["rps"] >= GOAL_UPLOAD_RPS,
        "0 errors": a["errors"] == 0 and b["errors"] == 0,
        "RSS growth < 5 %": growth < GOAL_RSS_GROWTH,
    }
    for goal, met in verdict.items():
        print(f"  {'met    ' if met else 'MISSED '} {goal}")
    if args.out:
        lines = [
            f"### Service ({args.entries:,} PDQ entries, PostgreSQL, {args.workers} workers, "
            f"{args.clients} clients ({args.client}), {args.seconds:g} s each)",
            "",
            setup_line(),
            "",
            "| load | requests/s | p50 ms | p99 ms | errors | server CPU ms/req | client CPU ms/req |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
            table_row("(a) match by PDQ value", a),
            table_row("(b) upload 1024x768 JPEG, hash, match", b),
            "",
            f"Server RSS {rss}. Hashing one upload alone takes {floor:.1f} ms of one core. "
            f"Connections per worker: (a) {split(a)}, (b) {split(b)}. Load average of the machine "
            f"at the end: {os.getloadavg()[0]:.1f}.",
            "",
            "Goals: " + ", ".join(f"{g} {'met' if m else 'MISSED'}" for g, m in verdict.items()) + ".",
            "",
        ]
        args.out.write_text("\n".join(lines), encoding="utf-8")


def split(r: dict[str, Any]) -> str:
    return "/".join(str(n) for n in r["connections"]) or "?"


def table_row(label: str, r: dict[str, Any]) -> str:
    return (
        f"| {label} | {r['rps']:,.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['errors']:.0f} "
        f"| {r['cpu_ms']:.2f} | {r['client_cpu_ms']:.2f} |"
    )


if __name__ == "__main__":
    main()
