"""Tables on the terminal: they fit its width (80 columns at least) without cutting what matters.

Columns that only repeat what ``--json`` holds in full (hashes) are left out first when the table is
too wide; then paths lose characters from their middle, so the file name stays; then the last
text column is cut at its end, so an error stays on one line. Piped output has no width to fit:
it gets the table's natural width, one row per line, for grep and awk.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from opspoor.cli.app import out

#: spaces between two columns of a SIMPLE_HEAD table without edge padding
GAP = 3
ELLIPSIS = "…"


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    right: bool = False  # numbers
    path: bool = False  # shortened in the middle, keeping the file name
    optional: bool = False  # left out when the table does not fit (a value --json holds in full)
    style: str | None = None  # rich style of every cell (e.g. "red" for an error column)
    #: a cell cut to fit is printed whole after the table, one line each (errors)
    detail: bool = False


def middle_ellipsis(text: str, width: int) -> str:
    """``text`` in at most ``width`` cells, characters cut from the middle: the end (a path's file
    name) is kept whole when it fits."""
    if cell_len(text) <= width:
        return text
    if width <= 1:
        return ELLIPSIS[:width]
    tail_room = width - 1
    name = text.rsplit("/", 1)[-1]
    tail = max(min(len(name) + 1, tail_room), tail_room // 2)
    head = tail_room - tail
    return f"{text[:head]}{ELLIPSIS}{text[len(text) - tail :]}"


def end_ellipsis(text: str, width: int) -> str:
    if cell_len(text) <= width:
        return text
    return text[: max(0, width - 1)] + ELLIPSIS


def fit(
    columns: Sequence[Column], rows: Sequence[Sequence[str]], width: int | None
) -> tuple[list[int], list[list[str]]]:
    """The columns kept (their indexes) and the rows' cells shortened to fit ``width`` cells
    (``None``: natural width)."""
    keep = list(range(len(columns)))
    widths = {i: max([cell_len(columns[i].name)] + [cell_len(r[i]) for r in rows]) for i in keep}

    def over() -> int:
        return sum(widths[i] for i in keep) + GAP * (len(keep) - 1) - (width or 0)

    def shrink(i: int, floor: int) -> None:
        widths[i] -= max(0, min(over(), widths[i] - max(floor, cell_len(columns[i].name))))

    if width is not None:
        for i in reversed(range(len(columns))):  # the rightmost optional column goes first
            if over() > 0 and columns[i].optional:
                keep.remove(i)
        texts = [i for i in keep if not columns[i].right and not columns[i].path]
        paths = [i for i in keep if columns[i].path]
        for i in reversed(texts):  # long texts give up their end first (--json has them whole)
            shrink(i, 16)
        for i in paths:  # then paths their middle, down to "…/" and the longest file name
            names = [cell_len(r[i].rsplit("/", 1)[-1]) + 2 for r in rows]
            shrink(i, min(widths[i], max(names, default=0)))
        for i in paths:
            shrink(i, 12)
        for i in reversed(texts):
            shrink(i, 8)
    cells = [
        [(middle_ellipsis if columns[i].path else end_ellipsis)(r[i], widths[i]) for i in keep] for r in rows
    ]
    return keep, cells


def print_table(columns: Sequence[Column], rows: Sequence[Sequence[str]], console: Console = out) -> None:
    """Rows of plain text (no markup) as a table that fits the terminal, or at natural width when
    piped. Cut cells of a ``detail`` column follow the table whole, one line each, after the
    row's first cell."""
    width = max(console.width, 80) if console.is_terminal else None
    keep, cells = fit(columns, rows, width)
    table = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False, show_edge=False)
    for i in keep:
        c = columns[i]
        table.add_column(c.name, justify="right" if c.right else "left", no_wrap=True, style=c.style)
    for r in cells:
        table.add_row(*(escape(v) for v in r))
    if console.is_terminal:
        console.print(table)
        for row, cut in zip(rows, cells, strict=True):
            for k, i in enumerate(keep):
                if columns[i].detail and cut[k] != row[i]:
                    console.print(f"{row[0]}: {row[i]}", markup=False, style=columns[i].style, soft_wrap=True)
        return
    plain = Console(file=io.StringIO(), width=100_000, color_system=None, highlight=False)
    plain.print(table)
    text = plain.file.getvalue()  # type: ignore[attr-defined]
    console.print("\n".join(line.rstrip() for line in text.splitlines()), markup=False, highlight=False)
