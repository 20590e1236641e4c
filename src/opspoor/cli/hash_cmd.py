"""``opspoor hash``: print the signals of files, as a table or as JSON lines."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from opspoor.cli.app import app
from opspoor.cli.tables import Column, print_table
from opspoor.errors import OpspoorError, SourceError
from opspoor.signals.engine import FileSignals, HashOptions, hash_path
from opspoor.signals.vpdq import format_vpdq
from opspoor.sources.folder import walk_files


def expand_paths(args: list[Path]) -> Iterator[Path]:
    """Files as given; folders replaced by the files inside them, recursively, in sorted order."""
    for arg in args:
        if arg.is_dir():
            yield from sorted(p for p in arg.rglob("*") if p.is_file())
        else:
            yield arg  # a missing or unreadable path still gets its error row


def hash_targets(args: list[Path]) -> Iterator[tuple[str, Path | None, OpspoorError | None]]:
    """(path as shown, file to read, error) for each file: the files given, and every entry of the
    folders given, walked as the scan walks them. A FIFO, device, broken symlink or loop inside a
    folder gets its row with the reason, and is never opened."""
    for arg in args:
        if not arg.is_dir():
            yield str(arg), arg, None  # hash_path names whatever is wrong with it
            continue
        for rel, fs_path, error in walk_files(arg):
            shown = str(arg / rel) if rel else str(arg)
            yield shown, None if fs_path is None else Path(fs_path), error


def error_text(exc: OpspoorError) -> str:
    """The reason and its message; the path is in its own column."""
    return f"{exc.reason}: {exc.message}"


def signals_row(path: Path | str, sig: FileSignals | None, failure: OpspoorError | None) -> dict[str, Any]:
    """The JSON object of one file. Other tools rely on exactly these keys (``pdq_quality`` as in
    files.jsonl and the service's answers)."""
    exc = failure if sig is None else sig.error
    return {
        "path": str(path),
        "type": sig.type if sig else None,
        "size": sig.size if sig else None,
        "md5": sig.md5 if sig else None,
        "sha1": sig.sha1 if sig else None,
        "sha256": sig.sha256 if sig else None,
        "pdq": sig.pdq if sig else None,
        "pdq_quality": sig.quality if sig else None,
        "vpdq_frames": format_vpdq(sig.vpdq_frames).splitlines()
        if sig and sig.vpdq_frames is not None
        else None,
        "error": error_text(exc) if exc is not None else None,
    }


def _hash_one(path: Path, options: HashOptions) -> tuple[FileSignals | None, OpspoorError | None]:
    try:
        return hash_path(path, options), None
    except OpspoorError as exc:
        return None, exc
    except Exception as exc:  # one bad file never stops the others
        return None, SourceError(f"{type(exc).__name__}: {exc}", str(path))


#: the table's columns; the hashes are left out on a narrow terminal (--json has them in full)
COLUMNS = (
    Column("path", path=True),
    Column("type"),
    Column("size", right=True),
    Column("md5", optional=True),
    Column("sha256", optional=True),
    Column("pdq", optional=True),
    Column("pdq_quality", right=True),
    Column("error", style="red", detail=True),
)


@app.command("hash")
def hash_files(
    files: Annotated[
        list[Path], typer.Argument(help="Files or folders (hashed recursively) to hash.", metavar="FILE")
    ],
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    dihedral: Annotated[
        bool,
        typer.Option("--dihedral", help="Also the 8 rotated/flipped PDQ variants (JSON key pdq_dihedral)."),
    ] = False,
    every_seconds: Annotated[
        float,
        typer.Option(
            "--every-seconds",
            min=0.0,
            metavar="S",
            help="vPDQ: hash one frame every S seconds (0 = every frame).",
        ),
    ] = 1.0,
) -> None:
    """Hash files: MD5, SHA-1, SHA-256, PDQ (images) and vPDQ (videos)."""
    options = HashOptions(dihedral=dihedral, every_seconds=every_seconds)
    rows: list[list[str]] = []
    failed = 0
    for shown, path, error in hash_targets(files):
        sig, failure = _hash_one(path, options) if path is not None else (None, error)
        row = signals_row(shown, sig, failure)
        failed += row["error"] is not None
        if json_out:
            if dihedral:
                row["pdq_dihedral"] = sig.pdq_dihedral if sig else None
            typer.echo(json.dumps(row))
        else:
            rows.append(_table_row(row, sig))
    if not json_out:
        print_table(COLUMNS, rows)
    if failed:
        raise typer.Exit(1)


def _table_row(row: dict[str, Any], sig: FileSignals | None) -> list[str]:
    pdq = _short(row["pdq"])
    quality = "" if row["pdq_quality"] is None else str(row["pdq_quality"])
    if sig is not None and sig.vpdq_frames is not None:
        pdq = f"vPDQ: {len(sig.vpdq_frames)} frames"
        qualities = [f.quality for f in sig.vpdq_frames]
        low, high = (min(qualities), max(qualities)) if qualities else (None, None)
        quality = "" if low is None else str(low) if low == high else f"{low}-{high}"
    return [
        row["path"],
        row["type"] or "",
        "" if row["size"] is None else f"{row['size']:,}",
        row["md5"] or "",
        _short(row["sha256"]),  # full values are in --json
        pdq,
        quality,
        row["error"] or "",
    ]


def _short(value: str | None) -> str:
    return f"{value[:16]}…" if value else ""
