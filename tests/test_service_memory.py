"""Memory of the running service under a burst of large image uploads (issue 17): ``opspoor serve``
in a subprocess, its RSS sampled while 8 large PNGs (allowed) and 4 oversized ones (413) arrive at
once. The peak stays within the decode budget (2 hashing threads x 256 MiB) plus slack, and the
memory is given back afterwards. Every picture is a generated gradient."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil
import pytest

from opspoor.demo.pngs import png_bytes
from opspoor.store import open_store
from opspoor.store.tokens import create_token
from process_memory import rss
from test_service_server import free_port

ROOT = Path(__file__).resolve().parents[1]
MIB = 1 << 20


@pytest.mark.slow
def test_a_burst_of_large_uploads_stays_within_the_budget_and_memory_is_given_back(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    with open_store(url) as store:
        _, token = create_token(store, "platform", "mem")
    port = free_port()
    base, h = f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {token}"}
    env = {**os.environ, "OPSPOOR_SERVICE_HASH_THREADS": "2", "OPSPOOR_SERVICE_DECODE_MEMORY_MB": "256"}
    cmd = [sys.executable, "-m", "opspoor", "serve", "--db", url, "--port", str(port), "--rate", "0"]
    server = subprocess.Popen([*cmd, "--log-level", "warning"], cwd=ROOT, env=env)
    try:
        proc = psutil.Process(server.pid)
        deadline = time.monotonic() + 120
        while True:
            assert time.monotonic() < deadline and server.poll() is None, "the server did not start"
            try:
                if httpx.get(f"{base}/v1/ready", headers=h, timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        allowed = png_bytes(5000, 5000)  # ~120 MiB decoded each
        oversized = png_bytes(10_000, 10_000)  # ~480 MiB decoded: above the budget
        small = png_bytes(600, 400)
        for _ in range(2):  # warm: kernels loaded, first allocations made
            assert (
                httpx.post(
                    f"{base}/v1/hash", headers=h, files={"file": ("w.png", small)}, timeout=60
                ).status_code
                == 200
            )
        before = rss(proc)

        peak = [before]
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], rss(proc))
                time.sleep(0.02)

        def upload(data: bytes) -> httpx.Response:
            return httpx.post(f"{base}/v1/hash", headers=h, files={"file": ("p.png", data)}, timeout=300)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        with ThreadPoolExecutor(12) as pool:
            answers = list(pool.map(upload, [allowed] * 8 + [oversized] * 4))
        time.sleep(1.0)
        done.set()
        sampler.join()
        after = rss(proc)
    finally:
        server.terminate()
        server.wait(timeout=60)
    assert [a.status_code for a in answers] == [200] * 8 + [413] * 4, [a.text[:200] for a in answers]
    assert all(a.json()["pdq"] for a in answers[:8])
    grew, kept = (peak[0] - before) / MIB, (after - before) / MIB
    print(f"RSS before {before / MIB:.0f} MiB, peak +{grew:.0f} MiB, after +{kept:.0f} MiB")
    assert grew < 2 * 256 + 128, f"the peak grew {grew:.0f} MiB"  # two decodes at most, within budget
    assert kept < 96, f"{kept:.0f} MiB were kept after the burst"  # given back
