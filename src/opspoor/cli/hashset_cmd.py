"""``opspoor hashset``: import, list, show, export, remove hash sets, and list their conflicts."""

from __future__ import annotations

import bisect
import json
import os
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Annotated, Any

import typer
from rich.markup import escape
from rich.progress import Progress, ProgressColumn, SpinnerColumn, Task, TextColumn, TimeElapsedColumn
from rich.text import Text

from opspoor.cli.app import DbOption, app, err, out
from opspoor.cli.options import CommandLineError, check_output_file, store_label
from opspoor.cli.tables import Column, print_table
from opspoor.errors import FormatError, OpspoorError, StoreError
from opspoor.hashsets.formats import FORMATS, HEAD_SIZE, detect_format, read_entries, write_entries
from opspoor.hashsets.model import KINDS, CategoryMap, Entry
from opspoor.store import (
    ImportResult,
    Store,
    entry_counts,
    get_hashset,
    hashset_counts,
    import_entries,
    iter_entries,
    list_conflicts,
    list_hashsets,
    open_store,
    remove_hashset,
)

hashset_app = typer.Typer(
    help="Hash sets: import, build, list, show, export, remove, conflicts.", no_args_is_help=True
)
app.add_typer(hashset_app, name="hashset")

#: what --format takes, from the formats' registry (a new format appears here by itself)
IMPORT_FORMATS = ("auto", *sorted(FORMATS))
EXPORT_FORMATS = tuple(sorted(name for name, f in FORMATS.items() if f.writer is not None))

NoIndexCacheOption = Annotated[
    bool,
    typer.Option(
        "--no-index-cache",
        help="Do not build the set's match index now (the next scan or match builds it from the store).",
    ),
]


class _RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} entries/s" if speed else "", style="progress.data.speed")


class _Rejects:
    """The rejects file, opened on the first skipped record: one JSON object per record.

    The store numbers the entries it was given; ``track`` remembers where the reader skipped
    records, so a record the store refuses is reported under its number in the file.
    """

    def __init__(self, path: Path, source_file: Path) -> None:
        self.path = path
        self.source_file = str(source_file)
        self.count = 0
        self._f: IO[str] | None = None
        self._yielded = 0
        self._shifts: list[tuple[int, int]] = [(0, 0)]  # (first entry position, records skipped before it)

    def track(self, entries: Iterable[Entry]) -> Iterator[Entry]:
        for e in entries:
            self._yielded += 1
            yield e

    def add(self, stage: str, reason: str, record: int | None, line: int | None, entry: Entry | None) -> None:
        if self._f is None:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            self._f = os.fdopen(fd, "w", encoding="utf-8")
        row: dict[str, Any] = {"file": self.source_file, "record": record, "line": line, "stage": stage}
        row["reason"] = reason
        if entry is not None:
            row["signals"] = entry.signals
            row["external_id"] = entry.external_id
        self._f.write(json.dumps(row, ensure_ascii=False) + "\n")
        self.count += 1

    def from_reader(self, exc: FormatError) -> None:
        self._shifts.append((self._yielded + 1, self._shifts[-1][1] + 1))
        self.add("read", exc.detail, exc.record, exc.line, None)

    def from_store(self, position: int, entry: Entry, reason: str) -> None:
        skipped = self._shifts[bisect.bisect_right(self._shifts, (position, float("inf"))) - 1][1]
        self.add("store", reason, position + skipped, None, entry)

    def close(self) -> None:
        if self._f is not None:
            self._f.close()


@contextmanager
def _progress(label: str) -> Iterator[Any]:
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TextColumn("{task.completed:,} entries"),
        _RateColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=False,
        refresh_per_second=4,
        disable=not err.is_terminal,  # piped or redirected: the summary line says it all
    ) as progress:
        task = progress.add_task(label, total=None)
        yield lambda n: progress.update(task, completed=n)


@hashset_app.command("import")
def import_cmd(
    file: Annotated[
        Path,
        typer.Argument(
            help="Hash-set file (VICS, ICSE, CSV, plain list, HMA/ThreatExchange, vPDQ, NCMEC XML, "
            "md5sum/hashdeep, NSRL, EnCase; docs/formats.md).",
            metavar="FILE",
        ),
    ],
    name: Annotated[
        str,
        typer.Option("--name", "-n", metavar="NAME", help="Hash set to import into (created if missing)."),
    ],
    kind: Annotated[
        str, typer.Option("--kind", metavar="[" + "|".join(KINDS) + "]", help="What the set holds.")
    ] = "known",
    format: Annotated[
        str,
        typer.Option(
            "--format",
            "-f",
            metavar="FORMAT",
            help=f"{', '.join(IMPORT_FORMATS)} (auto: told from the content).",
        ),
    ] = "auto",
    hash_type: Annotated[
        str | None,
        typer.Option("--type", metavar="[pdq|sha256]", help="What 64-hex values are in plain lists."),
    ] = None,
    skip_invalid: Annotated[
        bool,
        typer.Option("--skip-invalid", help="Import the valid records; list the others in the rejects file."),
    ] = False,
    rejects: Annotated[
        Path | None,
        typer.Option(
            "--rejects",
            metavar="FILE",
            show_default=False,
            help="Rejects file for --skip-invalid (default: ./FILE.rejects.jsonl).",
        ),
    ] = None,
    source: Annotated[
        str | None, typer.Option("--source", metavar="TEXT", help="Who categorised these entries.")
    ] = None,
    category_map: Annotated[
        list[str] | None,
        typer.Option(
            "--category-map",
            metavar="CODE=SCHEME:CODE",
            help="Translate a category code at import, CODE=SCHEME:CODE (e.g. 8=us-cat:5, or "
            "us-cat:8=us-cat:5); repeatable.",
        ),
    ] = None,
    no_index_cache: NoIndexCacheOption = False,
    db: DbOption = None,
) -> None:
    """Import a hash-set file. All or nothing: the first invalid record aborts the import unless
    --skip-invalid is given. Then the set's match index is built and cached for scan and match.

    Uncategorised entries (category 0: nobody has looked at them) are not imported into a set of
    known material; the summary counts them, and category codes the scheme does not define."""
    if kind not in KINDS:
        raise StoreError(f"--kind must be one of {', '.join(KINDS)}, not {kind!r}")
    if file.is_dir():
        raise FormatError("a folder, not a hash-set file", where=str(file))
    if not file.is_file():
        raise FormatError("no such file" if not file.exists() else "not a regular file", where=str(file))
    if format.lower() not in IMPORT_FORMATS:
        raise CommandLineError(f"--format must be one of {', '.join(IMPORT_FORMATS)}, not {format!r}")
    _hint_for_nsrl(file, format, kind)
    mapping = CategoryMap.parse(category_map or ())
    rej = _Rejects(rejects or Path.cwd() / f"{file.name}.rejects.jsonl", file) if skip_invalid else None
    store = open_store(db)
    try:
        entries: Iterable[Entry] = read_entries(
            file, format, hash_type=hash_type, on_error=rej.from_reader if rej else None, source=source
        )
        if rej is not None:
            entries = rej.track(entries)
        with _progress(f"importing {file.name}") as progress:
            result = import_entries(
                store,
                name,
                entries,
                kind=kind,
                source=source,
                progress=progress,
                on_reject=rej.from_store if rej else None,
                category_map=mapping,
            )
        out.print(
            f"{import_summary(name, result, rejected=rej.count if rej else 0)} (in {store_label(store)})",
            markup=False,
            highlight=False,
        )
        if rej is not None and rej.count:
            out.print(f"rejected records are listed in {rej.path}")
        if not no_index_cache:
            cache_match_index(store, name)
    except FormatError as exc:
        if exc.where is None:
            exc.where = str(file)
        raise
    finally:
        store.close()
        if rej is not None:
            rej.close()


def _hint_for_nsrl(file: Path, format: str, kind: str) -> None:
    """NSRL lists known software: imported as ``known`` they would flag every Windows DLL."""
    if kind != "known":
        return
    if format == "auto":
        with file.open("rb") as f:
            try:
                format = detect_format(f.read(HEAD_SIZE), str(file))
            except FormatError:
                return  # the import itself says what is wrong
    if format in ("nsrl", "nsrl-rds3"):
        err.print(
            f"note: {escape(file.name)} is a NIST NSRL list of known software files; "
            "such lists are usually imported with --kind ignorable"
        )


def import_summary(name: str, result: ImportResult, *, rejected: int, added: str = "entries added") -> str:
    """The one line an import ends with: entries, duplicates and what decided them, conflicts,
    rejects, unknown category codes, and uncategorised entries left out of a known set."""
    dup = f"{result.duplicates:,} duplicates"
    if result.duplicates_by:
        dup += " (" + ", ".join(f"same {sig} {n:,}" for sig, n in sorted(result.duplicates_by.items())) + ")"
    parts = [
        f"{name}: {result.added:,} {added}",
        dup,
        f"{result.conflicts:,} conflicts",
        f"{rejected:,} rejected",
    ]
    if result.unknown_categories:
        n = sum(result.unknown_categories.values())
        codes = ", ".join(f"{c} {k:,}" for c, k in sorted(result.unknown_categories.items()))
        parts.append(
            f"{n:,} with a category code their scheme does not define ({codes}): "
            "they make no file known until mapped with --category-map"
        )
    if result.uncategorised:
        parts.append(f"{result.uncategorised:,} uncategorised (category 0) not imported: not known material")
    return ", ".join(parts)


#: what the match index counts, as the summary line names it
#: how the index sizes are named to people (a plugin signal goes by its registry name)
_INDEXED = {
    "md5": "MD5",
    "sha1": "SHA-1",
    "sha256": "SHA-256",
    "pdq": "PDQ",
    "vpdq_frames": "video frames",
    "local": "pictures with local features",
}


def cache_match_index(store: Store, name: str) -> None:
    """Build the set's match index into the index cache right after the set changed, so the next
    scan or match maps it instead of reading the whole set from the store. The import is done by
    now: a failure here only warns (the next scan builds the index itself)."""
    from opspoor.matching import build_index_cache

    t = time.perf_counter()
    try:
        with err.status(f"building the match index of {escape(name)}"):
            sizes = build_index_cache(store, name).sizes()
    except (OpspoorError, OSError) as exc:
        err.print(f"{escape(name)}: match index not cached ({escape(str(exc))}); the next scan builds it")
        return
    counts = ", ".join(f"{n:,} {_INDEXED.get(sig, sig)}" for sig, n in sizes.items() if n)
    err.print(f"{escape(name)}: match index cached in {time.perf_counter() - t:.1f} s ({counts or 'empty'})")


@hashset_app.command("list")
def list_cmd(
    json_out: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False,
    db: DbOption = None,
) -> None:
    """List the hash sets with their kind and entry count."""
    with open_store(db, create=False) as store:
        sets = list_hashsets(store)
        counts = entry_counts(store)
        where = store_label(store)
    rows: list[dict[str, Any]] = [
        {
            "name": s.name,
            "kind": s.kind,
            "entries": counts.get(s.name, 0),
            "distance": s.distance,
            "source": s.source,
            "created_at": s.created_at.isoformat(),
        }
        for s in sets
    ]
    if json_out:
        out.print_json(json.dumps(rows))
        return
    if not rows:
        out.print(f"no hash sets in {where}", markup=False)
        return
    columns = (
        Column("name"),
        Column("kind"),
        Column("entries", right=True),
        Column("distance", right=True),
        Column("source"),
        Column("created", optional=True),
    )
    print_table(
        columns,
        [
            [
                r["name"],
                r["kind"],
                f"{r['entries']:,}",
                str(r["distance"]),
                r["source"] or "",
                r["created_at"][:19],
            ]
            for r in rows
        ],
    )
    err.print(f"{len(rows)} hash sets in {where}", markup=False)


@hashset_app.command("show")
def show_cmd(
    name: Annotated[str, typer.Argument(help="Hash set name.")],
    json_out: Annotated[bool, typer.Option("--json", help="JSON instead of text.")] = False,
    db: DbOption = None,
) -> None:
    """Counts of a hash set by signal type and by category."""
    with open_store(db, create=False) as store:
        hs = get_hashset(store, name)
        counts = hashset_counts(store, name)
        where = store_label(store)
    doc = {
        "name": hs.name,
        "kind": hs.kind,
        "source": hs.source,
        "distance": hs.distance,
        "created_at": hs.created_at.isoformat(),
        "entries": counts.entries,
        "signals": counts.signals,
        "categories": counts.categories,
        "conflicts": counts.conflicts,
    }
    if json_out:
        out.print_json(json.dumps(doc))
        return
    out.print(
        f"{hs.name} ({hs.kind}, PDQ distance {hs.distance}): {counts.entries:,} entries, in {where}",
        markup=False,
    )
    if hs.source:
        out.print(f"source: {escape(hs.source)}")
    print_table(
        (Column("signal"), Column("entries", right=True)), [[k, f"{n:,}"] for k, n in counts.signals.items()]
    )
    print_table(
        (Column("category"), Column("entries", right=True)),
        [[k, f"{n:,}"] for k, n in counts.categories.items()],
    )
    out.print(f"conflicts: {counts.conflicts:,}")


@hashset_app.command("export")
def export_cmd(
    name: Annotated[str, typer.Argument(help="Hash set name.")],
    format: Annotated[
        str, typer.Option("--format", "-f", metavar="FORMAT", help=", ".join(EXPORT_FORMATS) + ".")
    ] = "vics2",
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", metavar="FILE", show_default=False, help="Output file (default: stdout)."
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite the output file if it exists.")] = False,
    db: DbOption = None,
) -> None:
    """Write a hash set in an exchange format, streamed."""
    if format.lower() not in EXPORT_FORMATS:
        raise CommandLineError(f"--format must be one of {', '.join(EXPORT_FORMATS)}, not {format!r}")
    if output is not None:
        check_output_file(output, force)
    with open_store(db, create=False) as store:
        get_hashset(store, name)  # NotFound before any output is written
        where = store_label(store)
        entries = iter_entries(store, name)
        if output is None:
            n = write_entries(entries, sys.stdout.buffer, format, name=name)
            sys.stdout.buffer.flush()
        else:
            try:
                n = write_entries(entries, output, format, name=name)
            except OSError as exc:
                raise CommandLineError(f"cannot write: {exc.strerror or exc}", str(output)) from None
    shown = f" to {output}" if output else ""
    err.print(f"exported {n:,} entries of {name} (in {where}) as {format}{shown}", markup=False)


@hashset_app.command("remove")
def remove_cmd(
    name: Annotated[str, typer.Argument(help="Hash set name.", metavar="NAME")],
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Do not ask (for scripts; needed when not on a terminal).")
    ] = False,
    db: DbOption = None,
) -> None:
    """Remove a hash set and all its entries (and its cached match index). Asks first."""
    from opspoor.matching import drop_index_cache

    with open_store(db, create=False) as store:
        rec = get_hashset(store, name)
        where = store_label(store)
        if not yes:
            entries = entry_counts(store).get(name, 0)
            what = f"{name} ({entries:,} entries) from {where}"
            if not sys.stdin.isatty():
                raise CommandLineError(f"not on a terminal: add --yes to remove {what}")
            if not typer.confirm(f"remove {what}?", default=False):
                err.print("nothing removed")
                raise typer.Exit(1)
        n = remove_hashset(store, name)
        drop_index_cache(store, rec)
    out.print(f"removed {name} ({n:,} entries) from {where}", markup=False)


@hashset_app.command("conflicts")
def conflicts_cmd(
    name: Annotated[str, typer.Argument(help="Hash set name.")],
    json_out: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False,
    db: DbOption = None,
) -> None:
    """Entries that share a hash but disagree on the category."""
    with open_store(db, create=False) as store:
        conflicts = list_conflicts(store, name)
        where = store_label(store)
    rows: list[dict[str, Any]] = [
        {
            "signal": c.signal,
            "value": c.value,
            "entry": {
                "entry_id": c.entry.entry_id,
                "external_id": c.entry.external_id,
                "category": _cat(c.entry),
            },
            "other": {
                "entry_id": c.other.entry_id,
                "external_id": c.other.external_id,
                "category": _cat(c.other),
            },
            "recorded_at": c.recorded_at.isoformat(),
        }
        for c in conflicts
    ]
    if json_out:
        out.print_json(json.dumps(rows))
        return
    if not rows:
        out.print(f"{name} (in {where}): no conflicts", markup=False)
        return
    columns = (
        Column("signal"),
        Column("value", path=True),  # a hash: its two ends identify it when the terminal is narrow
        Column("entry"),
        Column("category"),
        Column("other entry"),
        Column("other category"),
    )
    print_table(
        columns,
        [
            [
                r["signal"],
                r["value"],
                _entry_label(r["entry"]),
                r["entry"]["category"] or "none",
                _entry_label(r["other"]),
                r["other"]["category"] or "none",
            ]
            for r in rows
        ],
    )
    out.print(f"{len(rows):,} conflicts in {name} (in {where})", markup=False)


def _cat(ref: Any) -> str | None:
    return None if ref.category is None else str(ref.category)


def _entry_label(e: dict[str, Any]) -> str:
    ext = e["external_id"]
    return f"#{e['entry_id']}" + (f" ({ext})" if ext else "")
