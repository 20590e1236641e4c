"""``opspoor scan``: the triage scan."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from opspoor.cli.app import DbOption, app, err, out
from opspoor.cli.options import (
    CommandLineError,
    DistanceOption,
    ExecutorKind,
    ExecutorOption,
    LocalOption,
    LowQualityOption,
    Robust,
    RobustOption,
    SchedulerOption,
    WorkersOption,
    country_code,
    robust_query_methods,
)


class RichProgress:
    """Files/s, elapsed and ETA on stderr. The total is an estimate (files on disk plus top-level zip
    members); members of nested archives are counted as they are found."""

    def __init__(self) -> None:
        self.bar = Progress(
            TextColumn("[bold]scanning"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]} files/s  {task.fields[mb]} MB"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=err,
            transient=False,
        )
        self.t0 = time.monotonic()
        self.files = 0
        self.bytes = 0

    def start(self, total: int | None) -> None:
        self.bar.start()
        self.task = self.bar.add_task("scan", total=total, rate="-", mb="0")

    def advance(self, files: int, nbytes: int) -> None:
        self.files += files
        self.bytes += nbytes
        rate = self.files / max(1e-6, time.monotonic() - self.t0)
        total = self.bar.tasks[0].total
        if total is not None and self.files > total:  # more nested members than estimated
            self.bar.update(self.task, total=self.files)
        self.bar.update(self.task, advance=files, rate=f"{rate:.1f}", mb=f"{self.bytes / 1e6:.1f}")

    def finish(self) -> None:
        self.bar.stop()


class JsonLogProgress:
    """Machine-readable progress: one JSON object per line on stderr, at most twice a second."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.last = 0.0
        self.files = 0
        self.bytes = 0
        self.total: int | None = None

    def _emit(self, event: str) -> None:
        el = time.monotonic() - self.t0
        rate = self.files / el if el > 0 else 0.0
        left = max(0, (self.total or 0) - self.files)
        rec = {
            "event": event,
            "files": self.files,
            "total_estimate": self.total,
            "bytes": self.bytes,
            "elapsed": round(el, 3),
            "files_per_s": round(rate, 2),
            "eta_s": round(left / rate, 1) if rate > 0 and self.total else None,
        }
        sys.stderr.write(json.dumps(rec) + "\n")
        sys.stderr.flush()

    def start(self, total: int | None) -> None:
        self.total = total
        self._emit("start")

    def advance(self, files: int, nbytes: int) -> None:
        self.files += files
        self.bytes += nbytes
        now = time.monotonic()
        if now - self.last >= 0.5:
            self.last = now
            self._emit("progress")

    def finish(self) -> None:
        self._emit("hashed")


@app.command("scan")
def scan(
    sources: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Files, folders and archives to scan (read-only); none with --rematch.",
            metavar="SOURCE",
            show_default=False,
        ),
    ] = None,
    hashset: Annotated[
        list[str] | None,
        typer.Option(
            "--hashset",
            metavar="NAME",
            help="Hash set to match against (repeatable; needed, except with --rematch: the case's own).",
            show_default=False,
        ),
    ] = None,
    case: Annotated[
        Path | None,
        typer.Option(
            "--case",
            metavar="FOLDER",
            help="Case folder for the results (created owner-only). Needed.",
            show_default=False,
        ),
    ] = None,
    rematch: Annotated[
        bool,
        typer.Option(
            "--rematch",
            help="Match the finished case in --case again against the hash sets as they are now, "
            "from the signals it holds (no file is read): verdicts, groups and outputs redone, the "
            "change said and kept in rematch.json.",
        ),
    ] = False,
    db: DbOption = None,
    workers: WorkersOption = 0,
    executor: ExecutorOption = ExecutorKind.local,
    scheduler: SchedulerOption = None,
    no_thumbnails: Annotated[
        bool, typer.Option("--no-thumbnails", help="Write no thumbnails at all.")
    ] = False,
    json_log: Annotated[bool, typer.Option("--json-log", help="JSON-lines progress on stderr.")] = False,
    max_depth: Annotated[int, typer.Option("--max-depth", help="Archive nesting limit.")] = 8,
    max_member_memory: Annotated[
        int,
        typer.Option(
            "--max-member-memory",
            metavar="MIB",
            min=1,
            help="Largest archive member decoded (MiB); a larger one is only hashed (MD5, SHA-1, "
            "SHA-256). Also caps a worker's memory budget (512 MiB): bytes it holds, an image's decode.",
        ),
    ] = 1024,
    robust: RobustOption = Robust.fast,
    low_quality: LowQualityOption = True,
    local: LocalOption = True,
    distance: DistanceOption = None,
    case_number: Annotated[
        str | None,
        typer.Option(
            "--case-number", help="Case or exhibit number, shown in the report.", show_default=False
        ),
    ] = None,
    examiner: Annotated[
        str | None,
        typer.Option("--examiner", help="Who ran the scan, shown in the report.", show_default=False),
    ] = None,
    verify_image: Annotated[
        bool,
        typer.Option(
            "--verify-image",
            help="Read each disk image whole and check the acquisition hash it stores (E01); "
            "the result is recorded in the case (docs/disk-images.md).",
        ),
    ] = False,
    no_carve: Annotated[
        bool,
        typer.Option("--no-carve", help="Do not carve files from disk images' unallocated space."),
    ] = False,
    country: Annotated[
        str,
        typer.Option(
            "--country",
            metavar="CC",
            help="Country of interest (ISO 3166 alpha-2): groups with clues pointing there come first.",
        ),
    ] = "NL",
    clues: Annotated[
        bool,
        typer.Option(
            "--clues/--no-clues",
            help="Location clues per media file: names, OCR where it looks like text, subtitles "
            "(docs/clues.md).",
        ),
    ] = True,
    ocr: Annotated[
        bool, typer.Option("--ocr/--no-ocr", help="Read text in pictures and video frames (Tesseract).")
    ] = True,
    link_case: Annotated[
        list[Path] | None,
        typer.Option(
            "--link-case",
            metavar="FOLDER",
            help="An earlier case (repeatable): say which serials, phone numbers, plates and places "
            "were seen there too. Read only.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Triage evidence: hash, match and group every file into a case.

    Known material is separated from new; new media are grouped into series candidates and put
    in review order. Writes case.sqlite, files.jsonl, summary.json, report.html and a VICS export.
    """
    from opspoor.triage import interrupt

    if case is None:
        raise CommandLineError("missing: the case folder the scan writes (or --rematch reads)", "--case")
    if rematch:
        if sources:
            raise CommandLineError("reads the case, not the sources: give no SOURCE", "--rematch")
        interrupt.release()
        try:
            _rematch(case, hashset or None, db, distance)
        except KeyboardInterrupt:
            interrupt.defer()
            say_interrupted()
            raise typer.Exit(130) from None
        interrupt.defer()
        return
    if not sources:
        raise CommandLineError("missing: the files, folders and archives to scan", "SOURCE")
    if not hashset:
        raise CommandLineError("missing: a hash set to match against (repeatable)", "--hashset")

    # Ctrl-C at any moment: one line, and the case resumes (Click would say "Aborted!"). The handler
    # is installed by ``main`` (deferred while the command line is parsed); from here on the scan
    # raises it only at safe points (opspoor.triage.interrupt)
    try:
        interrupt.release()
        _scan(sources, hashset, case, db, workers, no_thumbnails, json_log,
              max_depth, max_member_memory, robust, low_quality, local, distance, case_number,
              examiner, verify_image, no_carve, country, clues, ocr, link_case or [],
              executor, scheduler)  # fmt: skip
    except KeyboardInterrupt:
        interrupt.defer()  # a Ctrl-C more would only cut this line short
        say_interrupted()
        raise typer.Exit(130) from None
    interrupt.defer()  # done: a Ctrl-C now must not turn a finished scan into a traceback


INTERRUPTED = "interrupted; run the same command to resume"


def _rematch(case: Path, hashsets: list[str] | None, db: str | None, distance: int | None) -> None:
    from opspoor.casefile.rematch import rematch_case

    result = rematch_case(case, hashsets, db_url=db, distance=distance)
    c = result.changes
    out.print(
        f"matched {c['files']} files of {case} again against {', '.join(c['hashsets'])} (no file read)",
        markup=False,
    )
    for key, label in (
        ("newly_known", "newly known"),
        ("newly_ignorable", "newly ignorable"),
        ("no_longer_known", "no longer known"),
        ("no_longer_ignorable", "no longer ignorable"),
    ):
        moved = c[key]
        detail = ", ".join(f"{b['hashset']} {b['category']}: {b['files']}" for b in moved.get("by_set", []))
        out.print(f"{label}: {moved['count']}" + (f" ({detail})" if detail else ""), markup=False)
    if c["local_matches_kept"]:
        out.print(
            f"{c['local_matches_kept']} matches by local features kept from the scan (not matched again)",
            markup=False,
        )
    out.print("   ".join(f"{k}: {v}" for k, v in c["by_status"].items()), markup=False)
    out.print(f"new groups for review: {c['groups']} (before: {c['groups_before']})", markup=False)
    out.print(f"changes: {result.outputs['rematch']}   report: {result.outputs['report']}", markup=False)


def say_interrupted() -> None:
    # plain write, after the progress display has stopped: the line is the last thing on stderr
    sys.stdout.flush()
    sys.stderr.write(INTERRUPTED + "\n")
    sys.stderr.flush()


def _scan(
    sources: list[Path],
    hashset: list[str],
    case: Path,
    db: str | None,
    workers: int,
    no_thumbnails: bool,
    json_log: bool,
    max_depth: int,
    max_member_memory: int,
    robust: Robust,
    low_quality: bool,
    local: bool,
    distance: int | None,
    case_number: str | None,
    examiner: str | None,
    verify_image: bool = False,
    no_carve: bool = False,
    country: str = "NL",
    clues: bool = True,
    ocr: bool = True,
    link_cases: list[Path] | None = None,
    executor: ExecutorKind = ExecutorKind.local,
    scheduler: str | None = None,
) -> None:
    from opspoor.casefile.scan import scan_case
    from opspoor.signals.engine import HashOptions
    from opspoor.sources import Limits
    from opspoor.triage.config import ScanConfig

    cfg = ScanConfig(
        sources=sources,
        hashsets=hashset,
        case_dir=case,
        db_url=db,
        workers=workers or os.cpu_count() or 1,
        thumbnails=not no_thumbnails,
        limits=Limits(max_depth=max_depth, max_in_memory=max_member_memory << 20),
        options=HashOptions(robust=robust_query_methods(robust, low_quality)),
        local=local,
        case_number=case_number,
        examiner=examiner,
        distance=distance,
        verify_images=verify_image,
        carve=not no_carve,
        clues=clues,
        ocr=ocr,
        country=country_code(country),
        link_cases=list(link_cases or []),
        executor=executor.value,
        scheduler=scheduler,
    )
    progress = JsonLogProgress() if json_log else RichProgress()
    result = scan_case(cfg, progress, log=lambda m: err.print(m))
    s = result.summary
    if json_log:
        sys.stderr.write(json.dumps({"event": "done", "summary": s}) + "\n")
    else:
        out.print(
            f"files in: {s['files_in']}   accounted for: {s['files_accounted']}   "
            f"{'reconciled' if s['reconciled'] else 'NOT RECONCILED'}"
        )
        out.print("   ".join(f"{k}: {v}" for k, v in s["by_status"].items()))
        out.print(f"new groups for review: {s['groups']['count']}")
        out.print(f"report: {result.outputs['report']}")
    # exit 3: the case is written in full, but something in it the examiner must see first
    unreconciled = "the number of records does not equal the number of files in the sources"
    problems = [] if result.reconciled else [unreconciled]
    problems += [
        f"image {path}: acquisition hash MISMATCH; the image is not as it was acquired"
        for path, image in (s.get("disk_images") or {}).items()
        if (image.get("verification") or {}).get("result") == "MISMATCH"
    ]
    for problem in problems:
        err.print(f"[bold red]error:[/] {escape(problem)}")
    if problems:
        raise typer.Exit(3)
