"""``opspoor scan``: every file hashed and matched, known separated from new, new grouped, nothing lost.

Flow: the main process walks the sources (``opspoor.sources``) and feeds a process pool that
hashes each file in one read (``opspoor.signals.engine``); results are matched in batches
(``Matcher``) and committed to the case database, keyed by evidence path. A killed scan is
resumed by running the same command again: finished paths are skipped. When every file is
accounted for, the outputs (files.jsonl, summary.json, export-vics.json, report.html) are
written from the case database.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, ThreadPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from opspoor.errors import CaseError, OpspoorError
from opspoor.signals.engine import ROBUST_PRESETS, HashOptions
from opspoor.sources import EvidenceItem, Limits, count_evidence, iter_evidence
from opspoor.triage.case import CaseDB
from opspoor.triage.matching import LOCAL, Matcher
from opspoor.triage.provenance import describe_hashsets, describe_source
from opspoor.triage.records import EMPTY_FILE, error_record, new_record, verdict
from opspoor.triage.worker import Task, run_task, warm_up

BATCH = 256
BATCH_SECONDS = 2.0


class Progress(Protocol):
    def start(self, total: int | None) -> None: ...
    def advance(self, files: int, nbytes: int) -> None: ...
    def finish(self) -> None: ...


class NoProgress:
    def start(self, total: int | None) -> None:
        pass

    def advance(self, files: int, nbytes: int) -> None:
        pass

    def finish(self) -> None:
        pass


@dataclass(slots=True)
class ScanConfig:
    sources: list[Path]
    hashsets: list[str]
    case_dir: Path
    db_url: str | None = None
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    thumbnails: bool = True
    limits: Limits = field(default_factory=Limits)
    #: hashing options; the default adds the fast robust query hashes (rotations, flips, borders)
    options: HashOptions = field(default_factory=lambda: HashOptions(robust=ROBUST_PRESETS["fast"]))
    #: match images by their local features too when the sets hold their originals' (built with
    #: ``hashset build --augment``; ~4 ms per image, and 10-250 ms to look up each image that
    #: nothing else matched against 300-10,000 originals: docs/benchmarks.md)
    local: bool = True
    #: shown in the report; not part of the identity (a resume may add or correct them)
    case_number: str | None = None
    examiner: str | None = None

    #: PDQ match distance for every set (``None``: each set's own)
    distance: int | None = None

    def identity(self) -> dict[str, Any]:
        """What must be equal for a re-run to resume this case rather than mix two scans."""
        ident: dict[str, Any] = {
            "sources": [str(p.resolve()) for p in self.sources],
            "hashsets": sorted(self.hashsets),
        }
        if self.distance is not None:  # (absent otherwise, so cases scanned before still resume)
            ident["distance"] = self.distance
        return ident


@dataclass(slots=True)
class ScanResult:
    case_dir: Path
    summary: dict[str, Any]
    reconciled: bool
    outputs: dict[str, Path]


class _UniquePaths:
    """Evidence paths are the resume key: a repeated path (two sources with one name, a zip
    holding the same member name twice) gets a ``#2``, ``#3`` suffix, deterministically."""

    def __init__(self) -> None:
        self.seen: dict[str, int] = {}

    def __call__(self, path: str) -> str:
        n = self.seen.get(path, 0) + 1
        self.seen[path] = n
        return path if n == 1 else f"{path}#{n}"


def _task_for(seq: int, path: str, item: EvidenceItem) -> Task:
    err = item.error
    message, reason = (err.message, err.reason) if err else (None, None)
    if item.fs_path is not None:
        return Task(seq, path, item.fs_path, None, item.size, message, reason)
    return Task(seq, path, None, item.read(), item.size, message, reason)


def run_scan(
    cfg: ScanConfig, progress: Progress | None = None, log: Callable[[str], None] | None = None
) -> ScanResult:
    from opspoor.store import get_hashset, has_signal, open_store
    from opspoor.triage.outputs import write_outputs

    progress = progress or NoProgress()
    options = dataclasses.replace(cfg.options, thumbnail=cfg.thumbnails)
    started = time.time()
    run_t0 = time.monotonic()
    case = CaseDB(cfg.case_dir)
    ident = cfg.identity()
    previous = case.get_meta("identity")
    if previous is not None and previous != ident:
        raise CaseError(
            "case directory holds another scan (different sources or hash sets); use a new --case DIR",
            str(cfg.case_dir),
        )
    workers = max(1, cfg.workers)
    # start the workers first: they load their kernels while the hash sets are being loaded
    pool = ProcessPoolExecutor(max_workers=workers, initializer=warm_up)
    for _ in range(workers):
        pool.submit(time.sleep, 0)
    try:
        store = open_store(cfg.db_url)
        # a wrong name fails now, before any work
        records = [get_hashset(store, name) for name in cfg.hashsets]
        hashsets_info = describe_hashsets(store, records)
        if cfg.local and cfg.options.pdq and has_signal(store, cfg.hashsets, LOCAL):
            options = dataclasses.replace(options, local=True)
        store.close()
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    # the indexes load in a thread while the workers hash: results wait in memory until it is ready
    loader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="opspoor-index-load")
    # (a store of its own: a SQLite connection belongs to the thread that opened it)
    matcher_ready = loader.submit(
        lambda: Matcher.from_store(open_store(cfg.db_url), cfg.hashsets, cfg.distance, cache=True)
    )
    case.set_meta("identity", ident)  # only once the hash sets are known to load
    if case.get_meta("started") is None:
        case.set_meta("started", started)
    _record_provenance(case, cfg, hashsets_info, log)
    # the scan's own time: each run adds what it spent, so a gap before a resume is not counted
    spent_before = float(case.get_meta("scan_seconds") or 0.0)

    def note_time() -> None:
        case.set_meta("scan_seconds", round(spent_before + time.monotonic() - run_t0, 3))

    done = case.done_paths()
    resumed = len(done)
    if log and resumed:
        log(f"resuming: {resumed} files already done")

    # an estimate for the ETA: files on disk plus top-level zip members (nested members come on top)
    progress.start(count_evidence(cfg.sources, cfg.limits, zip_members=True))
    files_in = 0
    unique = _UniquePaths()
    batch: list[tuple[int, dict[str, Any], bytes | None]] = []
    hashed: list[tuple[int, str, dict[str, Any], bytes | None]] = []
    last_flush = time.monotonic()

    def flush(final: bool = False) -> None:
        nonlocal last_flush
        if hashed and (final or matcher_ready.done()):
            results = matcher_ready.result().match_batch([r for _, _, r, _ in hashed])
            for (seq, path, sig, thumb), matches in zip(hashed, results, strict=True):
                batch.append((seq, _record(path, sig, matches), thumb))
            hashed.clear()
        case.add_files(batch)
        note_time()
        progress.advance(len(batch), sum(r.get("size") or 0 for _, r, _ in batch))
        batch.clear()
        last_flush = time.monotonic()

    max_inflight = workers * 4
    inflight: dict[Future[Any], Task] = {}

    def collect(block: bool) -> None:
        nonlocal pool
        if not inflight:
            return
        ready, _ = wait(list(inflight), timeout=None if block else 0, return_when=FIRST_COMPLETED)
        for fut in ready:
            task = inflight.pop(fut)
            try:
                hashed.append(fut.result())
            except BrokenProcessPool:
                # a decoder crashed a worker: record this file, restart the pool, retry the others
                hashed.append(
                    (
                        task.seq,
                        task.path,
                        {"error": "worker crashed while decoding", "error_reason": "crash"},
                        None,
                    )
                )
                others = list(inflight.values())
                inflight.clear()
                pool.shutdown(wait=False, cancel_futures=True)
                pool = ProcessPoolExecutor(max_workers=workers, initializer=warm_up)
                for t in others:
                    inflight[pool.submit(run_task, t, options)] = t
                return

    try:
        for seq, item in enumerate(_evidence(cfg)):
            files_in += 1
            path = unique(item.path)
            if path in done:
                progress.advance(1, 0)
                continue
            if item.error is not None and not item.has_content:
                batch.append(
                    (
                        seq,
                        error_record(path, item.size, item.error.message, item.error.reason, item.container),
                        None,
                    )
                )
            else:
                try:
                    task = _task_for(seq, path, item)
                except Exception as exc:  # vanished or unreadable between listing and reading
                    msg, reason = (
                        (exc.message, exc.reason)
                        if isinstance(exc, OpspoorError)
                        else (str(exc), type(exc).__name__)
                    )
                    batch.append((seq, error_record(path, item.size, msg, reason), None))
                else:
                    inflight[pool.submit(run_task, task, options)] = task
            while len(inflight) >= max_inflight:
                collect(block=True)
            collect(block=False)
            if len(hashed) + len(batch) >= BATCH or time.monotonic() - last_flush > BATCH_SECONDS:
                flush()
        while inflight:
            collect(block=True)
            if len(hashed) >= BATCH:
                flush()
        flush(final=True)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        loader.shutdown(wait=True)
        progress.finish()
    matcher = matcher_ready.result()

    case.set_meta("files_in", files_in)
    note_time()
    summary, outputs = write_outputs(case, cfg, matcher, files_in=files_in, started=case.get_meta("started"))
    case.close()
    return ScanResult(cfg.case_dir, summary, bool(summary["reconciled"]), outputs)


def _record_provenance(
    case: CaseDB,
    cfg: ScanConfig,
    hashsets_info: list[dict[str, Any]],
    log: Callable[[str], None] | None = None,
) -> None:
    """Case number, examiner, sources and hash sets, for the report. Sources are described once
    (a resume does not hash a large exhibit again); the sets as this run matched them."""
    if cfg.case_number is not None:
        case.set_meta("case_number", cfg.case_number)
    if cfg.examiner is not None:
        case.set_meta("examiner", cfg.examiner)
    if case.get_meta("sources") is None:
        if log and any(p.is_file() for p in cfg.sources):
            log("taking the SHA-256 of each source that is a file, for the report")
        case.set_meta("sources", [describe_source(p) for p in cfg.sources])
    case.set_meta("hashsets", hashsets_info)
    case.set_meta("runs", int(case.get_meta("runs") or 0) + 1)


def _evidence(cfg: ScanConfig) -> Iterator[EvidenceItem]:
    return iter_evidence(cfg.sources, cfg.limits)


def _record(path: str, sig: dict[str, Any], matches: list[dict[str, Any]]) -> dict[str, Any]:
    rec = new_record(path, size=sig.get("size"), type_=sig.get("type"))
    for k in ("md5", "sha1", "sha256", "pdq", "pdq_quality", "vpdq_frames", "exif", "error"):
        rec[k] = sig.get(k)
    if rec["size"] == 0 and not rec["error"]:
        # an empty file is evidence too (a wiped or failed copy): report it, do not call it "other"
        rec["error"], sig["error_reason"] = "empty file (0 bytes)", EMPTY_FILE
    rec["matches"] = matches
    rec["status"] = verdict(sig.get("kind") or "other", matches, failed=rec["error"] is not None)
    if sig.get("error_reason"):
        rec["error_reason"] = sig["error_reason"]
    return rec
