"""The scan's per-file work on a Dask cluster (``distributed``): the same calls as the local pool.

The client (the scan) walks the sources, matches, groups and writes the case; the workers only run
``triage.worker.run_task``. Plain files are read by the workers from the path they share with the
client (made absolute here); archive members are read by the client and travel inside their task,
so the bytes in flight stay within the scan's ``--max-member-memory`` (the scan waits for results
before it submits more) and a task whose worker dies can be run again from what the scheduler holds.

Files that the workers read themselves travel ``BATCH_FILES`` to a task: the scheduler's cost and
the round trip per task (about 1-2 ms on loopback, more across machines) are paid once per batch,
which took the Dask scan from 0.83-0.88 of the local pool's files/s to the figures in
docs/benchmarks.md. A member travels alone, and the client keeps only its size: the scheduler holds
its bytes until a worker has hashed it (and runs it again from them if that worker dies), so the
client's memory per member in flight is what the local pool's is (docs/scale.md, "Memory").

A worker that dies mid-task (killed, OOM) costs nothing: the scheduler runs its tasks again on the
others, and each task's result is taken exactly once, by its key. A batch that kills every worker
it is handed to (``distributed.scheduler.allowed-failures`` times, default 3) is run again one file
at a time, and a file that then does it again is recorded as "worker crashed", as the local pool
does. At most ``DEPTH`` tasks per worker thread are in flight, as before batching.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import os
import queue
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from opspoor.clues.extract import ClueOptions
from opspoor.errors import ExecutorError
from opspoor.media.heap import keep_large_buffers
from opspoor.signals.engine import HashOptions
from opspoor.triage.interrupt import REQUESTED, shielded
from opspoor.triage.pool import POLL, Result, crashed
from opspoor.triage.worker import Task, run_task, warm_up

#: tasks in flight per worker thread: enough to hide the scheduler's round trip (about 1-2 ms a
#: task on loopback, more across machines) without holding many results at once
DEPTH = 4
#: files read by the workers themselves, per task (members travel alone, one task each)
BATCH_FILES = 4

#: a scan whose cluster has had no worker for this long stops with one line (the case resumes)
#: instead of waiting for ever; checked only after ``QUIET_SECONDS`` without a result
NO_WORKER_SECONDS = 300.0
QUIET_SECONDS = 30.0

#: Dask settings for the scheduler and the workers of a cluster that runs opspoor's work, given to
#: ``dask scheduler`` and ``dask worker`` as environment variables in docs/scale.md. Dask's defaults
#: sample each worker's running task every 10 ms (for the dashboard's profile page), check each
#: event loop every 20 ms, and read memory and system counters 10 and 2 times a second: together
#: about 6 % of this 2-core machine's CPU with a LocalCluster of 2 idle workers, less than 1 % with
#: these (docs/benchmarks.md). Memory is still read every second: a worker past its limit is still
#: restarted, a second later at most.
CLUSTER_CONFIG: dict[str, Any] = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "5s",
    "distributed.worker.memory.monitor-interval": "1s",
}


def run_batch(
    tasks: list[Task], options: HashOptions, clues: ClueOptions | None, fn: Callable[..., Result] = run_task
) -> list[Result]:
    """``fn`` (``run_task``) on each of ``tasks``, in one Dask task."""
    _heap_kept()
    return [fn(task, options, clues) for task in tasks]


def run_one(fn: Callable[[Any], Any], item: Any) -> Any:
    """``fn(item)``, in one Dask task (``dask_map``), with the worker's freed buffers kept."""
    _heap_kept()
    return fn(item)


@functools.cache
def _heap_kept() -> bool:
    """Once per worker process: keep a decode's freed buffers for the next file (``keep_large_buffers``).

    Dask's nanny starts each worker with ``MALLOC_TRIM_THRESHOLD_=65536``, which also fixes glibc's
    mmap threshold at 128 KiB: every image buffer was mapped fresh and handed back after each
    file, 11,000 page faults a photo instead of about 1,000, and 20 % more CPU per file than the
    same work without it (docs/benchmarks.md). Large files still give their memory back
    (``run_task`` trims after them)."""
    return keep_large_buffers()


def connect(scheduler: str | None) -> Any:
    """A client of the scheduler at ``scheduler`` (``tcp://host:8786``); one line when it cannot."""
    try:
        from distributed import Client
    except ImportError as exc:  # (a dependency, but a trimmed install may lack it)
        raise ExecutorError("--executor dask needs the 'distributed' package") from exc
    if not scheduler:
        raise ExecutorError("--executor dask needs --scheduler tcp://HOST:PORT (a running dask scheduler)")
    try:
        return Client(scheduler, timeout="10s", set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise ExecutorError(f"cannot reach the dask scheduler: {exc}", scheduler) from exc


def worker_threads(client: Any, wait_seconds: float = 30.0) -> int:
    """Worker threads of the cluster; waits a little for a first worker to join."""
    try:
        client.wait_for_workers(1, timeout=wait_seconds)
    except TimeoutError as exc:
        raise ExecutorError(f"no dask worker joined the scheduler within {wait_seconds:.0f} s") from exc
    return max(1, sum(client.nthreads().values()))


def check_shared(client: Any, sources: Iterable[Path]) -> None:
    """Every worker must see the sources at the client's absolute paths (a shared mount)."""
    paths = [os.path.abspath(p) for p in sources]
    seen: dict[str, list[bool]] = client.run(_exist, paths)
    for worker, found in sorted(seen.items()):
        missing = [p for p, ok in zip(paths, found, strict=True) if not ok]
        if missing:
            raise ExecutorError(
                f"dask worker {worker} cannot see {missing[0]}: workers read the evidence at the "
                "client's paths (docs/scale.md)",
                missing[0],
            )


def _exist(paths: list[str]) -> list[bool]:
    return [os.path.exists(p) for p in paths]


class DaskPool:
    """``CrashSafePool``'s calls (submit, collect, held, shutdown) on a Dask cluster."""

    def __init__(
        self,
        scheduler: str | None,
        options: HashOptions,
        sources: Iterable[Path] = (),
        clues: ClueOptions | None = None,
    ) -> None:
        self.options = options
        self.clues = clues
        self.crashes = 0  # files given up after killing workers, for the log
        #: per Dask task: its files (a member's without its bytes, which the scheduler holds) and
        #: the bytes of the member it carries
        self.inflight: dict[Any, tuple[list[Task], int]] = {}
        self.pending: list[Task] = []  # files for the next batch
        #: files of batches that killed every worker, run again one at a time (as the local pool
        #: does), so that the culprit alone is given up
        self.retry: list[Task] = []
        self.retrying: Any = None  # the future of the one being run again
        self.client = connect(scheduler)
        try:
            threads = worker_threads(self.client)
            check_shared(self.client, sources)
            self.client.run(warm_up)  # compiled kernels loaded while the hash sets load
        except BaseException:
            self.client.close()
            raise
        self.workers = threads
        self.depth = threads * DEPTH * BATCH_FILES  # files the scan keeps in flight
        self.run_id = uuid.uuid4().hex[:12]
        self.finished = threading.Event()
        self.last_result = time.monotonic()  # when a task last finished (or the pool started)
        self.next_check = 0.0  # when to ask the scheduler for its workers again
        self.workerless_since: float | None = None

    def __len__(self) -> int:
        return len(self.pending) + len(self.retry) + sum(len(tasks) for tasks, _ in self.inflight.values())

    @property
    def held(self) -> int:
        """Bytes of archive members in flight (held by the scheduler until their results are back)."""
        return sum(size for _, size in self.inflight.values())

    def submit(self, task: Task) -> list[Result]:
        if task.fs_path is not None:  # the workers may run elsewhere: the client's absolute path
            task = dataclasses.replace(task, fs_path=os.path.abspath(task.fs_path))
        if task.data is None:
            self.pending.append(task)
            if len(self.pending) < BATCH_FILES:
                return []
        out = self._room()  # at most DEPTH tasks per worker thread, as many files as they hold
        if task.data is not None:
            self._send([task], f"{task.seq}")
        else:
            self._flush()
        return out

    def _room(self) -> list[Result]:
        out: list[Result] = []
        while len(self.inflight) >= self.workers * DEPTH and not REQUESTED.is_set():
            out += self.collect(block=True, flush=False)
        return out

    def _flush(self) -> None:
        if self.pending:
            tasks, self.pending = self.pending, []
            self._send(tasks, f"{tasks[0].seq}" if len(tasks) == 1 else f"{tasks[0].seq}-{tasks[-1].seq}")

    def _send(self, tasks: list[Task], name: str) -> Any:
        with shielded(), warnings.catch_warnings():
            # (a large member is one large task: bounded by --max-member-memory, not worth a warning)
            warnings.filterwarnings("ignore", message=".*[Ll]arge graph.*")
            fut = self.client.submit(
                run_batch,
                tasks,
                self.options,
                self.clues,
                run_task,
                key=f"opspoor-file-{self.run_id}-{name}",
                pure=False,
            )
        fut.add_done_callback(lambda _f: self.finished.set())
        size = sum(len(t.data) for t in tasks if t.data is not None)
        # the client keeps no member's bytes: the scheduler has them, and a crash record needs none
        self.inflight[fut] = ([dataclasses.replace(t, data=None) for t in tasks], size)
        return fut

    def collect(self, block: bool, flush: bool = True) -> list[Result]:
        """Results of finished tasks (waiting for at least one when ``block``, unless Ctrl-C)."""
        with shielded():
            if block and flush:  # a part batch is sent rather than waited for
                self._flush()
            while True:
                if self.retrying is None and self.retry and len(self.inflight) < self.workers * DEPTH:
                    task = self.retry.pop(0)
                    self.retrying = self._send([task], f"{task.seq}-alone")
                self.finished.clear()  # (set again by any task that finishes from here on)
                ready = [f for f in self.inflight if f.done()]
                if ready or not block or not self.inflight or REQUESTED.is_set():
                    break
                self.finished.wait(POLL)
                self._check_workers()
            self.last_result = time.monotonic()
            return [r for f in ready for r in self._results(f)]

    def _check_workers(self) -> None:
        """Raise ``ExecutorError`` once the cluster has had no worker for ``NO_WORKER_SECONDS``
        (all died and none came back): the scan stops, and resumes once workers are started."""
        now = time.monotonic()
        if now - self.last_result < QUIET_SECONDS or now < self.next_check:
            return
        self.next_check = now + 5.0
        if self.client.nthreads():
            self.workerless_since = None
            return
        self.workerless_since = self.workerless_since or now
        if now - self.workerless_since >= NO_WORKER_SECONDS:
            raise ExecutorError(
                f"the dask cluster has had no worker for {NO_WORKER_SECONDS:.0f} s with {len(self)} files"
                " in flight; start workers, then run the scan again to resume it"
            )

    def _results(self, fut: Any) -> list[Result]:
        from distributed import KilledWorker

        tasks, _ = self.inflight.pop(fut)
        if fut is self.retrying:
            self.retrying = None
        try:
            out: list[Result] = fut.result()
        except KilledWorker:  # it killed every worker it was handed to
            if len(tasks) > 1:  # one of its files did it: each again, one at a time
                self.retry += tasks
                return []
            self.crashes += 1  # this file did it
            out = [crashed(tasks[0])]
        except Exception as exc:  # the cluster cannot run opspoor's code (versions, imports)
            raise ExecutorError(f"dask task failed: {type(exc).__name__}: {exc}", tasks[0].path) from exc
        finally:
            fut.release()
        return out

    def shutdown(self, interrupted: bool = False) -> None:
        """Cancel what is still in flight and close the client (the cluster keeps running)."""
        with shielded():
            if self.inflight:
                self.client.cancel(list(self.inflight), force=True)
            self.inflight.clear()
            self.pending.clear()
            self.retry.clear()
            self.client.close()


def dask_map(
    scheduler: str | None,
    fn: Callable[[Any], Any],
    items: list[Any],
    sources: Iterable[Path] = (),
    on_done: Callable[[int], None] | None = None,
) -> Iterator[Any]:
    """``fn`` over ``items`` on the cluster, results in the order of ``items``, at most
    ``DEPTH`` tasks per worker thread in flight (``hashset build --executor dask``)."""
    client = connect(scheduler)
    try:
        depth = worker_threads(client) * DEPTH
        check_shared(client, sources)
        results: dict[int, Any] = {}
        run_id = uuid.uuid4().hex[:12]
        pending = iter(enumerate(items))
        finished: queue.SimpleQueue[tuple[int, Any]] = queue.SimpleQueue()
        inflight = 0

        def more(n: int) -> int:
            sent = 0
            for i, item in itertools.islice(pending, n):
                fut = client.submit(run_one, fn, item, key=f"opspoor-map-{run_id}-{i}", pure=False)
                fut.add_done_callback(lambda f, i=i: finished.put((i, f)))
                sent += 1
            return sent

        inflight = more(depth)
        emitted = 0
        while inflight:
            i, fut = finished.get()
            inflight -= 1
            try:
                results[i] = fut.result()
            except Exception as exc:  # (the function records bad files itself: this is the cluster)
                raise ExecutorError(f"dask task failed: {type(exc).__name__}: {exc}", str(items[i])) from exc
            fut.release()
            if on_done:
                on_done(1)
            inflight += more(1)
            while emitted in results:
                yield results.pop(emitted)
                emitted += 1
    finally:
        client.close()
