"""Place names for GPS positions, offline.

With the optional ``reverse-geocode`` package (``pip install 'opspoor[geo]'``: GeoNames towns,
shipped inside the package, nearest-town lookup) a position reads "near Delft, South Holland,
Netherlands" and has a country code. Without it the position is shown rounded, and the report says
why. Nothing is ever looked up online.
"""

from __future__ import annotations

import csv
import functools
import gzip
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from opspoor.cachedir import cache_home, write_cache_file

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
        import reverse_geocode  # noqa: F401  (the data and the tree below come with it)
    except ImportError:
        note = (
            f"No offline reverse geocoder is installed (pip install 'opspoor[geo]'): positions are "
            f"shown as coordinates rounded to {ROUND} decimals (about 1 km)."
        )
        return [Place(_rounded(lat, lon), lat, lon) for lat, lon in points], note
    found = _nearest_towns(points) if points else []
    places = []
    for (lat, lon), hit in zip(points, found, strict=True):
        parts = [hit.get("city"), hit.get("state"), hit.get("country")]
        name = ", ".join(p for p in parts if p)
        shown = f"near {name} ({_rounded(lat, lon)})" if name else _rounded(lat, lon)
        places.append(Place(shown, lat, lon, hit.get("country_code") or None))
    note = "Place names: the nearest town in GeoNames (offline, from the reverse-geocode package)."
    return places, note


#: the towns' fields a place name is made of, as ``reverse_geocode.search`` gives them
TOWN_FIELDS = ("city", "state", "country_code")


def _nearest_towns(points: Sequence[tuple[float, float]]) -> list[dict[str, str]]:
    """``reverse_geocode.search(points)``, the same towns, from a copy of its data in the cache
    folder: the package parses its 150,000 towns from gzipped JSON on every first search (0.5 s of
    CPU, in every scan with a GPS position), the copy and its tree in about 0.1 s."""
    try:
        tree, columns, countries = _towns()
    except Exception:  # another layout or an unwritable cache: the package's own way, as before
        import reverse_geocode

        return list(reverse_geocode.search(list(points)))
    _, indices = tree.query(list(points), k=1)
    out = []
    for i in indices:
        town = {name: _field(columns, name, int(i)) for name in TOWN_FIELDS}
        town["country"] = countries.get(town["country_code"], "")
        out.append(town)
    return out


def _field(columns: dict[str, np.ndarray], name: str, i: int) -> str:
    ends = columns[f"{name}_ends"]
    start = int(ends[i - 1]) if i else 0
    return bytes(columns[name][start : int(ends[i])]).decode("utf-8")


@functools.cache
def _towns() -> tuple[Any, dict[str, np.ndarray], dict[str, str]]:
    """(KD tree over the towns' (lat, lon), their fields, country names), as reverse_geocode builds
    them (the same coordinates in the same order: the same nearest town), read from the copy."""
    import reverse_geocode
    from scipy.spatial import cKDTree

    data = Path(reverse_geocode.__file__).parent
    packed = data / "geocode.gz"
    st = packed.stat()
    copy = cache_home() / "models" / f"geonames-{st.st_size}-{int(st.st_mtime)}.npz"
    if not copy.exists():
        write_cache_file(copy, lambda out: _unpack_towns(packed, out))
    with np.load(copy, allow_pickle=False) as npz:
        columns = {k: npz[k] for k in npz.files}
    with open(data / "countries.csv", encoding="utf-8") as fh:
        countries = {code: name for code, name in csv.reader(fh)}
    return cKDTree(columns.pop("coordinates")), columns, countries


def _unpack_towns(packed: Path, out: IO[bytes]) -> None:
    """The towns of reverse_geocode's data as arrays: coordinates, and each field's UTF-8 bytes
    with their end offsets (no pickled objects in the cache)."""
    with gzip.open(packed) as gz:
        towns = json.loads(gz.read())
    arrays: dict[str, Any] = {
        "coordinates": np.array([(t["latitude"], t["longitude"]) for t in towns], dtype=np.float64)
    }
    for name in TOWN_FIELDS:
        encoded = [(t.get(name) or "").encode("utf-8") for t in towns]
        arrays[name] = np.frombuffer(b"".join(encoded), dtype=np.uint8)
        arrays[f"{name}_ends"] = np.cumsum([len(e) for e in encoded], dtype=np.int64)
    np.savez(out, **arrays)
