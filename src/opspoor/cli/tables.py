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

    def natural(i: int) -> int:
        return max([cell_len(columns[i].name)] + [cell_len(r[i]) for r in rows])

    def total(idx: list[int], widths: dict[int, int]) -> int:
        return sum(widths[i] for i in idx) + GAP * (len(idx) - 1)

    widths = {i: natural(i) for i in keep}
    if width is not None:
        for i in reversed(range(len(columns))):  # the rightmost optional column goes first
            if total(keep, widths) <= width:
                break
            if columns[i].optional:
                keep.remove(i)
        over = total(keep, widths) - width
        for i in keep:  # paths give up their middle, down to their header's width or 12 cells
            if over <= 0:
                break
            if columns[i].path:
                floor = max(cell_len(columns[i].name), 12)
                give = min(over, max(0, widths[i] - floor))
                widths[i] -= give
                over -= give
        for i in reversed(keep):  # then text columns give up their end
            if over <= 0:
                break
            if not columns[i].right and not columns[i].path:
                floor = max(cell_len(columns[i].name), 8)
                give = min(over, max(0, widths[i] - floor))
                widths[i] -= give
                over -= give
    cells = [
        [(middle_ellipsis if columns[i].path else end_ellipsis)(r[i], widths[i]) for i in keep] for r in rows
    ]
    return keep, cells


def print_table(columns: Sequence[Column], rows: Sequence[Sequence[str]], console: Console = out) -> None:
    """Rows of plain text (no markup) as a table that fits the terminal, or at natural width when piped."""
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
        return
    plain = Console(file=io.StringIO(), width=100_000, color_system=None, highlight=False)
    plain.print(table)
    text = plain.file.getvalue()  # type: ignore[attr-defined]
    console.print("\n".join(line.rstrip() for line in text.splitlines()), markup=False, highlight=False)
