"""EXIF GPS position → place (country, region, town), offline (:mod:`opspoor.clues.places`)."""

from __future__ import annotations

from collections.abc import Sequence

from opspoor.clues.model import Clue
from opspoor.clues.places import name_places


def gps_clues(points: Sequence[tuple[float, float]]) -> list[Clue]:
    named, _ = name_places(points)
    return [
        Clue(
            "gps",
            f"{p.lat:.5f},{p.lon:.5f}",
            "exif",
            (p.country,) if p.country else (),
            p.name,
        )
        for p in named
    ]
