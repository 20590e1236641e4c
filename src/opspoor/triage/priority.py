"""Review order for new material: groups whose clues point to the country of interest first, then
groups with other location clues, then larger groups (docs/clues.md)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from opspoor.clues.gps import gps_clues
from opspoor.clues.model import Clue

#: clues named in a group's ranking line, at most
SHOWN = 3
#: kinds whose country says where the file was made more than what it shows (strongest first)
STRENGTH = ("gps", "phone", "postcode", "plate", "url", "language", "text", "filename")


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
    #: the members' clues (opspoor.clues), one per kind and value, strongest first
    clues: list[Clue] = field(default_factory=list)
    #: the country of interest (ISO 3166 alpha-2) the ranking favours
    country: str = "NL"
    #: clues also seen in earlier cases (triage.links), one line each
    links: list[str] = field(default_factory=list)

    @property
    def has_location_clue(self) -> bool:
        return bool(self.gps or self.serials or any(c.countries for c in self.clues))

    @property
    def country_clues(self) -> list[Clue]:
        """The clues that point to the country of interest."""
        return [c for c in self.clues if self.country in c.countries]

    @property
    def points_to_country(self) -> bool:
        return bool(self.country_clues)

    @property
    def why_ranked(self) -> list[str]:
        """The rule of :func:`rank_groups` that put this group where it is, and its clues."""
        n = len(self.members)
        if self.points_to_country:
            shown = self.country_clues[:SHOWN]
            more = len(self.country_clues) - len(shown)
            also = f"; camera serial {', '.join(self.serials)}" if self.serials else ""
            return [
                f"points to {self.country}: " + "; ".join(c.describe() for c in shown)
                + (f"; and {more} more" if more > 0 else "") + also,
                f"rule: groups with a clue pointing to the country of interest ({self.country}) come first",
            ]  # fmt: skip
        if self.has_location_clue:
            clues = []
            if self.gps:
                clues.append(f"{len(self.gps)} GPS position{'s' if len(self.gps) > 1 else ''}")
            if self.serials:
                clues.append("camera serial " + ", ".join(self.serials))
            elsewhere = sorted({cc for c in self.clues for cc in c.countries[:1]})
            if elsewhere:
                clues.append("clues pointing to " + ", ".join(elsewhere))
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
            "points_to_country": self.points_to_country,
            "clues": [c.to_json() for c in self.clues],
            "links": self.links,
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


def _found(members: Sequence[dict[str, Any]], places: dict[tuple[float, float], Clue]) -> list[Clue]:
    """The members' clues, one per (kind, value), strongest kind first; GPS named per position."""
    out: dict[tuple[str, str], Clue] = {}
    for m in members:
        gps = (m.get("exif") or {}).get("gps")
        if gps:
            c = places[(float(gps[0]), float(gps[1]))]
            out.setdefault((c.kind, c.value), c)
        for d in (m.get("clues") or {}).get("found") or []:
            c = Clue.from_json(d)
            out.setdefault((c.kind, c.value), c)
    rank = {k: i for i, k in enumerate(STRENGTH)}
    return sorted(out.values(), key=lambda c: rank.get(c.kind, len(rank)))


def rank_groups(
    groups: Sequence[Sequence[dict[str, Any]]],
    reasons: Sequence[list[str]] | None = None,
    country: str = "NL",
) -> list[Group]:
    """Order groups for review and give them stable ids (G0001 is looked at first).

    Groups with a clue pointing to ``country`` (a GPS position there, a phone number, postcode,
    plate or web address of it, text in its language) come first: that is what leads to a victim
    the investigator can reach; then groups with other location clues (GPS, camera serial, another
    country); then larger groups, because one look covers more files; ties keep scan order.
    ``reasons[i]`` says why ``groups[i]``'s members belong together.
    """
    points = sorted(
        {(float(g[0]), float(g[1])) for ms in groups for m in ms if (g := (m.get("exif") or {}).get("gps"))}
    )
    places = dict(zip(points, gps_clues(points), strict=True))
    built = []
    for i, members in enumerate(groups):
        ms = sorted(members, key=lambda r: r.get("_seq", 0))
        clues = _clues(ms)
        clues["why_together"] = list(reasons[i]) if reasons else []
        clues["clues"] = _found(ms, places)
        built.append((ms, Group(id="", rank=0, members=ms, country=country, **clues)))
    built.sort(
        key=lambda b: (
            not b[1].points_to_country,
            not b[1].has_location_clue,
            -len(b[0]),
            b[0][0].get("_seq", 0),
        )
    )
    width = max(4, len(str(len(built))))
    out = []
    for rank, (_, g) in enumerate(built, start=1):
        g.id, g.rank = f"G{rank:0{width}d}", rank
        out.append(g)
    return out
