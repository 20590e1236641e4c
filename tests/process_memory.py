"""Resident memory of a process and its children, for the memory tests and the memory benchmarks
(bench/scan_memory.py and bench/service_memory.py import this module from tests/)."""

from __future__ import annotations

import contextlib
import threading
import time

import psutil


def rss(proc: psutil.Process) -> int:
    """Resident memory of ``proc`` and its children (pool or uvicorn workers), summed."""
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):  # a worker that just exited
            total += p.memory_info().rss
    return total


class PeakMemory:
    """Peak resident memory of this process (``main``) and of its largest child (``worker``),
    sampled every ``interval`` seconds while the ``with`` block runs."""

    def __init__(self, interval: float = 0.02) -> None:
        self.main = self.worker = 0
        self.interval = interval
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        me = psutil.Process()
        while not self.stop.is_set():
            self.main = max(self.main, me.memory_info().rss)
            for child in me.children(recursive=True):
                with contextlib.suppress(psutil.Error):  # a worker that just ended
                    self.worker = max(self.worker, child.memory_info().rss)
            time.sleep(self.interval)

    def __enter__(self) -> PeakMemory:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()
