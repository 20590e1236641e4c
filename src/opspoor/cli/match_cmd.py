"""``opspoor match``: match hash values or files against hash sets, loading the index once."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from opspoor.cli.app import DbOption, app, err, out
from opspoor.errors import OpspoorError, SignalError
from opspoor.signals.engine import HashOptions, hash_path, robust_methods
from opspoor.triage.matching import Match, Matcher, Query

_HEX = re.compile(r"^[0-9a-fA-F]+$")


def query_for_value(text: str) -> Query:
    """A hash value: 32 hex MD5, 40 SHA-1; 64 hex is looked up both as SHA-256 and as PDQ."""
    v = text.strip().lower()
    if not _HEX.match(v) or len(v) not in (32, 40, 64):
        raise SignalError(f"not a file and not an MD5/SHA-1/SHA-256/PDQ hex value: {text[:80]!r}")
    if len(v) == 64:
        return Query(sha256=v, pdq=[(v, "pdq")])
    return Query(md5=v) if len(v) == 32 else Query(sha1=v)


def query_for_file(
    path: Path, robust: frozenset[str], local: bool = False
) -> tuple[Query | None, str | None]:
    try:
        sig = hash_path(path, HashOptions(robust=robust, local=local))
    except OpspoorError as exc:
        return None, f"{exc.reason}: {exc.message}"
    q = Query.from_file_signals(sig)
    error = f"{sig.error.reason}: {sig.error.message}" if sig.error else None
    return q, error


def _inputs(args: list[str], input_list: Path | None) -> Iterator[str]:
    yield from args
    if input_list is not None:
        with open(input_list, encoding="utf-8-sig") as fh:
            for line in fh:
                if line.strip() and not line.lstrip().startswith("#"):
                    yield line.strip()


def _match_json(m: Match) -> dict[str, Any]:
    d = m.to_json()
    d.pop("kind", None)
    return d


@app.command("match")
def match(
    inputs: Annotated[
        list[str] | None, typer.Argument(help="Hash values (MD5, SHA-1, SHA-256, PDQ) or files.")
    ] = None,
    hashset: Annotated[
        list[str] | None, typer.Option("--hashset", help="Hash set to match (repeatable).")
    ] = None,
    input_list: Annotated[
        Path | None, typer.Option("--input", help="A file with one hash value or file path per line.")
    ] = None,
    distance: Annotated[
        int | None,
        typer.Option("--distance", min=0, max=64, help="PDQ distance (default: each set's own, 31)."),
    ] = None,
    dihedral: Annotated[
        bool,
        typer.Option(
            "--dihedral/--no-dihedral", help="Also match rotated and flipped copies of image files."
        ),
    ] = True,
    robust: Annotated[
        bool,
        typer.Option(
            "--robust/--plain",
            help="Also match image files without their borders and pictures inside a larger canvas.",
        ),
    ] = True,
    low_quality: Annotated[
        bool,
        typer.Option(
            "--low-quality/--no-low-quality",
            help="Also weak region hashes (PDQ quality 10-49: a flat picture padded or in a "
            "screenshot; or a regular pattern such as stripes), matched only within 12 bits.",
        ),
    ] = True,
    local: Annotated[
        bool,
        typer.Option(
            "--local/--no-local",
            help="Also match image files by their local features, against sets that hold their "
            "originals' (hashset build --augment): finds crops that are not centred.",
        ),
    ] = True,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object per input.")] = False,
    workers: Annotated[int, typer.Option("--workers", help="Processes for hashing files.")] = 0,
    db: DbOption = None,
) -> None:
    """Match hash values or files against hash sets.

    Prints each input's matches: hash set, entry, category and distance. The index is loaded once.
    """
    from opspoor.store import open_store

    if not hashset:
        raise SignalError("name at least one --hashset")
    items = list(_inputs(inputs or [], input_list))
    if not items:
        raise SignalError("give hash values or files, or --input LIST")
    matcher = Matcher.from_store(open_store(db), hashset, distance, cache=True)
    queries: list[Query | None] = [None] * len(items)
    errors: list[str | None] = [None] * len(items)
    files = []
    for i, text in enumerate(items):
        p = Path(text)
        if p.is_file():
            files.append(i)
            continue
        try:
            queries[i] = query_for_value(text)
        except OpspoorError as exc:
            errors[i] = str(exc)
    # robust query hashes (signals.robust); --no-dihedral --plain gives plain PDQ
    mode = frozenset({"dihedral"} if dihedral else set()) | frozenset(
        {"borders", "embedded"} if robust else set()
    )
    mode = robust_methods(mode | {"low-quality"}, low_quality)
    local = local and matcher.has_local
    if files:
        n = workers or None
        with ProcessPoolExecutor(max_workers=n) as pool:
            paths = [Path(items[i]) for i in files]
            for i, (q, e) in zip(
                files,
                pool.map(query_for_file, paths, [mode] * len(paths), [local] * len(paths), chunksize=8),
                strict=True,
            ):
                queries[i], errors[i] = q, e
    live = [(i, q) for i, q in enumerate(queries) if q is not None]
    found = matcher.match_queries([q for _, q in live])
    results: dict[int, list[Match]] = {i: ms for (i, _), ms in zip(live, found, strict=True)}
    failed = False
    if json_out:
        for i, text in enumerate(items):
            rec: dict[str, Any] = {"input": text, "matches": [_match_json(m) for m in results.get(i, [])]}
            if errors[i]:
                rec["error"] = errors[i]
                failed = failed or queries[i] is None
            out.print(json.dumps(rec), markup=False, highlight=False, soft_wrap=True)
    else:
        table = Table(box=box.SIMPLE_HEAD)
        for col in ("input", "hashset", "entry", "external id", "category", "signal", "distance"):
            table.add_column(col)
        for i, text in enumerate(items):
            ms = results.get(i, [])
            if errors[i] and queries[i] is None:
                failed = True
                table.add_row(escape(text), f"[red]{escape(errors[i] or '')}[/]", "", "", "", "", "")
            elif not ms:
                table.add_row(escape(text), "[dim]no match[/]", "", "", "", "", "")
            for m in ms:
                cat = f"{m.category.scheme}:{m.category.code}" if m.category else ""
                sig = m.signal + (f" ({m.method})" if m.method else "")
                table.add_row(
                    escape(text),
                    m.hashset,
                    str(m.entry_id),
                    escape(m.external_id or ""),
                    cat,
                    sig,
                    str(m.distance),
                )
        out.print(table)
        matched = sum(1 for i in results if results[i])
        err.print(f"{matched} of {len(items)} inputs matched")
    if failed:
        raise typer.Exit(1)
