"""Write the case outputs from the case database: files.jsonl, summary.json, export-vics.json, report.html.

Everything is written owner-only, to a temporary name first and then renamed, so a scan killed
while writing leaves no half file under the final name; a re-run rewrites them all.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from opspoor.casefile.export import write_vics_export
from opspoor.clues.places import name_places
from opspoor.report.html import FileRow, GroupView, KnownRow, PlaceView, ReportData, render_report
from opspoor.triage.case import CaseDB, owner_only
from opspoor.triage.config import ScanConfig
from opspoor.triage.priority import Group
from opspoor.triage.records import signal_kind
from opspoor.triage.summary import reason_key

FILES_JSONL = "files.jsonl"
SUMMARY_JSON = "summary.json"
REPORT_HTML = "report.html"
EXPORT_VICS = "export-vics.json"


@contextmanager
def atomic_write(path: Path, mode: str = "w") -> Iterator[IO[Any]]:
    tmp = path.with_name(path.name + ".part")
    with owner_only(), open(tmp, mode, encoding=None if "b" in mode else "utf-8") as fh:
        yield fh
        fh.flush()
        os.fsync(fh.fileno())
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def write_files_jsonl(case: CaseDB, path: Path) -> None:
    with atomic_write(path) as fh:
        for f in case.iter_files():
            fh.write(json.dumps(f.record, ensure_ascii=False) + "\n")


def write_report(
    case: CaseDB, cfg: ScanConfig, summary: dict[str, Any], groups: list[Group], path: Path
) -> None:
    months: Counter[str] = Counter()
    errors: list[tuple[str, str, str]] = []
    known: list[KnownRow] = []
    ignorable: list[FileRow] = []
    other: list[FileRow] = []
    gps_files: Counter[tuple[float, float]] = Counter()
    for f in case.iter_files():
        r = f.record
        dt = (r.get("exif") or {}).get("datetime")
        if dt and len(dt) >= 7:
            months[dt[:7].replace(":", "-")] += 1
        gps = (r.get("exif") or {}).get("gps")
        if gps:
            gps_files[(round(float(gps[0]), 4), round(float(gps[1]), 4))] += 1
        status = r["status"]
        if status == "error":
            errors.append((r["path"], reason_key(r), r.get("error") or "unknown"))
        elif status == "known":
            known.extend(_known_rows(r))
        elif status == "ignorable":
            sets = sorted({m["hashset"] for m in r["matches"] if m.get("kind") == "ignorable"})
            ignorable.append(FileRow(r["path"], r.get("type"), r.get("size"), ", ".join(sets)))
        elif status == "other":
            other.append(FileRow(r["path"], r.get("type"), r.get("size")))
    points = sorted(gps_files)
    named, places_note = name_places(points)
    place_of = {p: n.name for p, n in zip(points, named, strict=True)}
    places: dict[str, PlaceView] = {}
    for p, n in gps_files.items():
        view = places.setdefault(place_of[p], PlaceView(place_of[p], 0, []))
        view.files += n
    views = []
    for g in groups:
        paths = [m["path"] for m in g.members]
        thumbs = case.thumbs(paths[:12]) if cfg.thumbnails else {}
        g_places = []
        for lat, lon in g.gps:
            name = place_of.get((round(lat, 4), round(lon, 4)))
            if name and name not in g_places:
                g_places.append(name)
                if g.id not in places[name].groups:
                    places[name].groups.append(g.id)
        views.append(
            GroupView(
                id=g.id,
                rank=g.rank,
                size=len(paths),
                paths=paths,
                thumbs=[thumbs[p] for p in paths[:12] if p in thumbs],
                cameras=g.cameras,
                serials=g.serials,
                gps=g.gps,
                places=g_places,
                date_first=g.date_first,
                date_last=g.date_last,
                types=g.types,
                why_ranked=g.why_ranked,
                why_together=g.why_together,
                clues=[c.describe() for c in g.clues if c.kind != "gps"],  # GPS: the places above
                points_to_country=g.points_to_country,
                links=g.links,
            )
        )
    data = ReportData(
        case_name=cfg.case_dir.name,
        summary=summary,
        groups=views,
        errors=errors,
        exif_months=sorted(months.items()),
        known_by_hashset=sorted(summary.get("by_hashset", {}).items()),
        known=known,
        ignorable=ignorable,
        other=other,
        places=list(places.values()),
        places_note=places_note if points else "",
        thumbnails=cfg.thumbnails,
    )
    with atomic_write(path) as fh:
        fh.write(render_report(data))


def _known_rows(rec: dict[str, Any]) -> list[KnownRow]:
    """One row per entry the file hit, with every signal that hit it."""
    by_entry: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for m in rec["matches"]:
        if m.get("kind") == "known":
            by_entry.setdefault((m["hashset"], m["entry_id"]), []).append(m)
    rows = []
    for (hashset, entry_id), ms in by_entry.items():
        cat = ms[0].get("category")
        perceptual = [m for m in ms if signal_kind(m["signal"]) == "perceptual"]
        best = min(perceptual, key=lambda m: int(m.get("distance") or 0)) if perceptual else None
        rows.append(
            KnownRow(
                path=rec["path"],
                hashset=hashset,
                entry_id=entry_id,
                external_id=ms[0].get("external_id"),
                category=f"{cat['scheme']}:{cat['code']}" if cat else None,
                signals=tuple(sorted({m["signal"] for m in ms}, key=lambda x: (signal_kind(x), x))),
                distance=int(best.get("distance") or 0) if best else None,
                method=best.get("method") if best else None,
            )
        )
    return rows


def write_outputs(
    case: CaseDB, cfg: ScanConfig, summary: dict[str, Any], groups: list[Group]
) -> dict[str, Path]:
    """files.jsonl, export-vics.json, report.html and summary.json, in that order (by name)."""
    out = {
        "files": cfg.case_dir / FILES_JSONL,
        "summary": cfg.case_dir / SUMMARY_JSON,
        "export": cfg.case_dir / EXPORT_VICS,
        "report": cfg.case_dir / REPORT_HTML,
    }
    write_files_jsonl(case, out["files"])
    with atomic_write(out["export"], "wb") as fh:
        write_vics_export(case, cfg, fh)  # type: ignore[arg-type]
    write_report(case, cfg, summary, groups, out["report"])
    with atomic_write(out["summary"]) as fh:
        json.dump(summary, fh, indent=2)
        fh.write("\n")
    return out
