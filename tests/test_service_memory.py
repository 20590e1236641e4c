"""Memory of the running service under a burst of large image or video uploads (issue 17):
``opspoor serve`` in a subprocess, its RSS sampled while allowed uploads and oversized ones (413,
refused from their header) arrive at once. The peak stays within the decode budget (2 hashing
threads x the budget) plus slack, and the memory is given back afterwards. Every picture is a
generated gradient, every video generated frames of flat colour and a moving block."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil
import pytest

from large_media import video
from opspoor.demo.pngs import png_bytes
from opspoor.store import open_store
from opspoor.store.tokens import create_token
from process_memory import rss
from test_service_server import free_port

ROOT = Path(__file__).resolve().parents[1]
MIB = 1 << 20


@contextlib.contextmanager
def serving(tmp_path: Path, budget_mb: int) -> Iterator[tuple[str, dict[str, str], psutil.Process]]:
    """``opspoor serve`` with two hashing threads and a decode budget of ``budget_mb`` per upload."""
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    with open_store(url) as store:
        _, token = create_token(store, "platform", "mem")
    port = free_port()
    base, h = f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {token}"}
    env = {
        **os.environ,
        "OPSPOOR_SERVICE_HASH_THREADS": "2",
        "OPSPOOR_SERVICE_DECODE_MEMORY_MB": str(budget_mb),
    }
    cmd = [sys.executable, "-m", "opspoor", "serve", "--db", url, "--port", str(port), "--rate", "0"]
    server = subprocess.Popen([*cmd, "--log-level", "warning"], cwd=ROOT, env=env)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert time.monotonic() < deadline and server.poll() is None, "the server did not start"
            try:
                if httpx.get(f"{base}/v1/ready", headers=h, timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        yield base, h, psutil.Process(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=60)


def burst(
    base: str, h: dict[str, str], proc: psutil.Process, uploads: list[tuple[str, bytes]]
) -> tuple[list[httpx.Response], int, int, int]:
    """The uploads sent at once to /v1/hash: the answers, and RSS before, at the peak, 1 s after."""
    before = rss(proc)
    peak = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss(proc))
            time.sleep(0.02)

    def upload(item: tuple[str, bytes]) -> httpx.Response:
        return httpx.post(f"{base}/v1/hash", headers=h, files={"file": item}, timeout=300)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    with ThreadPoolExecutor(len(uploads)) as pool:
        answers = list(pool.map(upload, uploads))
    time.sleep(1.0)
    done.set()
    sampler.join()
    return answers, before, peak[0], rss(proc)


@pytest.mark.slow
def test_a_burst_of_large_video_uploads_stays_within_the_budget_and_memory_is_given_back(
    tmp_path: Path,
) -> None:
    """Videos count their frame size: 1280 x 720 (about 45 MiB) is hashed, 2560 x 1920 (about 170
    MiB) is refused with 413 under a budget of 128 MiB before a frame is decoded."""
    allowed = [video(1280, 720, 30, k) for k in range(6)]
    oversized = video(2560, 1920, 4, 1)
    with serving(tmp_path, 128) as (base, h, proc):
        small = video(320, 240, 10, 0)
        for _ in range(2):  # warm: codecs loaded, first allocations made
            r = httpx.post(f"{base}/v1/hash", headers=h, files={"file": ("w.mp4", small)}, timeout=60)
            assert r.status_code == 200 and r.json()["vpdq"], r.text
        uploads = [(f"v{k}.mp4", v) for k, v in enumerate(allowed)] + [("big.mp4", oversized)] * 3
        answers, before, peak, after = burst(base, h, proc, uploads)
    assert [a.status_code for a in answers] == [200] * 6 + [413] * 3, [a.text[:200] for a in answers]
    assert all(a.json()["vpdq"] for a in answers[:6])
    assert all(a.json()["type"].endswith("decode-too-large") for a in answers[6:]), answers[6].text
    assert "video" in answers[6].json()["detail"]
    grew, kept = (peak - before) / MIB, (after - before) / MIB
    print(f"RSS before {before / MIB:.0f} MiB, peak +{grew:.0f} MiB, after +{kept:.0f} MiB")
    assert grew < 2 * 128 + 96, f"the peak grew {grew:.0f} MiB"  # two decodes at most, within budget
    assert kept < 64, f"{kept:.0f} MiB were kept after the burst"  # given back


@pytest.mark.slow
def test_a_burst_of_large_uploads_stays_within_the_budget_and_memory_is_given_back(tmp_path: Path) -> None:
    allowed = png_bytes(5000, 5000)  # ~120 MiB decoded each
    oversized = png_bytes(10_000, 10_000)  # ~480 MiB decoded: above the budget
    small = png_bytes(600, 400)
    with serving(tmp_path, 256) as (base, h, proc):
        for _ in range(2):  # warm: kernels loaded, first allocations made
            r = httpx.post(f"{base}/v1/hash", headers=h, files={"file": ("w.png", small)}, timeout=60)
            assert r.status_code == 200
        answers, before, peak, after = burst(
            base, h, proc, [("p.png", allowed)] * 8 + [("p.png", oversized)] * 4
        )
    assert [a.status_code for a in answers] == [200] * 8 + [413] * 4, [a.text[:200] for a in answers]
    assert all(a.json()["pdq"] for a in answers[:8])
    grew, kept = (peak - before) / MIB, (after - before) / MIB
    print(f"RSS before {before / MIB:.0f} MiB, peak +{grew:.0f} MiB, after +{kept:.0f} MiB")
    assert grew < 2 * 256 + 128, f"the peak grew {grew:.0f} MiB"  # two decodes at most, within budget
    assert kept < 96, f"{kept:.0f} MiB were kept after the burst"  # given back
