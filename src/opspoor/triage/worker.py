"""Per-file work, run in the process pool: one read, every signal, a blurred thumbnail.

Results cross the process boundary as plain dicts (exceptions become their message) so that
nothing depends on pickling exception classes.
"""

from __future__ import annotations

import io
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any

from opspoor.clues.extract import ClueOptions, image_clues, video_clues
from opspoor.errors import OpspoorError
from opspoor.media.heap import trim_heap
from opspoor.signals.engine import FileSignals, HashOptions, hash_bytes, hash_stream
from opspoor.sources import open_readonly
from opspoor.sources.diskref import open_disk_member
from opspoor.sources.zipref import open_zip_member
from opspoor.triage.interrupt import ignore_in_worker
from opspoor.triage.records import exif_json


@dataclass(frozen=True, slots=True)
class Task:
    seq: int
    path: str  # evidence path
    fs_path: str | None  # plain file on disk: the worker reads it itself
    data: bytes | None  # archive member: its bytes, read by the source iterator
    size: int | None = None
    source_error: str | None = (
        None  # the source flagged the item (unsafe name, depth limit) but it is readable
    )
    source_reason: str | None = None
    #: a large member of a zip on disk (``sources.zipref.ZipMemberRef``): the worker reads it there
    zip_member: Any = None
    #: a file inside a disk image (``sources.diskref.DiskMemberRef``): the worker reads it there
    disk_member: Any = None


def signals_json(sig: FileSignals) -> dict[str, Any]:
    from opspoor.signals.vpdq import format_vpdq

    return {
        "size": sig.size,
        "kind": sig.kind,
        "type": sig.type,
        "md5": sig.md5,
        "sha1": sig.sha1,
        "sha256": sig.sha256,
        "pdq": sig.pdq,
        "pdq_quality": sig.quality,
        "pdq_dihedral": sig.pdq_dihedral,
        "pdq_variants": sig.pdq_variants,
        "local": sig.local,  # matched, not kept in the case (up to 48 KB per image with the mirror's)
        "vpdq_frames": format_vpdq(sig.vpdq_frames).splitlines() if sig.vpdq_frames else None,
        "exif": exif_json(sig.exif),
        "error": str(sig.error.message) if sig.error else None,
        "error_reason": sig.error.reason if sig.error else None,
    }


def follow_parent(parent: int) -> None:
    """Pool initializer: the worker dies with the scan's main process ``parent``.

    A pool worker whose parent is killed (SIGKILL, the OOM killer) would otherwise finish its file,
    about 250 MB of memory held, and may then wait for work forever. On Linux the kernel sends the
    worker SIGKILL when the thread that started it exits (PR_SET_PDEATHSIG; the scan starts its pools
    from its main thread); a thread that sees the parent gone within a second covers other systems, a
    failed prctl and a pool started from a thread that ended before the process. Ctrl-C is left to
    the main process, which stops the pool and says how to resume.
    """
    ignore_in_worker()
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            pr_set_pdeathsig = 1
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass  # the thread below still notices
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent,), name="opspoor-parent", daemon=True).start()


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


def start_worker(parent: int, warm: bool = True) -> None:
    """Pool initializer: follow the parent (above), then warm up."""
    follow_parent(parent)
    if warm:
        warm_up()


def warm_up() -> None:
    """Load the compiled kernels (numba cache) before the first real file arrives, while the main
    process is still loading the hash sets."""
    import io

    import numpy as np
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buf, "JPEG")
    hash_bytes(buf.getvalue(), options=HashOptions(thumbnail=True))


#: after a file this large (or a picture of this much decoded memory), a worker gives freed memory back
TRIM_ABOVE = 32 << 20


@contextmanager
def _content(task: Task) -> Iterator[IO[bytes]]:
    """The task's bytes as a stream, from wherever they are (a member's bytes, a zip on disk, a file)."""
    if task.data is not None:
        yield io.BytesIO(task.data)
    elif task.zip_member is not None:
        with open_zip_member(task.zip_member, task.path) as fh:
            yield fh
    elif task.disk_member is not None:
        with open_disk_member(task.disk_member, task.path) as dh:
            yield dh  # type: ignore[misc]
    else:
        assert task.fs_path is not None
        with open_readonly(task.fs_path, task.path) as fh:
            yield fh


def _read_all(task: Task) -> bytes:
    with _content(task) as fh:
        return fh.read()


def add_clues(task: Task, out: dict[str, Any], clues: ClueOptions, sig: FileSignals) -> None:
    """The file's location clues (opspoor.clues), from the picture the hash step decoded (no second
    decode; the file is read again only for a picture that looks like it holds text) or the video.

    The verdict is known only after matching, in the main process, so every decodable picture and
    video gets them here; the text-likeness test keeps this cheap for pictures without text."""
    if out.get("error") or out.get("kind") not in ("image", "video"):
        return
    if out["kind"] == "image":
        found = image_clues(lambda: _read_all(task), task.path, clues, sig.pixels)
    else:
        with _content(task) as fh:
            found = video_clues(fh, task.path, clues)
    out["clues"] = found.to_json()


def run_task(
    task: Task, options: HashOptions, clues: ClueOptions | None = None
) -> tuple[int, str, dict[str, Any], bytes | None]:
    """Hash one file (and read its clues), then give a large file's memory back. Never raises:
    failures come back as an ``error`` in the result."""
    try:
        return _run_task(task, options, clues)
    finally:
        if (task.size or 0) > TRIM_ABOVE or (task.data is not None and len(task.data) > TRIM_ABOVE):
            trim_heap()


def _run_task(
    task: Task, options: HashOptions, clues: ClueOptions | None
) -> tuple[int, str, dict[str, Any], bytes | None]:
    try:
        if task.fs_path is not None:
            with open_readonly(task.fs_path, task.path) as fh:
                sig = hash_stream(fh, where=task.path, options=options, size_hint=task.size)
        elif task.zip_member is not None:
            with open_zip_member(task.zip_member, task.path) as fh:
                sig = hash_stream(fh, where=task.path, options=options, size_hint=task.size)
        elif task.disk_member is not None:
            with open_disk_member(task.disk_member, task.path) as dh:
                sig = hash_stream(dh, where=task.path, options=options, size_hint=task.size)  # type: ignore[arg-type]
                if dh.damage is not None and sig.error is None:  # hashed as read; part of it was zeros
                    sig.error = dh.damage
        else:
            assert task.data is not None
            sig = hash_bytes(task.data, where=task.path, options=options)
        out = signals_json(sig)
        if clues is not None and clues.enabled:
            try:
                add_clues(task, out, clues, sig)
            except Exception as exc:  # a clue is a bonus: never lose the file's hashes for it
                out["clues"] = {"found": [], "notes": [f"clues failed: {type(exc).__name__}: {exc}"]}
        if task.source_error and not out.get("error"):
            out["error"], out["error_reason"] = task.source_error, task.source_reason
        return task.seq, task.path, out, getattr(sig, "thumbnail", None)
    except OpspoorError as exc:
        return task.seq, task.path, {"error": exc.message, "error_reason": exc.reason}, None
    except Exception as exc:  # a bug or a decoder fault must not stop the scan: record it
        return (
            task.seq,
            task.path,
            {"error": f"internal error: {type(exc).__name__}: {exc}", "error_reason": "internal"},
            None,
        )
