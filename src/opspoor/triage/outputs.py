"""Write the case outputs from the case database: files.jsonl, summary.json, export-vics.json, report.html.

Everything is written owner-only, to a temporary name first and then renamed, so a scan killed
while writing leaves no half file under the final name; a re-run rewrites them all.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from opspoor import __version__
from opspoor.report.html import (
    FileRow,
    GroupView,
    KnownRow,
    PlaceView,
    ReportData,
    render_report,
    signal_kind,
)
from opspoor.report.places import name_places
from opspoor.triage.case import CaseDB, owner_only
from opspoor.triage.grouping import MIN_QUALITY, Link, Member, group_members, why_together
from opspoor.triage.priority import Group, rank_groups
from opspoor.triage.records import STATUSES

if TYPE_CHECKING:
    from opspoor.matching import Matcher
    from opspoor.triage.scan import ScanConfig

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


def _member(rec: dict[str, Any]) -> Member:
    frames = []
    for line in rec.get("vpdq_frames") or []:
        parts = line.split(",")
        if len(parts) >= 3 and int(parts[1]) >= MIN_QUALITY:
            frames.append(parts[2])
    return Member(
        path=rec["path"],
        pdq=rec.get("pdq"),
        quality=rec.get("pdq_quality"),
        frames=sorted(set(frames)),
        serial=(rec.get("exif") or {}).get("serial"),
    )


def assign_groups(case: CaseDB, radius: int) -> list[Group]:
    """Group the new media, rank the groups, and store each record's group id."""
    new = []
    for f in case.iter_files():
        if f.record["status"] == "new":
            f.record["_seq"] = f.seq
            new.append(f.record)
    links: list[Link] = []
    clusters = group_members([_member(r) for r in new], radius=radius, links=links)
    cluster_of = {i: k for k, c in enumerate(clusters) for i in c}
    per_cluster: list[list[Link]] = [[] for _ in clusters]
    for link in links:
        per_cluster[cluster_of[link.a]].append(link)
    groups = rank_groups(
        [[new[i] for i in c] for c in clusters], [why_together(ls, radius) for ls in per_cluster]
    )
    changed = []
    for g in groups:
        for m in g.members:
            m.pop("_seq", None)
            m["group"] = g.id
            changed.append(m)
    case.update_records(changed)
    case.replace_groups((g.id, g.rank, g.info()) for g in groups)
    return groups


def build_summary(
    case: CaseDB, cfg: ScanConfig, files_in: int, started: float, groups: list[Group]
) -> dict[str, Any]:
    by_status: Counter[str] = Counter({s: 0 for s in STATUSES})
    by_category: Counter[str] = Counter()
    by_type: Counter[str] = Counter()
    by_hashset: Counter[str] = Counter()
    by_signal_kind: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    accounted = 0
    for f in case.iter_files():
        r = f.record
        accounted += 1
        by_status[r["status"]] += 1
        by_type[r.get("type") or "unknown"] += 1
        if r["status"] == "known":
            cats = {
                f"{m['category']['scheme']}:{m['category']['code']}" if m.get("category") else "uncategorised"
                for m in r["matches"]
                if m.get("kind") == "known"
            }
            for c in cats:
                by_category[c] += 1
            for hs in {m["hashset"] for m in r["matches"]}:
                by_hashset[hs] += 1
            # a file counts as an exact match if any known match is by a cryptographic hash
            kinds = {signal_kind(m["signal"]) for m in r["matches"] if m.get("kind") == "known"}
            by_signal_kind["exact" if "exact" in kinds else "perceptual"] += 1
        if r["status"] == "error":
            errors[_reason_key(r)] += 1
    ended = time.time()
    scan_seconds = case.get_meta("scan_seconds")
    return {
        "opspoor_version": __version__,
        "case_dir": str(cfg.case_dir),
        "case_number": case.get_meta("case_number"),
        "examiner": case.get_meta("examiner"),
        "sources": [str(p) for p in cfg.sources],
        "source_details": case.get_meta("sources") or [],
        "hashsets": list(cfg.hashsets),
        "hashset_details": case.get_meta("hashsets") or [],
        "files_in": files_in,
        "files_accounted": accounted,
        "reconciled": files_in == accounted,
        "by_status": dict(by_status),
        "by_category": dict(by_category),
        "by_hashset": dict(by_hashset),
        "known_by_signal": {"exact": by_signal_kind["exact"], "perceptual": by_signal_kind["perceptual"]},
        "by_type": dict(by_type),
        "groups": {
            "count": len(groups),
            "largest": max((len(g.members) for g in groups), default=0),
            "with_location_clues": sum(1 for g in groups if g.has_location_clue),
        },
        "errors_by_reason": dict(errors),
        "started": started,
        "ended": ended,
        "runs": case.get_meta("runs") or 1,
        # the scan's own time, added up over its runs: a pause before a resume is not in it
        "elapsed_seconds": round(float(scan_seconds if scan_seconds is not None else ended - started), 3),
    }


def _reason_key(rec: dict[str, Any]) -> str:
    if rec.get("error_reason"):
        return str(rec["error_reason"])
    err = rec.get("error") or "unknown"
    return err.split(":", 1)[0][:60]


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
            errors.append((r["path"], _reason_key(r), r.get("error") or "unknown"))
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
    case: CaseDB, cfg: ScanConfig, matcher: Matcher, *, files_in: int, started: float
) -> tuple[dict[str, Any], dict[str, Path]]:
    from opspoor.triage.export import write_vics_export

    groups = assign_groups(case, radius=matcher.pdq_radius)
    summary = build_summary(case, cfg, files_in, started, groups)
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
    return summary, out
