"""Place names for GPS positions, offline.

With the optional ``reverse-geocode`` package (``pip install 'opspoor[geo]'``: GeoNames towns,
shipped inside the package, nearest-town lookup) a position reads "near Delft, South Holland,
Netherlands" and has a country code. Without it the position is shown rounded, and the report says
why. Nothing is ever looked up online.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

#: decimals kept when no place name can be given (2 decimals: about 1 km)
ROUND = 2


@dataclass(frozen=True, slots=True)
class Place:
    name: str
    lat: float
    lon: float
    #: ISO 3166 alpha-2 of the nearest town's country, None without the geocoder
    country: str | None = None


def _rounded(lat: float, lon: float) -> str:
    ns, ew = ("N" if lat >= 0 else "S"), ("E" if lon >= 0 else "W")
    return f"{abs(lat):.{ROUND}f}°{ns} {abs(lon):.{ROUND}f}°{ew}"


def name_places(points: Sequence[tuple[float, float]]) -> tuple[list[Place], str]:
    """A place per point, and a note saying where the names come from."""
    try:
        import reverse_geocode
    except ImportError:
        note = (
            f"No offline reverse geocoder is installed (pip install 'opspoor[geo]'): positions are "
            f"shown as coordinates rounded to {ROUND} decimals (about 1 km)."
        )
        return [Place(_rounded(lat, lon), lat, lon) for lat, lon in points], note
    found = reverse_geocode.search(list(points)) if points else []
    places = []
    for (lat, lon), hit in zip(points, found, strict=True):
        parts = [hit.get("city"), hit.get("state"), hit.get("country")]
        name = ", ".join(p for p in parts if p)
        shown = f"near {name} ({_rounded(lat, lon)})" if name else _rounded(lat, lon)
        places.append(Place(shown, lat, lon, hit.get("country_code") or None))
    note = "Place names: the nearest town in GeoNames (offline, from the reverse-geocode package)."
    return places, note
