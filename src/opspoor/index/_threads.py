"""Run a ``nogil`` kernel over chunks of a batch on a few Python threads."""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


def default_threads() -> int:
    """Threads for a batch: the CPUs this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


#: batches of fewer queries than this are searched on the calling thread: starting a pool's
#: threads (about 0.3 ms each) costs more than searching a handful of queries (a live stream's
#: frame: 1-7 lookups, 0.2 ms against 1M PDQs)
SMALL_BATCH = 16


def threads_for(nq: int, threads: int | None) -> int:
    """Threads for a search of ``nq`` queries: ``threads`` (or the CPUs), 1 for a small batch."""
    return 1 if nq < SMALL_BATCH else (threads or default_threads())


def run_chunks(fn: Callable[[int, int], T], n: int, threads: int, chunk: int) -> list[T]:
    """``[fn(start, stop) for each chunk of range(n)]`` in chunk order, on up to ``threads`` threads.

    Chunks are handed out one at a time, so a slow chunk (a query with many matches) does not
    leave the other threads idle.
    """
    bounds = [(s, min(n, s + chunk)) for s in range(0, n, chunk)]
    if threads <= 1 or len(bounds) <= 1:
        return [fn(a, b) for a, b in bounds]
    with ThreadPoolExecutor(max_workers=min(threads, len(bounds))) as pool:
        return list(pool.map(lambda ab: fn(*ab), bounds))
