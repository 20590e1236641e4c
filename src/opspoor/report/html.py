"""The self-contained HTML case report: inline CSS, SVG and a little inline script (sort, filter,
search), thumbnails as data URIs; it opens offline and its Content-Security-Policy forbids any
request. It prints on A4 and is the source of the PDF (:mod:`opspoor.report.pdf`)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from importlib.resources import files
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from opspoor import __version__
from opspoor.hashsets.model import category_name
from opspoor.report.charts import CATEGORY_COLOURS, NEUTRAL, STATUS_COLOURS, bar_chart, timeline
from opspoor.triage.records import signal_kind

#: members listed per group, thumbnails per group, rows of each file list, before "... and N more"
MAX_PATHS = 200
MAX_THUMBS = 12
MAX_ROWS = 5000
MAX_SINGLES = 3000


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
    places: list[str] = field(default_factory=list)
    date_first: str | None = None
    date_last: str | None = None
    types: list[tuple[str, int]] = field(default_factory=list)
    why_ranked: list[str] = field(default_factory=list)
    why_together: list[str] = field(default_factory=list)
    #: location clues other than GPS, one line each with their evidence (opspoor.clues: an OCR
    #: snippet, a number, the deciding words; never pixels)
    clues: list[str] = field(default_factory=list)
    #: whether a clue points to the country of interest
    points_to_country: bool = False
    #: clues also seen in earlier cases (triage.links)
    links: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class KnownRow:
    """One known file matched to one entry: a row of the evidence table. ``signals`` are every
    signal by which the file hit the entry; ``distance`` the best perceptual distance (None when
    only exact hashes hit)."""

    path: str
    hashset: str
    entry_id: int
    external_id: str | None
    category: str | None  # scheme:code
    signals: tuple[str, ...]
    distance: int | None = None
    method: str | None = None

    @property
    def kind(self) -> str:
        return "exact" if any(signal_kind(s) == "exact" for s in self.signals) else "perceptual"

    @property
    def category_name(self) -> str:
        if not self.category:
            return "uncategorised"
        scheme, _, code = self.category.partition(":")
        return category_name(scheme, code)


@dataclass(slots=True)
class FileRow:
    path: str
    type: str | None
    size: int | None
    detail: str = ""  # the matched set for ignorable files


@dataclass(slots=True)
class PlaceView:
    name: str
    files: int
    groups: list[str]


@dataclass(slots=True)
class ReportData:
    case_name: str
    summary: dict[str, Any]
    groups: Sequence[GroupView]
    errors: Sequence[tuple[str, str, str]]  # (path, reason, message)
    exif_months: Sequence[tuple[str, int]]
    known_by_hashset: Sequence[tuple[str, int]]
    known: Sequence[KnownRow] = ()
    ignorable: Sequence[FileRow] = ()
    other: Sequence[FileRow] = ()
    places: Sequence[PlaceView] = ()
    places_note: str = ""
    thumbnails: bool = True


def _env() -> Environment:
    env = Environment(
        loader=PackageLoader("opspoor.report", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["bytes"] = human_bytes
    env.filters["when"] = _when
    return env


@cache
def _script() -> tuple[str, str]:
    """The report's script and its CSP hash: the page may run this script and no other."""
    text = (files("opspoor.report") / "templates" / "report.js").read_text(encoding="utf-8")
    digest = base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
    return text, f"sha256-{digest}"


def human_bytes(n: int | None) -> str:
    if n is None:
        return "—"
    size = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{n} B" if unit == "B" else f"{size:.1f} {unit} ({n:,} B)"
        size /= 1000
    return f"{n} B"


def _when(t: float | str | None) -> str:
    if t is None:
        return "—"
    if isinstance(t, str):
        return t.replace("T", " ").replace("+00:00", " UTC")
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    s = int(round(seconds))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    text = f"{h} h {m:02d} min {s:02d} s" if h else f"{m} min {s:02d} s" if m else f"{seconds:.1f} s"
    return text


def _group(g: GroupView, thumbnails: bool) -> dict[str, Any]:
    search = " ".join([g.id, *g.paths[:MAX_PATHS], *g.cameras, *g.serials, *g.places, *g.clues]).lower()
    return {
        "id": g.id,
        "rank": g.rank,
        "size": g.size,
        "paths": g.paths[:MAX_PATHS],
        "more": max(0, len(g.paths) - MAX_PATHS),
        "thumbs": [base64.b64encode(t).decode() for t in g.thumbs[:MAX_THUMBS]] if thumbnails else [],
        "cameras": g.cameras,
        "serials": g.serials,
        "places": g.places,
        "date_first": g.date_first,
        "date_last": g.date_last,
        "types": g.types,
        "why_ranked": g.why_ranked,
        "why_together": g.why_together,
        "clue": bool(g.gps or g.serials or g.clues),
        "clues": g.clues,
        "points_to_country": g.points_to_country,
        "links": g.links,
        "search": search,
    }


def render_report(data: ReportData) -> str:
    s = data.summary
    by_category = sorted(s.get("by_category", {}).items(), key=lambda kv: (-kv[1], kv[0]))
    cat_items = [
        (category_name(*k.split(":", 1)) if ":" in k else "uncategorised", n) for k, n in by_category
    ]
    by_status = list(s.get("by_status", {}).items())
    places = sorted(data.places, key=lambda p: (-p.files, p.name))
    charts = {
        "status": bar_chart(
            by_status,
            title="files by status",
            colours=[STATUS_COLOURS.get(k, NEUTRAL) for k, _ in by_status],
            label_w=90,
            width=360,
        ),
        "category": bar_chart(
            cat_items,
            title="known files by category",
            colours=[CATEGORY_COLOURS.get(k, NEUTRAL) for k, _ in by_category],
            label_w=250,
            width=480,
        ),
        "types": bar_chart(
            sorted(s.get("by_type", {}).items(), key=lambda kv: -kv[1])[:12],
            title="file types",
            label_w=90,
            width=360,
        ),
        "timeline": timeline(list(data.exif_months)),
    }
    multi = [_group(g, data.thumbnails) for g in data.groups if g.size > 1]
    singles = [_group(g, data.thumbnails) for g in data.groups if g.size == 1]
    known = list(data.known[:MAX_ROWS])
    known_sets = sorted({r.hashset for r in known})
    known_cats = sorted({r.category_name for r in known})
    errors = [{"path": p, "reason": r, "error": e} for p, r, e in data.errors[:MAX_ROWS]]
    return (
        _env()
        .get_template("report.html.j2")
        .render(
            case_name=data.case_name,
            generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            version=__version__,
            summary=s,
            elapsed=_duration(s.get("elapsed_seconds")),
            charts=charts,
            groups=multi,
            singles=singles[:MAX_SINGLES],
            singles_more=max(0, len(singles) - MAX_SINGLES),
            groups_total=len(data.groups),
            known=known,
            known_more=max(0, len(data.known) - MAX_ROWS),
            known_sets=known_sets,
            known_cats=known_cats,
            known_by_category=[
                (k, category_name(*k.split(":", 1)) if ":" in k else k, n) for k, n in by_category
            ],
            category_colours=CATEGORY_COLOURS,
            known_by_hashset=list(data.known_by_hashset),
            ignorable=data.ignorable[:MAX_ROWS],
            ignorable_more=max(0, len(data.ignorable) - MAX_ROWS),
            other=data.other[:MAX_ROWS],
            other_more=max(0, len(data.other) - MAX_ROWS),
            places=places,
            places_note=data.places_note,
            errors=errors,
            errors_more=max(0, len(data.errors) - MAX_ROWS),
            errors_by_reason=sorted(s.get("errors_by_reason", {}).items(), key=lambda kv: -kv[1]),
            thumbnails=data.thumbnails,
            status_colours=STATUS_COLOURS,
            script=_script()[0],
            script_hash=_script()[1],
        )
    )
