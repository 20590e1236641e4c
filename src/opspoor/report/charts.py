"""Small inline-SVG charts, so the report opens offline and prints as it shows."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

#: file statuses: "new" is the one to look at (orange), never green; errors red
STATUS_COLOURS = {
    "known": "#5e3c99",
    "ignorable": "#9e9e9e",
    "new": "#e66101",
    "other": "#4c78a8",
    "error": "#c62828",
}
#: categories have colours of their own (browns for illegal material, teals for the rest), so a
#: category bar is never read as a status
CATEGORY_COLOURS = {
    "us-cat:1": "#7f2704",
    "us-cat:2": "#b35806",
    "us-cat:3": "#dfa34a",
    "us-cat:4": "#01665e",
    "us-cat:5": "#80cdc1",
    "us-cat:0": "#c7c7b8",
    "uk:A": "#7f2704",
    "uk:B": "#b35806",
    "uk:C": "#dfa34a",
    "ncmec:A1": "#7f2704",
    "ncmec:A2": "#a6411a",
    "ncmec:B1": "#b35806",
    "ncmec:B2": "#dfa34a",
    "inhope:baseline": "#7f2704",
    "inhope:national": "#b35806",
    "inhope:not-illegal": "#01665e",
}
NEUTRAL = "#6b7c93"
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
#: a timeline longer than this many months is drawn by year
MAX_MONTH_BARS = 72


def bar_chart(
    items: Sequence[tuple[str, int]],
    width: int = 440,
    bar_h: int = 18,
    title: str = "",
    colours: Sequence[str] | None = None,
    label_w: int = 150,
) -> str:
    """Horizontal bars, one per (label, value); ``colours[i]`` colours bar ``i``."""
    if not items:
        return '<p class="muted">none</p>'
    pad = 5
    top = max(v for _, v in items) or 1
    h = len(items) * (bar_h + pad) + pad
    rows = []
    for i, (label, value) in enumerate(items):
        y = pad + i * (bar_h + pad)
        w = max(1, int((width - label_w - 50) * value / top)) if value else 0
        colour = colours[i] if colours else NEUTRAL
        rows.append(
            f'<text x="{label_w - 6}" y="{y + bar_h * 0.72:.0f}" text-anchor="end">{escape(label)}</text>'
            f'<rect x="{label_w}" y="{y}" width="{w}" height="{bar_h}" fill="{colour}">'
            f"<title>{escape(label)}: {value}</title></rect>"
            f'<text x="{label_w + w + 4}" y="{y + bar_h * 0.72:.0f}">{value}</text>'
        )
    return (
        f'<svg role="img" aria-label="{escape(title)}" width="{width}" height="{h}" '
        f'viewBox="0 0 {width} {h}" xmlns="http://www.w3.org/2000/svg" font-size="12">{"".join(rows)}</svg>'
    )


def _month_range(first: str, last: str) -> list[str]:
    y, m = int(first[:4]), int(first[5:7])
    ly, lm = int(last[:4]), int(last[5:7])
    out = []
    while (y, m) <= (ly, lm):
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def _valid_month(label: str) -> bool:
    return len(label) == 7 and label[4] == "-" and label[:4].isdigit() and label[5:].isdigit()


def timeline_series(counts: Sequence[tuple[str, int]]) -> tuple[list[tuple[str, int]], str]:
    """Every month from the first to the last (empty months as 0, so gaps show), or every year
    when that would be more than ``MAX_MONTH_BARS`` bars. Returns the series and its unit."""
    by_month: dict[str, int] = {}
    for label, n in counts:
        if _valid_month(label) and 1 <= int(label[5:]) <= 12:
            by_month[label] = by_month.get(label, 0) + n
    if not by_month:
        return [], "month"
    months = _month_range(min(by_month), max(by_month))
    if len(months) <= MAX_MONTH_BARS:
        return [(m, by_month.get(m, 0)) for m in months], "month"
    by_year: dict[str, int] = {}
    for m, n in by_month.items():
        by_year[m[:4]] = by_year.get(m[:4], 0) + n
    years = range(int(min(by_year)), int(max(by_year)) + 1)
    return [(str(y), by_year.get(str(y), 0)) for y in years], "year"


def _tick_label(label: str, unit: str) -> str:
    if unit == "year":
        return label
    return f"{_MONTHS[int(label[5:]) - 1]} {label[:4]}"


def timeline(counts: Sequence[tuple[str, int]], width: int = 660, height: int = 170) -> str:
    """Bars per month (or year) from the first date to the last, with labelled periods and a
    count scale."""
    series, unit = timeline_series(counts)
    if not series:
        return '<p class="muted">no EXIF dates</p>'
    left, right, top_pad, bottom = 36, 8, 10, 34
    plot_w, plot_h = width - left - right, height - top_pad - bottom
    n = len(series)
    top = max(v for _, v in series) or 1
    bw = plot_w / n
    parts = []
    for frac in (0.5, 1.0):  # a light scale: half and full
        y = top_pad + plot_h * (1 - frac)
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>'
            f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end">{round(top * frac)}</text>'
        )
    base = top_pad + plot_h
    parts.append(f'<line x1="{left}" x2="{width - right}" y1="{base}" y2="{base}" stroke="#888"/>')
    # at most ~10 labels, on round steps (every 1, 2, 3, 6 or 12 months; or years)
    step = 1
    for s in (1, 2, 3, 6, 12, 24, 60, 120):
        step = s
        if n / s <= 10:
            break
    for i, (label, value) in enumerate(series):
        x = left + i * bw
        bh = plot_h * value / top
        if value:
            parts.append(
                f'<rect x="{x + 0.5:.1f}" y="{base - max(bh, 1.5):.1f}" width="{max(1.0, bw - 1):.1f}" '
                f'height="{max(bh, 1.5):.1f}" fill="{NEUTRAL}"><title>{escape(label)}: {value}</title></rect>'
            )
        if i % step == 0:
            cx = x + bw / 2
            parts.append(
                f'<line x1="{cx:.1f}" x2="{cx:.1f}" y1="{base}" y2="{base + 4}" stroke="#888"/>'
                f'<text x="{cx:.1f}" y="{base + 16}" text-anchor="middle">'
                f"{escape(_tick_label(label, unit))}</text>"
            )
    total = sum(v for _, v in series)
    parts.append(
        f'<text x="{width - right}" y="{height - 3}" text-anchor="end" fill="#666">'
        f"{total} dated files, by {unit}</text>"
    )
    return (
        f'<svg role="img" aria-label="timeline of EXIF dates by {unit}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg" font-size="11">'
        f"{''.join(parts)}</svg>"
    )
