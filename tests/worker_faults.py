"""Test-only worker faults: a scan worker that dies on a named file (SIGKILL, as a decoder segfault
or the OOM killer would) or never finishes it, so that tests and bench/scan_faults.py reproduce
those faults with benign files. Nothing of this ships in the package: it replaces the per-file
function the scan's pool hands its workers (``opspoor.triage.pool.run_task``).

- in the test's process: ``inject(monkeypatch, "crash:f1.jpg,hang:f2.jpg")`` (or ``installed(...)``);
- for a CLI in a subprocess: ``python tests/worker_faults.py SPEC scan ...`` runs ``opspoor scan ...``
  with the faults in place (``command(SPEC, ...)`` builds that argument list).

``SPEC`` is comma-separated ``crash:NAME`` / ``hang:NAME``; NAME matches the end of an evidence path.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from opspoor.signals.engine import HashOptions
from opspoor.triage import pool
from opspoor.triage.worker import Task, run_task

Faults = tuple[tuple[str, str], ...]


def parse(spec: str) -> Faults:
    out = []
    for part in filter(None, spec.split(",")):
        what, _, name = part.partition(":")
        if what not in ("crash", "hang") or not name:
            raise ValueError(f"not a worker fault: {part!r} (crash:NAME or hang:NAME)")
        out.append((what, name))
    return tuple(out)


def faulty_run_task(faults: Faults, task: Task, options: HashOptions, clues: Any = None) -> Any:
    """``run_task``, except that a file named in ``faults`` kills its worker or never ends."""
    for what, name in faults:
        if task.path == name or task.path.endswith("/" + name):
            if what == "crash":
                os.kill(os.getpid(), signal.SIGKILL)
            while True:
                time.sleep(60)
    return run_task(task, options, clues)


def faulty(spec: str) -> Any:
    """``run_task`` with the faults of ``spec`` in place, for any executor's workers."""
    # a partial of a module-level function pickles by reference: a forked or spawned worker runs it
    return functools.partial(faulty_run_task, parse(spec))


def inject(monkeypatch: pytest.MonkeyPatch, spec: str) -> None:
    """Faults for the scans this test runs in its own process (undone at the end of the test)."""
    monkeypatch.setattr(pool, "run_task", faulty(spec))


@contextlib.contextmanager
def installed(spec: str) -> Iterator[None]:
    """Faults for the scans run inside the ``with`` block (for bench scripts)."""
    saved = pool.run_task
    pool.run_task = faulty(spec)  # type: ignore[assignment]
    try:
        yield
    finally:
        pool.run_task = saved  # type: ignore[assignment]


def command(spec: str, *args: str) -> list[str]:
    """The argument list that runs ``opspoor ARGS`` in a subprocess with the faults in place."""
    return [sys.executable, str(Path(__file__).resolve()), spec, *args]


if __name__ == "__main__":
    import runpy

    import worker_faults  # this file as a module (not __main__), so the workers find the function

    worker_faults.pool.run_task = worker_faults.faulty(sys.argv[1])  # type: ignore[assignment]
    sys.argv = ["opspoor", *sys.argv[2:]]
    runpy.run_module("opspoor", run_name="__main__", alter_sys=True)
