"""Where the scan's per-file work runs: the local process pool (default) or a Dask cluster.

The scan submits one ``Task`` per file and collects ``(seq, path, signals, thumbnail)`` results; both
executors take the same calls, so walking, matching, grouping and the case database do not know
which one runs the work.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from opspoor.clues.extract import ClueOptions
from opspoor.errors import ExecutorError
from opspoor.signals.engine import HashOptions
from opspoor.triage.pool import CrashSafePool, Result
from opspoor.triage.worker import Task

EXECUTORS = ("local", "dask")


class Executor(Protocol):
    workers: int  # worker processes (threads on Dask)
    depth: int  # files the scan keeps in flight (4 per local worker; on Dask, 4 batches per thread)
    options: HashOptions
    crashes: int

    def __len__(self) -> int: ...
    @property
    def held(self) -> int: ...
    def submit(self, task: Task) -> list[Result]: ...
    def collect(self, block: bool) -> list[Result]: ...
    def shutdown(self, interrupted: bool = False) -> None: ...


def start_executor(
    kind: str,
    workers: int,
    options: HashOptions,
    scheduler: str | None = None,
    sources: Sequence[Path] = (),
    clues: ClueOptions | None = None,
) -> Executor:
    """The executor ``kind`` (``local``: ``workers`` processes; ``dask``: the cluster at ``scheduler``)."""
    if kind == "local":
        return CrashSafePool(max(1, workers), options, clues)
    if kind == "dask":
        from opspoor.triage.dask_pool import DaskPool

        return DaskPool(scheduler, options, sources, clues)
    raise ExecutorError(f"unknown executor {kind!r} (one of: {', '.join(EXECUTORS)})")


def crash_note(kind: str, crashes: int) -> str | None:
    """The scan's log line about workers lost, or ``None``."""
    if not crashes:
        return None
    if kind == "dask":
        return f"{crashes} file(s) killed every dask worker they were handed to; recorded as crashed"
    return f"{crashes} worker process(es) died; the files in flight were run again one at a time"
