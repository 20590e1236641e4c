"""The garbage collector of a serving worker.

A worker holds a large heap that lives as long as it does (FastAPI, pydantic, SQLAlchemy, numba
and their caches: ~200,000 tracked objects). A full (generation 2) collection walks all of it,
135-170 ms of a paused event loop on the loaded benchmark machine, and the objects a request
leaves alive for a moment (queued audit rows, entry details) triggered one every few seconds under
load: they were the largest stalls in the match latencies. So once the worker has
started, and again once its index is loaded and its search kernels are warm, everything alive
is moved out of the collector's sight (``gc.freeze``); later full collections walk only what
was created since. Cycles among frozen objects are never collected, which is why this is for
the serving process only (``create_app(..., freeze_heap=True)``), not for every app a test makes.
"""

from __future__ import annotations

import gc

#: allocations between two young-generation collections (CPython's default is 700): fewer
#: collections, and fewer short-lived request objects promoted to the older generations (a
#: choice, not separately measured)
YOUNG_THRESHOLD = 10_000


def tune_collector() -> None:
    """A larger young generation; the older generations' thresholds stay."""
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, older, oldest)


def freeze_heap() -> None:
    """Collect once, then exempt every object alive now from later collections."""
    gc.collect()
    gc.freeze()
