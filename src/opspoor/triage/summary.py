"""What a finished scan adds up to, from the case database: the new media grouped and ranked for
review (each record's group id stored), and the summary (counts by status, category, set, type,
error reason; whether every file is accounted for) that ``summary.json`` and the report show.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from opspoor import __version__
from opspoor.triage.case import CaseDB
from opspoor.triage.config import ScanConfig
from opspoor.triage.grouping import MIN_QUALITY, Link, Member, group_members, why_together
from opspoor.triage.links import OtherCase, group_links
from opspoor.triage.priority import Group, rank_groups
from opspoor.triage.records import STATUSES, signal_kind


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


def assign_groups(
    case: CaseDB,
    radius: int,
    country: str = "NL",
    others: Sequence[OtherCase] = (),
    earlier: Mapping[str, str] | None = None,
) -> list[Group]:
    """Group the new media (``group_new``) and store each record's group id and the groups."""
    new = [(f.seq, f.record) for f in case.iter_files() if f.record["status"] == "new"]
    groups = group_new(new, radius, country, others, earlier)
    case.update_records([m for g in groups for m in g.members])
    case.replace_groups((g.id, g.rank, g.info()) for g in groups)
    return groups


def group_new(
    new: Sequence[tuple[int, dict[str, Any]]],
    radius: int,
    country: str = "NL",
    others: Sequence[OtherCase] = (),
    earlier: Mapping[str, str] | None = None,
) -> list[Group]:
    """Group the new media (``(seq, record)``, in scan order), rank the groups, link them to
    earlier cases (``others``), and set each record's ``group``. ``earlier`` (path to the group it
    was in, when the case is grouped again): a group keeps an earlier id (``keep_group_ids``)."""
    recs = []
    for seq, rec in new:
        rec["_seq"] = seq
        recs.append(rec)
    links: list[Link] = []
    clusters = group_members([_member(r) for r in recs], radius=radius, links=links)
    cluster_of = {i: k for k, c in enumerate(clusters) for i in c}
    per_cluster: list[list[Link]] = [[] for _ in clusters]
    for link in links:
        per_cluster[cluster_of[link.a]].append(link)
    groups = rank_groups(
        [[recs[i] for i in c] for c in clusters],
        [why_together(ls, radius) for ls in per_cluster],
        country=country,
    )
    if earlier:
        keep_group_ids(groups, earlier)
    for g in groups:
        g.links = group_links(g.members, others) if others else []
        for m in g.members:
            m.pop("_seq", None)
            m["group"] = g.id
    return groups


def keep_group_ids(groups: Sequence[Group], earlier: Mapping[str, str]) -> None:
    """A group takes the id of the earlier group most of its members were in (each earlier id
    once, the largest overlap first), so the reviewers' decisions made on it find it again; any
    other group gets a new id after the highest earlier one. The rank order is unchanged."""
    overlap: Counter[tuple[str, str]] = Counter()
    for g in groups:
        for m in g.members:
            old = earlier.get(m["path"])
            if old:
                overlap[(g.id, old)] += 1
    kept: dict[str, str] = {}
    for (gid, old), _ in sorted(overlap.items(), key=lambda kv: (-kv[1], kv[0])):
        if gid not in kept and old not in kept.values():
            kept[gid] = old
    width = max((len(g.id) - 1 for g in groups), default=4)
    numbers = [int(o[1:]) for o in earlier.values() if o[1:].isdigit()]
    fresh = max(numbers, default=0) + 1
    for g in groups:
        if g.id in kept:
            g.id = kept[g.id]
        else:
            g.id = f"G{fresh:0{width}d}"
            fresh += 1


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
    by_origin: defaultdict[str, Counter[str]] = defaultdict(Counter)
    images = case.get_meta("images") or {}
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
            errors[reason_key(r)] += 1
        if "deleted" in r or r.get("carved"):
            origin = "carved" if r.get("carved") else "deleted" if r["deleted"] else "allocated"
            by_origin[_innermost_image(r["path"], images)][origin] += 1
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
            "pointing_to_country": sum(1 for g in groups if g.points_to_country),
        },
        "country_of_interest": cfg.country,
        "linked_cases": [str(p) for p in cfg.link_cases],
        # clues also seen in the linked earlier cases, per group
        "links": [{"group": g.id, "links": g.links} for g in groups if g.links],
        # each group's clues with their evidence (text, place names, numbers: never pixels)
        "clues": [
            {
                "group": g.id,
                "rank": g.rank,
                "points_to_country": g.points_to_country,
                "why_ranked": g.why_ranked,
                "clues": [c.to_json() for c in g.clues],
            }
            for g in groups
            if g.clues
        ],  # fmt: skip
        "errors_by_reason": dict(errors),
        "disk_images": disk_images(images, by_origin),
        "started": started,
        "ended": ended,
        "runs": case.get_meta("runs") or 1,
        # the scan's own time, added up over its runs: a pause before a resume is not in it
        "elapsed_seconds": round(float(scan_seconds if scan_seconds is not None else ended - started), 3),
    }


def reason_key(rec: dict[str, Any]) -> str:
    if rec.get("error_reason"):
        return str(rec["error_reason"])
    err = rec.get("error") or "unknown"
    return err.split(":", 1)[0][:60]


def _innermost_image(path: str, images: dict[str, Any]) -> str:
    """The disk image an item was found in: the longest container step of its path that is an image
    (``a.E01!/p1/vm.raw!/x.jpg`` belongs to ``a.E01!/p1/vm.raw``, not to ``a.E01``)."""
    parts = path.split("!/")
    for k in range(len(parts) - 1, 0, -1):
        key = "!/".join(parts[:k])
        if key in images:
            return key
    return parts[0]


def disk_images(images: dict[str, Any], records: dict[str, Counter[str]]) -> dict[str, Any]:
    """Per disk image: the allocated, deleted and carved items its walk found, the records the case
    holds for them, and whether the two agree (nested archive members are counted with the archive)."""
    out = {}
    for path, image in images.items():
        found = {k: int(v) for k, v in (image.get("items") or {}).items()}
        held = {k: int(records.get(path, Counter())[k]) for k in found}
        out[path] = {**image, "records": held, "reconciled": held == found}
    return out
