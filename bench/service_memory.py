"""Benchmark: the service's memory under a burst of large image uploads (issue 17).

Starts ``opspoor serve`` (1 worker, 2 hashing threads) on a fresh SQLite store, warms it, then sends
``--large`` concurrent uploads of a 5000x5000 RGB PNG (about 120 MiB decoded, inside the budget)
and ``--oversized`` of a 10000x10000 RGB PNG (about 480 MiB decoded) to ``POST /v1/hash``, sampling
the server's RSS every 20 ms. It prints the answers' statuses, RSS before, the peak and RSS 1 s
after the burst, for two runs in the same invocation:

  anchor: ``OPSPOOR_SERVICE_DECODE_MEMORY_MB=100000`` (no budget: every upload is decoded);
  budget: the default budget of 256 MiB per upload (the oversized ones are refused with 413);
  with ``--before SRC``, also the server of another tree (its ``src`` folder), e.g. the one before
  issue 17, which neither refused nor gave memory back.

With ``--video``, the uploads are videos instead (``tests/large_media.video``: flat colour and a
moving block, MPEG-4): ``--large`` of 1280x720, 30 frames (about 45 MiB to decode) and
``--oversized`` of 3840x2160, 4 frames (about 280 MiB: refused under the default budget).

Every picture is a generated gradient (``opspoor.demo.pngs``).

    .venv/bin/python bench/service_memory.py                    # 8 large + 8 oversized PNGs
    .venv/bin/python bench/service_memory.py --video            # the same with videos
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))  # process_memory, shared with the memory tests

from large_media import video  # noqa: E402
from opspoor.demo.pngs import png_bytes  # noqa: E402
from process_memory import rss  # noqa: E402
from setup_info import setup_line  # noqa: E402

MIB = 1 << 20


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def burst(budget_mb: int, uploads: list[bytes], src: Path | None = None) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="opspoor-bench-mem-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'store.sqlite'}"
        py = {**os.environ, **({"PYTHONPATH": str(src)} if src is not None else {})}
        made = subprocess.run(  # by the served tree's own CLI: its schema, its migrations
            [
                sys.executable,
                "-m",
                "opspoor",
                "token",
                "create",
                "--role",
                "platform",
                "--tenant",
                "b",
                "--db",
                url,
            ],
            cwd=ROOT,
            env=py,
            capture_output=True,
            text=True,
            check=True,
        )
        token = made.stdout.strip().splitlines()[-1]
        port = free_port()
        base, h = f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {token}"}
        env = {
            **py,
            "OPSPOOR_SERVICE_HASH_THREADS": "2",
            "OPSPOOR_SERVICE_DECODE_MEMORY_MB": str(budget_mb),
            "OPSPOOR_SERVICE_MAX_UPLOAD_BYTES": str(512 * MIB),
        }
        cmd = [sys.executable, "-m", "opspoor", "serve", "--db", url, "--port", str(port), "--rate", "0"]
        server = subprocess.Popen([*cmd, "--log-level", "warning"], cwd=ROOT, env=env)
        try:
            proc = psutil.Process(server.pid)
            while True:
                if server.poll() is not None:
                    raise SystemExit("the server did not start")
                try:
                    if httpx.get(f"{base}/v1/ready", headers=h, timeout=5).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.2)
            small = png_bytes(600, 400)
            for _ in range(2):
                httpx.post(f"{base}/v1/hash", headers=h, files={"file": ("w.png", small)}, timeout=60)
            before = rss(proc)
            peak, done = [before], threading.Event()

            def sample() -> None:
                while not done.is_set():
                    peak[0] = max(peak[0], rss(proc))
                    time.sleep(0.02)

            def upload(data: bytes) -> int:
                r = httpx.post(f"{base}/v1/hash", headers=h, files={"file": ("p.png", data)}, timeout=600)
                return r.status_code

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            start = time.perf_counter()
            with ThreadPoolExecutor(len(uploads)) as pool:
                statuses = list(pool.map(upload, uploads))
            seconds = time.perf_counter() - start
            time.sleep(1.0)
            done.set()
            sampler.join()
            after = rss(proc)
        finally:
            server.terminate()
            server.wait(timeout=60)
    return {
        "statuses": dict(Counter(statuses)),
        "seconds": seconds,
        "before": before / MIB,
        "peak": peak[0] / MIB,
        "after": after / MIB,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--large", type=int, default=8, help="5000x5000 PNG uploads (default 8)")
    ap.add_argument("--oversized", type=int, default=8, help="10000x10000 PNG uploads (default 8)")
    ap.add_argument("--before", type=Path, help="the src folder of another tree to run as well")
    ap.add_argument("--video", action="store_true", help="upload videos instead of pictures")
    args = ap.parse_args()
    print(setup_line())
    if args.video:
        uploads = [video(1280, 720, 30, k % 8) for k in range(args.large)]
        uploads += [video(3840, 2160, 4, 1)] * args.oversized
    else:
        uploads = [png_bytes(5000, 5000)] * args.large + [png_bytes(10_000, 10_000)] * args.oversized
    rows = {"anchor (no budget)": burst(100_000, uploads), "budget 256 MiB": burst(256, uploads)}
    if args.before is not None:
        rows[f"before ({args.before})"] = burst(256, uploads, args.before.resolve())
    print("| run | statuses | seconds | RSS before MiB | peak MiB | 1 s after MiB |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for name, r in rows.items():
        print(
            f"| {name} | {r['statuses']} | {r['seconds']:.1f} | {r['before']:.0f} | {r['peak']:.0f} "
            f"| {r['after']:.0f} |"
        )
    a, b = rows["anchor (no budget)"], rows["budget 256 MiB"]
    growth_a = float(a["peak"]) - float(a["before"])  # type: ignore[arg-type]
    growth_b = float(b["peak"]) - float(b["before"])  # type: ignore[arg-type]
    print(f"peak growth: budget / anchor = {growth_b:.0f} / {growth_a:.0f} MiB = {growth_b / growth_a:.2f}")


if __name__ == "__main__":
    main()
