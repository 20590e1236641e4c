"""What is matched: a query (one input's signals and the PDQ hashes it is looked up by) and a match.

A query comes from a hashed file (``Query.from_file_signals``), a scan or hash JSON record
(``Query.from_signals``) or the service's request. An image is looked up by its own PDQ when that is
reliable (quality at least ``MIN_PDQ_QUALITY``) and by its robust variants (turns, flips, trimmed
borders, embedded pictures), each labelled with the method that made it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from opspoor.hashsets.model import Category
from opspoor.signals.engine import FileSignals
from opspoor.signals.local import MIN_INLIERS
from opspoor.signals.vpdq import QUALITY_THRESHOLD

#: a PDQ of lower quality is unreliable (flat images match each other); it is not matched
MIN_PDQ_QUALITY = 50

#: a PDQ to look up: (hash, method), or (hash, method, max distance) for a low-quality hash
PdqLookup = tuple[str, str] | tuple[str, str, int]


@dataclass(frozen=True, slots=True)
class Match:
    hashset: str
    kind: str  # known | ignorable
    entry_id: int
    external_id: str | None
    signal: str
    distance: int
    category: Category | None
    method: str | None = None  # which query hash hit (dihedral variant, border removal, ...)
    #: local features: the patches that agree on one geometry, which is what decided the match
    #: (``distance`` is then only their place on PDQ's scale, for ordering: signals.local)
    inliers: int | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "hashset": self.hashset,
            "kind": self.kind,
            "entry_id": self.entry_id,
            "external_id": self.external_id,
            "signal": self.signal,
            "distance": self.distance,
            "category": {"scheme": self.category.scheme, "code": self.category.code}
            if self.category
            else None,
        }
        if self.inliers is not None:  # a Hamming distance is meaningless here: say what decided it
            del out["distance"]
            out["inliers"] = self.inliers
            out["min_inliers"] = MIN_INLIERS
        if self.method:
            out["method"] = self.method
        return out


@dataclass(slots=True)
class Query:
    """What is known about one input: any of its signals. ``pdq`` may hold several hashes
    (the file's own and the robust query variants), each with a method label."""

    md5: str | None = None
    sha1: str | None = None
    sha256: str | None = None
    pdq: list[PdqLookup] = field(default_factory=list)  # (hash, method[, max distance])
    vpdq_frames: list[str] = field(default_factory=list)  # unique frame hashes of quality >= 50
    local: str | None = None  # the image's local features, encoded (HashOptions.local)

    @classmethod
    def from_file_signals(cls, sig: FileSignals) -> Query:
        """What a hashed file is matched by: its digests, its PDQ (and robust variants) when
        reliable, its video's good frames."""
        q = cls(md5=sig.md5, sha1=sig.sha1, sha256=sig.sha256, local=sig.local)
        if sig.pdq:
            q.pdq = pdq_lookups(sig.pdq, sig.quality or 0, sig.pdq_variants or [])
        if sig.vpdq_frames:
            q.vpdq_frames = list(
                dict.fromkeys(f.hash for f in sig.vpdq_frames if f.quality >= QUALITY_THRESHOLD)
            )
        return q

    @classmethod
    def from_signals(cls, sig: dict[str, Any]) -> Query:
        """From a scan/hash JSON record (md5, sha1, sha256, pdq, pdq_quality, vpdq_frames, pdq_variants)."""
        q = cls(md5=sig.get("md5"), sha1=sig.get("sha1"), sha256=sig.get("sha256"), local=sig.get("local"))
        if sig.get("pdq"):
            variants: list[PdqLookup] = [tuple(v) for v in sig.get("pdq_variants") or []]  # type: ignore[misc]
            q.pdq = pdq_lookups(sig["pdq"], sig.get("pdq_quality") or 0, variants)
        frames = []
        for line in sig.get("vpdq_frames") or []:
            parts = line.split(",")
            if len(parts) >= 3 and int(parts[1]) >= QUALITY_THRESHOLD:
                frames.append(parts[2])
        q.vpdq_frames = list(dict.fromkeys(frames))
        return q


def pdq_lookups(pdq: str, quality: int, variants: Sequence[PdqLookup]) -> list[PdqLookup]:
    """The PDQ hashes one image is looked up by, as (hash, method[, max distance]).

    The image's own hash and its turns (``dihedral/...``) hold the same pixels, so they are looked
    up only when its quality is reliable. Region variants (a border-trimmed or embedded picture)
    were gated on their own quality when they were made (or capped at a tighter distance), so they
    count even when the whole image's hash does not: a flat pad around a picture lowers the whole
    image's quality.
    """
    if quality >= MIN_PDQ_QUALITY:
        return [(pdq, "pdq"), *variants]
    return [v for v in variants if not v[1].startswith("dihedral")]
