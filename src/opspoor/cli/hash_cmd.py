"""``opspoor hash``: print the signals of files, as a table or as JSON lines."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from opspoor.cli.app import app, out
from opspoor.errors import OpspoorError, SourceError
from opspoor.signals.engine import FileSignals, HashOptions, hash_path
from opspoor.signals.vpdq import format_vpdq


def expand_paths(args: list[Path]) -> Iterator[Path]:
    """Files as given; folders replaced by the files inside them, recursively, in sorted order."""
    for arg in args:
        if arg.is_dir():
            yield from sorted(p for p in arg.rglob("*") if p.is_file())
        else:
            yield arg  # a missing or unreadable path still gets its error row


def error_text(exc: OpspoorError) -> str:
    """The reason and its message; the path is in its own column."""
    return f"{exc.reason}: {exc.message}"


def signals_row(path: Path, sig: FileSignals | None, failure: OpspoorError | None) -> dict[str, Any]:
    """The JSON object of one file. Other tools rely on exactly these keys."""
    exc = failure if sig is None else sig.error
    return {
        "path": str(path),
        "type": sig.type if sig else None,
        "size": sig.size if sig else None,
        "md5": sig.md5 if sig else None,
        "sha1": sig.sha1 if sig else None,
        "sha256": sig.sha256 if sig else None,
        "pdq": sig.pdq if sig else None,
        "quality": sig.quality if sig else None,
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
            "--every-seconds", min=0.0, help="vPDQ: hash one frame every S seconds (0 = every frame)."
        ),
    ] = 1.0,
) -> None:
    """Hash files: MD5, SHA-1, SHA-256, PDQ (images) and vPDQ (videos)."""
    options = HashOptions(dihedral=dihedral, every_seconds=every_seconds)
    table = _new_table() if not json_out else None
    failed = 0
    for path in expand_paths(files):
        sig, failure = _hash_one(path, options)
        row = signals_row(path, sig, failure)
        failed += row["error"] is not None
        if table is None:
            if dihedral:
                row["pdq_dihedral"] = sig.pdq_dihedral if sig else None
            typer.echo(json.dumps(row))
        else:
            _add_table_row(table, row, sig)
    if table is not None:
        _print_table(table)
    if failed:
        raise typer.Exit(1)


def _print_table(table: Table) -> None:
    if out.is_terminal:
        out.print(table)
        return
    # piped output has no width to fit: give the table its natural width instead of folding it
    plain = Console(file=io.StringIO(), width=1000, color_system=None, highlight=False)
    plain.print(table)
    text = plain.file.getvalue()  # type: ignore[attr-defined]
    typer.echo("\n".join(line.rstrip() for line in text.splitlines()))


def _new_table() -> Table:
    table = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False, show_edge=False)
    for name in ("path", "type", "size", "md5", "sha256", "pdq", "quality", "error"):
        wraps = name in ("path", "error")
        table.add_column(
            name,
            overflow="fold" if wraps else "ellipsis",
            no_wrap=not wraps,
            min_width=12 if wraps else None,
            justify="right" if name in ("size", "quality") else "left",
        )
    return table


def _add_table_row(table: Table, row: dict[str, Any], sig: FileSignals | None) -> None:
    pdq = _short(row["pdq"])
    quality = "" if row["quality"] is None else str(row["quality"])
    if sig is not None and sig.vpdq_frames is not None:
        pdq = f"vPDQ: {len(sig.vpdq_frames)} frames"
        qualities = [f.quality for f in sig.vpdq_frames]
        low, high = (min(qualities), max(qualities)) if qualities else (None, None)
        quality = "" if low is None else str(low) if low == high else f"{low}-{high}"
    table.add_row(
        row["path"],
        row["type"] or "",
        "" if row["size"] is None else f"{row['size']:,}",
        row["md5"] or "",
        _short(row["sha256"]),  # full values are in --json
        pdq,
        quality,
        f"[red]{escape(row['error'])}[/]" if row["error"] else "",
    )


def _short(value: str | None) -> str:
    return f"{value[:16]}…" if value else ""
