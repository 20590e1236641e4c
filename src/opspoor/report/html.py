"""The self-contained HTML case report (opens offline: inline CSS and SVG, thumbnails as data URIs)."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from opspoor import __version__
from opspoor.report.charts import bar_chart, timeline

#: members listed per group, and errors listed, before "... and N more"
MAX_PATHS = 200
MAX_THUMBS = 12
MAX_ERRORS = 2000


@dataclass(slots=True)
class GroupView:
    id: str
    rank: int
    size: int
    paths: list[str]
    thumbs: list[bytes] = field(default_factory=list)  # already blurred + grayscale (media.thumbs)
    cameras: list[str] = field(default_factory=list)
    serials: list[str] = field(default_factory=list)
    gps: list[tuple[float, float]] = field(default_factory=list)
    date_first: str | None = None
    date_last: str | None = None
    types: list[tuple[str, int]] = field(default_factory=list)


@dataclass(slots=True)
class ReportData:
    case_name: str
    summary: dict[str, Any]
    groups: Sequence[GroupView]
    errors: Sequence[tuple[str, str]]  # (path, reason)
    exif_months: Sequence[tuple[str, int]]
    known_by_hashset: Sequence[tuple[str, int]]
    thumbnails: bool = True


def _env() -> Environment:
    return Environment(
        loader=PackageLoader("opspoor.report", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_report(data: ReportData) -> str:
    s = data.summary
    by_category = sorted(s.get("by_category", {}).items(), key=lambda kv: (-kv[1], kv[0]))
    charts = {
        "status": bar_chart(list(s.get("by_status", {}).items()), title="files by status"),
        "category": bar_chart(by_category, title="known by category"),
        "types": bar_chart(
            sorted(s.get("by_type", {}).items(), key=lambda kv: -kv[1])[:12], title="file types"
        ),
        "timeline": timeline(list(data.exif_months)),
    }
    groups = []
    for g in data.groups:
        groups.append(
            {
                "id": g.id,
                "rank": g.rank,
                "size": g.size,
                "paths": g.paths[:MAX_PATHS],
                "more": max(0, len(g.paths) - MAX_PATHS),
                "thumbs": [base64.b64encode(t).decode() for t in g.thumbs[:MAX_THUMBS]]
                if data.thumbnails
                else [],
                "cameras": g.cameras,
                "serials": g.serials,
                "gps": g.gps,
                "date_first": g.date_first,
                "date_last": g.date_last,
                "types": g.types,
            }
        )
    errors = [{"path": p, "error": e} for p, e in data.errors[:MAX_ERRORS]]
    return (
        _env()
        .get_template("report.html.j2")
        .render(
            case_name=data.case_name,
            generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            version=__version__,
            summary=s,
            charts=charts,
            groups=groups,
            known_by_category=by_category,
            known_by_hashset=list(data.known_by_hashset),
            errors=errors,
            errors_more=max(0, len(data.errors) - MAX_ERRORS),
            errors_by_reason=sorted(s.get("errors_by_reason", {}).items(), key=lambda kv: -kv[1]),
            thumbnails=data.thumbnails,
        )
    )
