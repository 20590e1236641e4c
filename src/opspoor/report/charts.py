"""Small inline-SVG charts, so the report needs no script and opens offline."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

PALETTE = ("#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#ff9da6", "#9d755d")


def bar_chart(items: Sequence[tuple[str, int]], width: int = 420, bar_h: int = 20, title: str = "") -> str:
    """Horizontal bars, one per (label, value)."""
    if not items:
        return '<p class="muted">none</p>'
    label_w, pad = 150, 4
    top = max(v for _, v in items) or 1
    h = len(items) * (bar_h + pad) + pad
    rows = []
    for i, (label, value) in enumerate(items):
        y = pad + i * (bar_h + pad)
        w = max(1, int((width - label_w - 60) * value / top)) if value else 0
        rows.append(
            f'<text x="{label_w - 6}" y="{y + bar_h * 0.7:.0f}" text-anchor="end">{escape(label)}</text>'
            f'<rect x="{label_w}" y="{y}" width="{w}" height="{bar_h}" fill="{PALETTE[i % len(PALETTE)]}"/>'
            f'<text x="{label_w + w + 4}" y="{y + bar_h * 0.7:.0f}">{value}</text>'
        )
    return (
        f'<svg role="img" aria-label="{escape(title)}" width="{width}" height="{h}" '
        f'viewBox="0 0 {width} {h}" xmlns="http://www.w3.org/2000/svg" font-size="12">{"".join(rows)}</svg>'
    )


def timeline(counts: Sequence[tuple[str, int]], width: int = 640, height: int = 140) -> str:
    """Vertical bars per period (e.g. month ``2019-04``), in order."""
    if not counts:
        return '<p class="muted">no EXIF dates</p>'
    n = len(counts)
    top = max(v for _, v in counts) or 1
    bw = max(2.0, (width - 40) / n)
    bars = []
    for i, (label, value) in enumerate(counts):
        bh = (height - 30) * value / top
        x = 30 + i * bw
        bars.append(
            f'<rect x="{x:.1f}" y="{height - 20 - bh:.1f}" width="{max(1.0, bw - 1):.1f}" height="{bh:.1f}" '
            f'fill="#4c78a8"><title>{escape(label)}: {value}</title></rect>'
        )
    first, last = escape(counts[0][0]), escape(counts[-1][0])
    return (
        f'<svg role="img" aria-label="timeline of EXIF dates" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg" font-size="11">{"".join(bars)}'
        f'<text x="30" y="{height - 4}">{first}</text>'
        f'<text x="{width - 10}" y="{height - 4}" text-anchor="end">{last}</text>'
        f'<text x="2" y="12">{top}</text></svg>'
    )
