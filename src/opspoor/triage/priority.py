"""Review order for new material: groups with location clues first, then larger groups."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Group:
    id: str
    rank: int
    members: list[dict[str, Any]]  # file records, in scan order
    cameras: list[str] = field(default_factory=list)
    serials: list[str] = field(default_factory=list)
    gps: list[tuple[float, float]] = field(default_factory=list)
    date_first: str | None = None
    date_last: str | None = None
    types: list[tuple[str, int]] = field(default_factory=list)
    #: why the members are one group (grouping.why_together), empty for a single file
    why_together: list[str] = field(default_factory=list)

    @property
    def has_location_clue(self) -> bool:
        return bool(self.gps or self.serials)

    @property
    def why_ranked(self) -> list[str]:
        """The rule of :func:`rank_groups` that put this group where it is, and its clues."""
        n = len(self.members)
        if self.has_location_clue:
            clues = []
            if self.gps:
                clues.append(f"{len(self.gps)} GPS position{'s' if len(self.gps) > 1 else ''}")
            if self.serials:
                clues.append("camera serial " + ", ".join(self.serials))
            return [
                "location clue: " + "; ".join(clues),
                "rule: groups with a location clue come first, larger first",
            ]
        if n > 1:
            return [f"no location clue; {n} files", "rule: then larger groups first (one look covers more)"]
        return ["no location clue; a single file", "rule: single files last, in scan order"]

    def info(self) -> dict[str, Any]:
        return {
            "size": len(self.members),
            "paths": [m["path"] for m in self.members],
            "cameras": self.cameras,
            "serials": self.serials,
            "gps": [list(p) for p in self.gps],
            "date_first": self.date_first,
            "date_last": self.date_last,
            "types": [list(t) for t in self.types],
            "why_ranked": self.why_ranked,
            "why_together": self.why_together,
        }


def _clues(members: Sequence[dict[str, Any]]) -> dict[str, Any]:
    cameras, serials, gps, dates = [], [], [], []
    for m in members:
        ex = m.get("exif") or {}
        cam = " ".join(x for x in (ex.get("make"), ex.get("model")) if x)
        if cam and cam not in cameras:
            cameras.append(cam)
        if ex.get("serial") and ex["serial"] not in serials:
            serials.append(ex["serial"])
        if ex.get("gps"):
            p = (float(ex["gps"][0]), float(ex["gps"][1]))
            if p not in gps:
                gps.append(p)
        if ex.get("datetime"):
            dates.append(ex["datetime"])
    types = Counter(m.get("type") or "unknown" for m in members).most_common()
    return {
        "cameras": cameras,
        "serials": serials,
        "gps": gps,
        "date_first": min(dates) if dates else None,
        "date_last": max(dates) if dates else None,
        "types": types,
    }


def rank_groups(
    groups: Sequence[Sequence[dict[str, Any]]], reasons: Sequence[list[str]] | None = None
) -> list[Group]:
    """Order groups for review and give them stable ids (G0001 is looked at first).

    Location clues (GPS, camera serial) come first because they are what leads to a victim;
    then larger groups, because one look covers more files; ties keep scan order. ``reasons[i]``
    says why ``groups[i]``'s members belong together.
    """
    built = []
    for i, members in enumerate(groups):
        ms = sorted(members, key=lambda r: r.get("_seq", 0))
        clues = _clues(ms)
        clues["why_together"] = list(reasons[i]) if reasons else []
        built.append((ms, clues))
    built.sort(key=lambda b: (not (b[1]["gps"] or b[1]["serials"]), -len(b[0]), b[0][0].get("_seq", 0)))
    width = max(4, len(str(len(built))))
    return [
        Group(id=f"G{rank:0{width}d}", rank=rank, members=ms, **clues)
        for rank, (ms, clues) in enumerate(built, start=1)
    ]
