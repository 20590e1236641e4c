"""``opspoor match``: match hash values or files against hash sets, loading the index once."""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Annotated, Any

import typer

from opspoor.cli.app import DbOption, app, err, out
from opspoor.cli.options import (
    DistanceOption,
    LocalOption,
    LowQualityOption,
    Robust,
    RobustOption,
    WorkersOption,
    robust_query_methods,
    store_label,
)
from opspoor.cli.tables import Column, print_table
from opspoor.errors import OpspoorError, SignalError, SourceError
from opspoor.matching import Match, Matcher, Query, value_query, value_widths
from opspoor.signals import SIGNALS
from opspoor.signals.engine import HashOptions, hash_path


def query_for_value(text: str) -> Query:
    """A hash value, typed (``md5:…``, ``photodna:…``, a plugin's ``name:…``) or known by what it
    is: every signal of the registry that can be matched by value (``matching.value_widths``) and
    whose own validation takes it. So 32 hex is MD5, 40 SHA-1, 64 hex is looked up both as SHA-256
    and as PDQ, and a PhotoDNA is taken as hex, base64 or comma-separated decimal bytes."""
    widths = value_widths()
    typed, colon, rest = text.partition(":")
    if colon and typed.strip().lower() in widths:
        sig = typed.strip().lower()
        try:
            found = {sig: SIGNALS[sig].validate(rest)}
        except SignalError as exc:
            raise SignalError(f"{exc.message}: {text[:80]!r}") from None
    else:
        found = {}
        for sig in widths:
            try:
                found[sig] = SIGNALS[sig].validate(text)
            except SignalError:
                continue
    if not found:
        known = ", ".join(f"{sig} {n}" for sig, n in widths.items())
        raise SignalError(f"not a file and not a hash value (hex characters: {known}): {text[:80]!r}")
    q = Query()
    for sig, v in found.items():
        one = value_query(sig, v)
        q.exact.update(one.exact)
        q.pdq.extend(one.pdq)
    return q


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


def input_kind(text: str) -> str | None:
    """``"file"`` for a regular file to hash, ``None`` for text to read as a hash value; anything
    else on disk (a folder, a FIFO, a device, a broken symlink) raises ``SourceError`` saying what
    it is, and is never opened."""
    try:
        mode = os.stat(text).st_mode
    except FileNotFoundError:
        if os.path.islink(text):
            raise SourceError("broken symlink", text) from None
        return None
    except OSError as exc:
        if len(text) > 255 or exc.errno in (36,):  # a long value is not a name either
            return None
        raise SourceError(f"cannot read: {exc.strerror or exc}", text) from None
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        raise SourceError("a folder: give the files in it, or scan it", text)
    raise SourceError("not a regular file (a FIFO, socket or device); not read", text)


def open_input_list(path: Path) -> Iterator[str]:
    """The lines of ``--input``: ``-`` is stdin; anything but a regular file is refused, so a FIFO
    without a writer or a device never hangs the command."""
    if str(path) == "-":
        yield from _lines(sys.stdin)
        return
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise SourceError("--input: no such file", str(path)) from None
    except OSError as exc:
        raise SourceError(f"--input: cannot read: {exc.strerror or exc}", str(path)) from None
    if stat.S_ISDIR(mode):
        raise SourceError("--input: a folder, not a list file (one hash value or file per line)", str(path))
    if not stat.S_ISREG(mode):
        raise SourceError("--input: not a regular file; pipe the list in with --input - instead", str(path))
    try:
        with open(path, encoding="utf-8-sig") as fh:
            yield from _lines(fh)
    except UnicodeDecodeError as exc:
        raise SourceError(f"--input: not UTF-8 text (byte {exc.start})", str(path)) from None
    except OSError as exc:
        raise SourceError(f"--input: cannot read: {exc.strerror or exc}", str(path)) from None


def _lines(fh: Any) -> Iterator[str]:
    for line in fh:
        if line.strip() and not line.lstrip().startswith("#"):
            yield line.strip()


def _match_json(m: Match) -> dict[str, Any]:
    d = m.to_json()
    d.pop("kind", None)
    return d


def evidence_text(m: Match) -> str:
    """What decided a match, in words: exact hashes are exact, PDQ counts differing bits, local
    features count the patches that agree on one geometry, videos the frames they share."""
    if m.inliers is not None:
        return f"{m.inliers} inliers"
    signal = SIGNALS.get(m.signal)
    if signal is not None and signal.index == "exact":
        return "exact"
    if m.signal == "vpdq":
        return f"{100 - m.distance} % frames"
    return f"distance {m.distance}"


COLUMNS = (
    Column("input", path=True),
    Column("hashset"),
    Column("entry", right=True),
    Column("external id", optional=True),
    Column("category"),
    Column("signal"),
    Column("evidence"),
)


@app.command("match")
def match(
    inputs: Annotated[
        list[str] | None,
        typer.Argument(
            help="Hash values (MD5, SHA-1, SHA-256, PDQ; TYPE:VALUE names the type), image or video files.",
            metavar="INPUT",
        ),
    ] = None,
    hashset: Annotated[
        list[str] | None, typer.Option("--hashset", metavar="NAME", help="Hash set to match (repeatable).")
    ] = None,
    input_list: Annotated[
        Path | None,
        typer.Option(
            "--input", metavar="FILE", help="A file with one hash value or file path per line; - for stdin."
        ),
    ] = None,
    distance: DistanceOption = None,
    robust: RobustOption = Robust.fast,
    low_quality: LowQualityOption = True,
    local: LocalOption = True,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object per input.")] = False,
    workers: WorkersOption = 0,
    db: DbOption = None,
) -> None:
    """Match hash values or files against hash sets.

    Prints each input's matches: hash set, entry, category, and what decided the match (the PDQ
    distance, or the inliers of a local-feature match). The index is loaded once.
    """
    from opspoor.store import open_store

    if not hashset:
        raise SignalError("name at least one --hashset")
    items = list(inputs or [])
    if input_list is not None:
        items += open_input_list(input_list)
    if not items:
        raise SignalError("give hash values or files, or --input FILE")
    store = open_store(db, create=False)
    where = store_label(store)
    matcher = Matcher.from_store(store, hashset, distance, cache=True)
    queries: list[Query | None] = [None] * len(items)
    errors: list[str | None] = [None] * len(items)
    files = []
    for i, text in enumerate(items):
        try:
            if input_kind(text) == "file":
                files.append(i)
            else:
                queries[i] = query_for_value(text)
        except SourceError as exc:
            errors[i] = f"{exc.reason}: {exc.message}"
        except OpspoorError as exc:
            errors[i] = str(exc)
    mode = robust_query_methods(robust, low_quality)
    local = local and matcher.has_local
    if files:
        with ProcessPoolExecutor(max_workers=workers or None) as pool:
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
    failed = any(errors[i] and queries[i] is None for i in range(len(items)))
    if json_out:
        for i, text in enumerate(items):
            rec: dict[str, Any] = {"input": text, "matches": [_match_json(m) for m in results.get(i, [])]}
            if errors[i]:
                rec["error"] = errors[i]
            out.print(json.dumps(rec), markup=False, highlight=False, soft_wrap=True)
    else:
        rows: list[list[str]] = []
        for i, text in enumerate(items):
            ms = results.get(i, [])
            if errors[i] and queries[i] is None:
                rows.append([text, "error", "", "", "", "", ""])
            elif not ms:
                rows.append([text, "no match", "", "", "", "", ""])
            for m in ms:
                cat = f"{m.category.scheme}:{m.category.code}" if m.category else ""
                sig = m.signal + (f" ({m.method})" if m.method and m.method != m.signal else "")
                rows.append(
                    [text, m.hashset, str(m.entry_id), m.external_id or "", cat, sig, evidence_text(m)]
                )
        print_table(COLUMNS, rows)
        for i, text in enumerate(items):
            if errors[i]:
                err.print(f"{text}: {errors[i]}", markup=False)
    matched = sum(1 for i in results if results[i])
    err.print(f"{matched} of {len(items)} inputs matched ({', '.join(hashset)} in {where})", markup=False)
    if failed:
        raise typer.Exit(1)
