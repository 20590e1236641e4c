"""The scan's worker pool, which survives a worker that dies and blames only the file that killed it.

When a worker process dies (a decoder segfault, the OOM killer), ``ProcessPoolExecutor`` fails every
task that was in flight with ``BrokenProcessPool``, and which of them killed the worker cannot be told
from that. So every task that was in flight is run again, one at a time, in a pool of one worker: a
task is blamed ("worker crashed") only when it kills a worker while it is alone there; the others get
their normal results. Then a fresh pool takes the rest of the scan.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from concurrent.futures import FIRST_COMPLETED, CancelledError, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from opspoor.clues.extract import ClueOptions, share_models
from opspoor.signals.engine import HashOptions
from opspoor.triage.interrupt import REQUESTED, shielded, sigint_blocked
from opspoor.triage.worker import Task, run_task, start_worker

Result = tuple[int, str, dict[str, Any], bytes | None]

CRASH = "crash"
POLL = 0.2  # seconds between looks at Ctrl-C while waiting for the workers


def crashed(task: Task) -> Result:
    return task.seq, task.path, {"error": "worker crashed while decoding", "error_reason": CRASH}, None


def _numba_lock_over_fork() -> None:
    """Fork only while no other thread compiles with numba, and give the child a fresh lock.

    The workers fork from a process that may have other threads (the service's index follower, a
    test's server) compiling a numba kernel; a child that inherits numba's compiler lock held by a
    thread it does not have waits for it forever (seen: a scan beside a running service hung).
    """
    from numba.core import compiler_lock

    lock = compiler_lock.global_compiler_lock

    def fresh() -> None:  # the child has one thread: nothing can hold the new lock
        lock._lock = threading.RLock()

    os.register_at_fork(before=lock.acquire, after_in_parent=lock.release, after_in_child=fresh)


_numba_lock_over_fork()


def new_pool(workers: int, warm: bool = True) -> ProcessPoolExecutor:
    # started from the caller's thread (the scan's main thread): see ``follow_parent``
    return ProcessPoolExecutor(max_workers=workers, initializer=start_worker, initargs=(os.getpid(), warm))


def _submit(pool: ProcessPoolExecutor, *call: Any) -> Future[Any]:
    # a submit may fork the workers: they start with Ctrl-C blocked, until their initializer ignores it
    with sigint_blocked():
        return pool.submit(*call)


def _finished(futures: list[Future[Any]], block: bool) -> set[Future[Any]]:
    """Those of ``futures`` that are done; with ``block``, waits for one unless Ctrl-C came."""
    while True:
        ready, _ = wait(futures, timeout=POLL if block else 0, return_when=FIRST_COMPLETED)
        if ready or not block or REQUESTED.is_set():
            return ready


class CrashSafePool:
    """Tasks in, results out: a dead worker costs a re-run of what was in flight, not a wrong record.

    Every call is ``shielded``: a Ctrl-C is raised when the call returns, never inside the executor's
    locks, and a wait ends early for it."""

    def __init__(self, workers: int, options: HashOptions, clues: ClueOptions | None = None) -> None:
        self.workers = workers
        self.depth = workers * 4  # files in flight: enough to keep every worker busy
        self.options = options
        self.clues = clues
        self.inflight: dict[Future[Result], Task] = {}
        self.crashes = 0  # workers lost, for the log
        if clues is not None and multiprocessing.get_start_method() == "fork":
            share_models(clues)  # the workers fork from here: they share them, not each load its own
        with shielded():
            self.pool = new_pool(workers)
            for _ in range(workers):  # start the workers now: they warm up while the hash sets load
                _submit(self.pool, int)

    def __len__(self) -> int:
        return len(self.inflight)

    @property
    def held(self) -> int:
        """Bytes of archive members in flight (each is in this process until its result is back)."""
        return sum(len(t.data) for t in self.inflight.values() if t.data is not None)

    def submit(self, task: Task) -> list[Result]:
        """Hand a task to the pool; returns results only when a broken pool had to be recovered."""
        with shielded():
            try:
                fut = _submit(self.pool, run_task, task, self.options, self.clues)
            except BrokenProcessPool:  # the pool broke since the last collect
                return self._recover([task])
            self.inflight[fut] = task
            return []

    def collect(self, block: bool) -> list[Result]:
        """Results of finished tasks (waiting for at least one when ``block``)."""
        with shielded():
            return self._collect(block)

    def _collect(self, block: bool) -> list[Result]:
        if not self.inflight:
            return []
        ready = _finished(list(self.inflight), block)
        out: list[Result] = []
        broken = False
        for fut in ready:
            try:
                out.append(fut.result())
            except BrokenProcessPool:
                broken = True
                continue
            del self.inflight[fut]
        if broken and not REQUESTED.is_set():  # (workers that die while the scan stops are no crash)
            out.extend(self._recover([]))
        return out

    def _recover(self, extra: list[Task]) -> list[Result]:
        """After a worker died: settle every task of the broken pool, then start a fresh pool."""
        self.crashes += 1
        self.pool.shutdown(wait=True, cancel_futures=True)  # a broken pool resolves every future
        out: list[Result] = []
        suspects = list(extra)
        for fut, task in self.inflight.items():
            try:
                out.append(fut.result(timeout=0))
            except (BrokenProcessPool, CancelledError, TimeoutError):
                suspects.append(task)
        self.inflight.clear()
        out.extend(self._one_at_a_time(sorted(suspects, key=lambda t: t.seq)))
        self.pool = new_pool(self.workers)
        return out

    def _one_at_a_time(self, tasks: list[Task]) -> list[Result]:
        out: list[Result] = []
        solo: ProcessPoolExecutor | None = None
        try:
            for task in tasks:
                if REQUESTED.is_set():  # Ctrl-C: the rest is done again on resume
                    raise KeyboardInterrupt
                solo = solo or new_pool(1, warm=False)
                try:
                    fut = _submit(solo, run_task, task, self.options, self.clues)
                    if not _finished([fut], block=True):
                        raise KeyboardInterrupt
                    out.append(fut.result())
                except BrokenProcessPool:
                    out.append(crashed(task))  # it died alone: this file did it
                    solo.shutdown(wait=True)
                    solo = None
        except BaseException:  # Ctrl-C: do not wait for the file being decoded
            if solo is not None:
                _stop_now(solo)
            raise
        if solo is not None:
            solo.shutdown(wait=True)
        return out

    def shutdown(self, interrupted: bool = False) -> None:
        """Stop the pool; after an interrupt, without waiting for the files being decoded."""
        with shielded():
            if interrupted or REQUESTED.is_set():
                _stop_now(self.pool)
            else:
                self.pool.shutdown(wait=True, cancel_futures=True)
            self.inflight.clear()


def _stop_now(pool: ProcessPoolExecutor) -> None:
    """Shut a pool down without waiting for the files its workers are decoding."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for p in processes:  # (private attribute: the executor has no public way to stop its work)
        p.kill()
