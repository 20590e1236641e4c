"""``opspoor scan``: every file hashed and matched, known separated from new, new grouped, nothing lost.

Flow: the main process walks the sources (``opspoor.sources``) and feeds the workers
(``triage.executor``: the local process pool, or a Dask cluster) that hash each file in one read
(``opspoor.signals.engine``); results are matched in batches (``Matcher``) and committed to the
case database, keyed by evidence path. A killed scan is resumed by running the same command
again: finished paths are skipped. When every file is accounted for, the new media are grouped
and the scan is added up (``triage.summary``); the outputs (files.jsonl, summary.json,
export-vics.json, report.html) are written from the case database by the layer above
(``opspoor.casefile.scan_case``).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from opspoor.clues.extract import ClueOptions
from opspoor.errors import CaseError, MissingSource, OpspoorError
from opspoor.matching import LOCAL, Matcher
from opspoor.media.sniff import kind_of
from opspoor.signals.engine import HashOptions
from opspoor.sources import EvidenceItem, count_evidence, iter_evidence, source_names
from opspoor.triage.case import CASE_DB, CaseDB, check_case_dir, check_is_case
from opspoor.triage.config import NoProgress, Progress, ScanConfig, ScanResult
from opspoor.triage.executor import Executor, crash_note, start_executor
from opspoor.triage.interrupt import REQUESTED, shielded
from opspoor.triage.links import index_case, merge_others, read_case
from opspoor.triage.pool import CRASH
from opspoor.triage.provenance import describe_hashsets, describe_source
from opspoor.triage.records import EMPTY_FILE, error_record, new_record, verdict
from opspoor.triage.summary import assign_groups, build_summary
from opspoor.triage.worker import Task

BATCH = 256
BATCH_SECONDS = 2.0


class ShieldedProgress:
    """A progress display whose calls a Ctrl-C does not cut short (Rich's live display holds a lock
    and a refresh thread; cut short, it may swallow the line that says how to resume)."""

    def __init__(self, inner: Progress) -> None:
        self.inner = inner

    def start(self, total: int | None) -> None:
        with shielded():
            self.inner.start(total)

    def advance(self, files: int, nbytes: int) -> None:
        with shielded():
            self.inner.advance(files, nbytes)

    def finish(self) -> None:
        with shielded():
            self.inner.finish()


def _shielded_log(log: Callable[[str], None]) -> Callable[[str], None]:
    def say(message: str) -> None:
        with shielded():
            log(message)

    return say


def _ready(fut: Future[Any]) -> Any:
    """``fut.result()``, waited for where a Ctrl-C cannot land inside the future's lock."""
    with shielded():
        while not fut.done():
            if REQUESTED.is_set():
                raise KeyboardInterrupt
            wait([fut], timeout=0.2)
    return fut.result()


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
    if item.zip_member is not None:  # large: the worker reads it from the zip, nobody holds it whole
        return Task(seq, path, None, None, item.size, message, reason, zip_member=item.zip_member)
    if item.disk_member is not None:  # in a disk image: the worker reads it from the image itself
        return Task(seq, path, None, None, item.size, message, reason, disk_member=item.disk_member)
    return Task(seq, path, None, item.read(), item.size, message, reason)


def run_scan(
    cfg: ScanConfig, progress: Progress | None = None, log: Callable[[str], None] | None = None
) -> ScanResult:
    """Scan ``cfg.sources`` into the case. Checks everything it can before it creates the case folder,
    and removes a folder it created when the scan could not start."""
    check_case_dir(cfg.case_dir, cfg.sources)
    for other in cfg.link_cases:  # a wrong --link-case is said before any work
        if os.path.realpath(other) == os.path.realpath(cfg.case_dir):
            raise CaseError("--link-case names this scan's own case folder", str(other))
        check_is_case(Path(other) / CASE_DB)
    for src in cfg.sources:  # a mistyped source is the user's mistake, not a record in a case
        if not os.path.exists(src):
            broken = " (a broken symlink)" if os.path.islink(src) else ""
            raise MissingSource(f"source not found{broken}", str(src))
    created = not os.path.lexists(cfg.case_dir)
    started_work = False
    try:
        progress = ShieldedProgress(progress or NoProgress())
        result = _run_scan(cfg, progress, _shielded_log(log or (lambda _m: None)))
        started_work = True
        return result
    except BaseException:
        if created and not started_work and not _has_results(cfg.case_dir):
            shutil.rmtree(cfg.case_dir, ignore_errors=True)
        raise


def _has_results(case_dir: Path) -> bool:
    try:
        con = sqlite3.connect(f"file:{case_dir / CASE_DB}?mode=ro", uri=True)
        try:
            return bool(con.execute("SELECT 1 FROM files LIMIT 1").fetchone())
        finally:
            con.close()
    except sqlite3.Error:
        return False


def _set_versions(store: Any, names: list[str]) -> dict[str, list[Any]]:
    """Each set's identity and newest change (the key of its cached index): equal means unchanged."""
    from opspoor.store import get_hashset
    from opspoor.store.hashsets import last_changes

    recs = {name: get_hashset(store, name) for name in names}  # a wrong name fails here
    last = last_changes(store, [r.id for r in recs.values()])
    return {name: [r.id, str(r.created_at), last[r.id]] for name, r in sorted(recs.items())}


def _run_scan(cfg: ScanConfig, progress: Progress, log: Callable[[str], None]) -> ScanResult:
    from opspoor.store import get_hashset, has_signal, open_store

    # a worker's memory budget: file bytes held at once, and an image's decode (refused beyond it)
    budget = min(cfg.options.max_in_memory, cfg.limits.max_in_memory)
    options = dataclasses.replace(
        cfg.options, thumbnail=cfg.thumbnails, max_in_memory=budget, max_decode_memory=budget
    )
    started = time.time()
    run_t0 = time.monotonic()
    ident = cfg.identity()
    if (cfg.case_dir / CASE_DB).exists():  # refuse another scan's case before starting anything
        existing = CaseDB(cfg.case_dir)
        try:
            previous = existing.get_meta("identity")
        finally:
            existing.close()
        if previous is not None and previous != ident:
            raise CaseError(
                "case directory holds another scan (different sources or hash sets); use a new --case DIR",
                str(cfg.case_dir),
            )
    pool: Executor | None = None
    loader: ThreadPoolExecutor | None = None
    interrupted = False
    try:
        # start the workers first: they load their kernels while the hash sets are being loaded
        clue_opts = ClueOptions(enabled=cfg.clues, ocr=cfg.ocr, country=cfg.country)
        pool = start_executor(cfg.executor, cfg.workers, options, cfg.scheduler, cfg.sources, clue_opts)
        store = open_store(cfg.db_url)
        try:
            versions = _set_versions(store, cfg.hashsets)
            records = [get_hashset(store, name) for name in cfg.hashsets]
            hashsets_info = describe_hashsets(store, records)
            if cfg.local and cfg.options.pdq and has_signal(store, cfg.hashsets, LOCAL):
                options = dataclasses.replace(options, local=True)
                pool.options = options
        finally:
            store.close()
        # the indexes load in a thread while the workers hash: results wait in memory until it is ready
        with shielded():  # (a Ctrl-C inside submit could leave the executor's lock held)
            loader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="opspoor-index-load")
            # (a store of its own: a SQLite connection belongs to the thread that opened it)
            matcher_ready = loader.submit(
                lambda: Matcher.from_store(open_store(cfg.db_url), cfg.hashsets, cfg.distance, cache=True)
            )
        case = CaseDB(cfg.case_dir)
        case.set_meta("identity", ident)  # only once the hash sets are known to load
        if case.get_meta("started") is None:
            case.set_meta("started", started)
        _record_provenance(case, cfg, hashsets_info, log)
        # the scan's own time: each run adds what it spent, so a gap before a resume is not counted
        spent_before = float(case.get_meta("scan_seconds") or 0.0)

        def note_time() -> None:
            case.set_meta("scan_seconds", round(spent_before + time.monotonic() - run_t0, 3))

        if case.count() and case.get_meta("hashset_versions") != versions:
            _match_again(
                case, _ready(matcher_ready), versions, case.get_meta("hashset_versions"), options, log
            )
        case.set_meta("hashset_versions", versions)
        done = case.done_paths(retry_reasons=[CRASH])
        if done:
            log(f"resuming: {len(done)} files already done")
        files_in = _hash_and_match(cfg, case, pool, matcher_ready, done, progress, note_time, log)
    except BaseException as exc:
        interrupted = isinstance(exc, KeyboardInterrupt)
        raise
    finally:
        with shielded():  # both stopped whatever comes; a Ctrl-C meanwhile is raised after
            if pool is not None:
                pool.shutdown(interrupted=interrupted)
            if loader is not None:
                loader.shutdown(wait=not interrupted, cancel_futures=True)
    assert pool is not None
    note = crash_note(cfg.executor, pool.crashes)
    if note:
        log(note)
    matcher = _ready(matcher_ready)
    case.set_meta("files_in", files_in)
    _source_hashes(case, cfg, log)
    note_time()
    indexed = index_case(
        cfg.db_url, cfg.case_dir, case.get_meta("case_number"), (f.record for f in case.iter_files())
    )
    others = merge_others(indexed, [read_case(p) for p in cfg.link_cases])
    groups = assign_groups(case, radius=matcher.pdq_radius, country=cfg.country, others=others)
    summary = build_summary(case, cfg, files_in, case.get_meta("started"), groups)
    case.close()
    return ScanResult(cfg.case_dir, summary, bool(summary["reconciled"]), {}, groups)


def _match_again(
    case: CaseDB,
    matcher: Matcher,
    versions: dict[str, list[Any]],
    before: dict[str, list[Any]] | None,
    options: HashOptions,
    log: Callable[[str], None],
) -> None:
    """The hash sets changed since the case's last run: match every finished file again from the
    hashes the case holds (no file is read again). Images without a match are hashed again when local
    features are matched (the case does not keep them: up to 48 KB an image)."""
    changed = [n for n in versions if (before or {}).get(n) != versions[n]]
    matched = changed_verdicts = 0
    again: list[str] = []
    for rows in case.iter_queries():
        sigs = [_query_signals(rec, query) for rec, query in rows]
        updated = []
        for (rec, _), matches in zip(rows, matcher.match_batch(sigs), strict=True):
            if rec.get("error_reason") == CRASH:
                continue  # done again anyway
            if options.local and rec.get("pdq") and not matches:
                again.append(rec["path"])
                continue
            kind = kind_of(rec.get("type"))  # the sniffed type: a video without frames is still a video
            failed = rec.get("error") is not None
            status = verdict(kind, matches, failed=failed)
            if status != rec["status"]:
                changed_verdicts += 1
            rec["matches"], rec["status"] = matches, status
            updated.append(rec)
        case.update_records(updated)
        matched += len(updated)
    case.forget(again)
    names = ", ".join(changed) if before else "the hash sets (not recorded by the earlier run)"
    more = f", {len(again)} images to hash again for their local features" if again else ""
    log(
        f"hash set {names} changed since the last run: {matched} files matched again "
        f"({changed_verdicts} verdicts changed){more}"
    )


def _streamed_signals(item: EvidenceItem) -> dict[str, Any]:
    from opspoor.media.sniff import sniff

    d, found, err = item.digests, sniff(item.head or b""), item.error
    return {
        "size": d.size, "kind": found.kind, "type": found.type, "md5": d.md5, "sha1": d.sha1,
        "sha256": d.sha256, "error": err.message if err else None,
        "error_reason": err.reason if err else None,
    }  # fmt: skip


def _query_signals(rec: dict[str, Any], query: dict[str, Any] | None) -> dict[str, Any]:
    sig = {k: rec.get(k) for k in ("md5", "sha1", "sha256", "pdq", "pdq_quality", "vpdq_frames")}
    if query:
        sig["pdq_variants"] = query.get("pdq_variants")
    return sig


def _hash_and_match(
    cfg: ScanConfig,
    case: CaseDB,
    pool: Executor,
    matcher_ready: Future[Matcher],
    done: set[str],
    progress: Progress,
    note_time: Callable[[], None],
    log: Callable[[str], None] = lambda _m: None,
) -> int:
    """Every file of the sources not yet done: hashed in the pool, matched in batches, committed."""
    # an estimate for the ETA: files on disk plus top-level zip members (nested members come on top)
    progress.start(count_evidence(cfg.sources, cfg.limits, zip_members=True))
    files_in = 0
    unique = _UniquePaths()
    batch: list[tuple[int, dict[str, Any], bytes | None, Any]] = []
    hashed: list[tuple[int, str, dict[str, Any], bytes | None]] = []
    last_flush = time.monotonic()

    # fields a source adds to a record (inside a disk image: deleted, carved, offset), by sequence
    extras: dict[int, dict[str, Any]] = {}

    def flush(final: bool = False) -> None:
        nonlocal last_flush
        if hashed and (final or matcher_ready.done()):
            results = _ready(matcher_ready).match_batch([r for _, _, r, _ in hashed])
            for (seq, path, sig, thumb), matches in zip(hashed, results, strict=True):
                query = {"pdq_variants": sig["pdq_variants"]} if sig.get("pdq_variants") else None
                batch.append((seq, _record(path, sig, matches) | extras.pop(seq, {}), thumb, query))
            hashed.clear()
        case.add_files(batch)
        note_time()
        progress.advance(len(batch), sum(r.get("size") or 0 for _, r, _, _ in batch))
        batch.clear()
        last_flush = time.monotonic()

    max_inflight = pool.depth
    try:
        for seq, item in enumerate(_evidence(cfg)):
            files_in += 1
            path = unique(item.path)
            if item.extra and "image" in item.extra:
                _note_image(case, path, item.extra["image"], log)
            if path in done:
                progress.advance(1, 0)
                continue
            if item.extra:
                extras[seq] = item.extra
            if item.digests is not None:  # a member too large to hold: hashed as it streamed past
                hashed.append((seq, path, _streamed_signals(item), None))
            elif item.error is not None and not item.has_content:
                rec = error_record(path, item.size, item.error.message, item.error.reason, item.container)
                batch.append((seq, rec | extras.pop(seq, {}), None, None))
            else:
                try:
                    task = _task_for(seq, path, item)
                except Exception as exc:  # vanished or unreadable between listing and reading
                    msg, reason = (
                        (exc.message, exc.reason)
                        if isinstance(exc, OpspoorError)
                        else (str(exc), type(exc).__name__)
                    )
                    batch.append(
                        (seq, error_record(path, item.size, msg, reason) | extras.pop(seq, {}), None, None)
                    )
                else:
                    # members travel to the workers as bytes: those in flight stay within one room
                    size = len(task.data) if task.data is not None else 0
                    while len(pool) and pool.held + size > cfg.limits.max_in_memory:
                        hashed.extend(pool.collect(block=True))
                    hashed.extend(pool.submit(task))
            while len(pool) >= max_inflight:
                hashed.extend(pool.collect(block=True))
            hashed.extend(pool.collect(block=False))
            if len(hashed) + len(batch) >= BATCH or time.monotonic() - last_flush > BATCH_SECONDS:
                flush()
        while len(pool):
            hashed.extend(pool.collect(block=True))
            if len(hashed) >= BATCH:
                flush()
        flush(final=True)
    finally:
        progress.finish()
    return files_in


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
    if case.get_meta("sources") is None:  # a file's SHA-256 comes from its record (_source_hashes)
        case.set_meta("sources", [describe_source(p, sha256=False) for p in cfg.sources])
    case.set_meta("hashsets", hashsets_info)
    case.set_meta("country", cfg.country)  # (a re-match, also of the published case, ranks by it)
    case.set_meta("runs", int(case.get_meta("runs") or 0) + 1)


def _source_hashes(case: CaseDB, cfg: ScanConfig, log: Callable[[str], None]) -> None:
    """The SHA-256 of each source that is a file, for the report: taken from the file's own record
    (hashed by the scan, so a large exhibit is not read twice), else read for it here."""
    sources = case.get_meta("sources") or []
    changed = False
    for desc, name, src in zip(sources, source_names(cfg.sources), cfg.sources, strict=False):
        if desc.get("kind") != "file" or desc.get("sha256") or desc.get("error"):
            continue
        rec = case.record(name)
        if rec and rec.get("sha256") and rec.get("size") == desc.get("size"):
            desc["sha256"] = rec["sha256"]
        else:
            log(f"taking the SHA-256 of {name}, for the report")
            desc.update(describe_source(Path(src)))
        changed = True
    if changed:
        case.set_meta("sources", sources)


def _evidence(cfg: ScanConfig) -> Iterator[EvidenceItem]:
    return iter_evidence(cfg.sources, cfg.limits, verify_images=cfg.verify_images, carve=cfg.carve)


def _note_image(case: CaseDB, path: str, image: dict[str, Any], log: Callable[[str], None]) -> None:
    """A disk image's partitions, counts and (``--verify-image``) verification, kept in the case
    meta ``images`` by evidence path; the verification result is also said in the log."""
    images = case.get_meta("images") or {}
    images[path] = image
    case.set_meta("images", images)
    v = image.get("verification")
    if v is not None:
        stored = ", ".join(f"{k} {h}" for k, h in v.get("stored", {}).items())
        why = v.get("detail") if v["result"] == "unreadable" else None  # the segment and offset at fault
        said = f"stored: {stored}" if stored else (why or "stored: none")
        log(f"image {path}: acquisition hash {v['result']} ({said})")


def _record(path: str, sig: dict[str, Any], matches: list[dict[str, Any]]) -> dict[str, Any]:
    rec = new_record(path, size=sig.get("size"), type_=sig.get("type"))
    for k in ("md5", "sha1", "sha256", "pdq", "pdq_quality", "vpdq_frames", "exif", "error"):
        rec[k] = sig.get(k)
    if sig.get("clues") is not None:
        rec["clues"] = sig["clues"]
    if rec["size"] == 0 and not rec["error"]:
        # an empty file is evidence too (a wiped or failed copy): report it, do not call it "other"
        rec["error"], sig["error_reason"] = "empty file (0 bytes)", EMPTY_FILE
    rec["matches"] = matches
    rec["status"] = verdict(sig.get("kind") or "other", matches, failed=rec["error"] is not None)
    if sig.get("error_reason"):
        rec["error_reason"] = sig["error_reason"]
    return rec
