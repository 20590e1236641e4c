"""Where a report goes: the countries its clues place the people involved in, each with its reasons.

Clues, all looked up offline:

- every ``ipCaptureEvent`` (of the reported users, of peer-to-peer incidents, of each file's details)
  placed in a country by ``iptocc`` (registry data shipped inside the package; its version is
  recorded with every reason, so a referral can be explained later);
- ``estimatedLocation/countryCode`` of reported users and victims (the platform's own hint);
- EXIF GPS positions of the uploaded files, reverse geocoded with ``reverse_geocode`` (GeoNames data
  inside the package) when it is installed.

A report with no placeable clue is ``unresolved``.
"""

from __future__ import annotations

import importlib.metadata
import ipaddress
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

UNRESOLVED = "unresolved"


@dataclass(frozen=True, slots=True)
class Reason:
    country: str
    clue: str  # ip | estimatedLocation | exifGps
    detail: str  # the address, the element path, the position
    data: str  # what decided: "iptocc 3.3.170", "platform", "reverse_geocode 1.6.6"

    def to_json(self) -> dict[str, str]:
        return {"country": self.country, "clue": self.clue, "detail": self.detail, "data": self.data}


@dataclass(slots=True)
class Referral:
    countries: list[str]  # sorted; [UNRESOLVED] when no clue placed the report
    reasons: list[Reason] = field(default_factory=list)
    unplaced: list[str] = field(default_factory=list)  # clues that placed nothing (private addresses)

    def to_json(self) -> dict[str, Any]:
        return {
            "countries": self.countries,
            "reasons": [r.to_json() for r in self.reasons],
            "unplaced": self.unplaced,
        }


def _version(package: str) -> str:
    try:
        return f"{package} {importlib.metadata.version(package)}"
    except importlib.metadata.PackageNotFoundError:
        return package


def ip_events(
    report: dict[str, Any], files: Iterable[dict[str, Any]]
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(element path, ipCaptureEvent) of a report document and its files' details."""
    for i, person in enumerate(report.get("personOrUserReported", [])):
        for j, ev in enumerate(person.get("ipCaptureEvent", [])):
            yield f"/report/personOrUserReported/{i}/ipCaptureEvent/{j}", ev
    for i, inc in enumerate(report.get("internetDetails", [])):
        for j, ev in enumerate(inc.get("peer2peerIncident", {}).get("ipCaptureEvent", [])):
            yield f"/report/internetDetails/{i}/peer2peerIncident/ipCaptureEvent/{j}", ev
    for details in files:
        for j, ev in enumerate(details.get("ipCaptureEvent", [])):
            yield f"/fileDetails[{details.get('fileId')}]/ipCaptureEvent/{j}", ev


def place_ips(addresses: list[str]) -> list[str | None]:
    """Country codes (ISO 3166-1 alpha-2) of IP addresses; None for private, reserved or unknown."""
    import iptocc

    public = []
    for a in addresses:
        try:
            ip = ipaddress.ip_address(a)
            public.append(a if ip.is_global else None)
        except ValueError:
            public.append(None)
    found = iptocc.country_code([a for a in public if a is not None]) if any(public) else []
    it = iter(found)
    return [next(it) if a is not None else None for a in public]


def place_gps(points: list[tuple[float, float]]) -> list[str | None]:
    """The country of each position's nearest town (the clues' offline geocoder), None without it."""
    from opspoor.clues.places import name_places  # (the clues package is not loaded with the service)

    return [p.country for p in name_places(points)[0]]


def refer(
    report: dict[str, Any], files: list[dict[str, Any]], gps: list[tuple[int, tuple[float, float]]]
) -> Referral:
    """The referral of a report: ``files`` are its files' details, ``gps`` (file id, position)."""
    reasons: list[Reason] = []
    unplaced: list[str] = []
    events = list(ip_events(report, files))
    if events:
        data = _version("iptocc")
        for (path, ev), cc in zip(events, place_ips([str(ev["ipAddress"]) for _, ev in events]), strict=True):
            what = f"{ev['ipAddress']} ({ev.get('eventName', 'event')}) at {path}"
            if cc:
                reasons.append(Reason(cc, "ip", what, data))
            else:
                unplaced.append(what)
    for group in ("personOrUserReported", "victim"):
        for i, person in enumerate(report.get(group, [])):
            cc = person.get("estimatedLocation", {}).get("countryCode")
            if cc:
                reasons.append(
                    Reason(cc, "estimatedLocation", f"/report/{group}/{i}/estimatedLocation", "platform")
                )
    if gps:
        data = _version("reverse_geocode")
        for (file_id, point), cc in zip(gps, place_gps([p for _, p in gps]), strict=True):
            where = f"file {file_id} at {point[0]:.4f},{point[1]:.4f}"
            if cc:
                reasons.append(Reason(cc, "exifGps", where, data))
            else:
                unplaced.append(where)
    countries = sorted({r.country for r in reasons}) or [UNRESOLVED]
    return Referral(countries, reasons, unplaced)
