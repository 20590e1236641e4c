"""Ctrl-C during a scan: stop at a safe point, keep what is committed, say how to resume.

Python raises ``KeyboardInterrupt`` wherever the main thread happens to be, also inside the locks
of ``concurrent.futures``, ``multiprocessing`` or Rich's live progress display: a lock left held
(a hang), a pipe closed under a thread (``Bad file descriptor``), the last line swallowed. So the
scan's handler raises only outside ``shielded()`` sections; inside one, Ctrl-C only sets
``REQUESTED``, which the section turns into ``KeyboardInterrupt`` when it ends (the pool's waits
poll it). A second Ctrl-C ends the process at once: the case is committed batch by batch, so it
resumes as after ``kill -9``.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

REQUESTED = threading.Event()
_shield = 0  # shielded() depth; only the main thread changes it (the handler runs there)
_message = "interrupted"


def install(message: str, deferred: bool = True, requested: bool = False) -> None:
    """Take over SIGINT (from the main thread). ``deferred``: Ctrl-C only sets the flag until
    ``release()``, e.g. while the command line is parsed; ``requested``: one came already.
    A process started with SIGINT ignored (``nohup``, a script's ``&``) keeps ignoring it."""
    global _message, _shield
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        return
    _message = message
    _shield = 1 if deferred else 0
    if requested:
        REQUESTED.set()
    else:
        REQUESTED.clear()
    signal.signal(signal.SIGINT, _on_sigint)


def release() -> None:
    """Ctrl-C raises again (outside shielded sections); one that came meanwhile raises now."""
    global _shield
    _shield = 0
    check()


def defer() -> None:
    """From now on Ctrl-C only sets the flag (the work is done: let the process end normally)."""
    global _shield
    _shield = 1


def check() -> None:
    if REQUESTED.is_set():
        raise KeyboardInterrupt


@contextmanager
def shielded() -> Iterator[None]:
    """No ``KeyboardInterrupt`` inside (a Ctrl-C there is raised when the section ends)."""
    global _shield
    _shield += 1
    try:
        yield
    finally:
        _shield -= 1
    if _shield == 0:
        check()


@contextmanager
def sigint_blocked() -> Iterator[None]:
    """SIGINT held back from this thread: a process forked inside starts with it blocked (and
    pending, when the terminal sends one to the group) until its initializer ignores it."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def ignore_in_worker() -> None:
    """Pool initializer part: Ctrl-C is the main process's to handle (it stops the pool)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # discards one pending since the fork
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    if REQUESTED.is_set():
        _exit_now()
    REQUESTED.set()
    if _shield == 0:
        raise KeyboardInterrupt


def _exit_now() -> None:
    try:
        if sys.stderr.isatty():
            sys.stderr.write("\x1b[?25h")  # the progress bar hides the cursor
        sys.stderr.write("\n" + _message + "\n")
        sys.stderr.flush()
    finally:
        os._exit(130)
