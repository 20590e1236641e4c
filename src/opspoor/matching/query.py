"""What is matched: a query (one input's signals and the PDQ hashes it is looked up by) and a match.

A query comes from a hashed file (``Query.from_file_signals``), a scan or hash JSON record
(``Query.from_signals``) or the service's request. An image is looked up by its own PDQ when that is
reliable (quality at least ``MIN_PDQ_QUALITY``) and by its robust variants (turns, flips, trimmed
borders, embedded pictures), each labelled with the method that made it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from opspoor.hashsets.model import Category
from opspoor.signals import SIGNALS, exact_widths
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


@dataclass(slots=True, init=False)
class Query:
    """What is known about one input: any of its signals. ``exact`` holds the values of signals
    found by equal value (``signals.exact_widths``: md5, sha1, sha256, a plugin's); ``pdq`` may hold
    several hashes (the file's own and the robust query variants), each with a method label."""

    exact: dict[str, str]  # signal -> canonical value
    pdq: list[PdqLookup]  # (hash, method[, max distance])
    vpdq_frames: list[str]  # unique frame hashes of quality >= 50
    local: str | None  # the image's local features, encoded (HashOptions.local)

    def __init__(
        self,
        *,
        pdq: list[PdqLookup] | None = None,
        vpdq_frames: list[str] | None = None,
        local: str | None = None,
        **exact: str | None,
    ) -> None:
        """``Query(md5=..., pdq=[...])``: any signal the index finds by equal value is a keyword."""
        if exact:
            widths = exact_widths()
            unknown = [sig for sig in exact if sig not in widths]
            if unknown:
                raise TypeError(f"not a signal found by equal value: {', '.join(sorted(unknown))}")
        self.exact = {sig: v for sig, v in exact.items() if v}
        self.pdq = list(pdq or [])
        self.vpdq_frames = list(vpdq_frames or [])
        self.local = local

    @classmethod
    def from_file_signals(cls, sig: FileSignals) -> Query:
        """What a hashed file is matched by: its digests (the exact signals opspoor computes), its
        PDQ (and robust variants) when reliable, its video's good frames."""
        exact = {name: getattr(sig, name, None) for name in exact_widths() if SIGNALS[name].computed}
        q = cls(local=sig.local, **exact)
        if sig.pdq:
            q.pdq = pdq_lookups(sig.pdq, sig.quality or 0, sig.pdq_variants or [])
        if sig.vpdq_frames:
            q.vpdq_frames = list(
                dict.fromkeys(f.hash for f in sig.vpdq_frames if f.quality >= QUALITY_THRESHOLD)
            )
        return q

    @classmethod
    def from_signals(cls, sig: dict[str, Any]) -> Query:
        """From a scan/hash JSON record (its exact signals, pdq, pdq_quality, vpdq_frames, pdq_variants)."""
        q = cls(local=sig.get("local"), **{name: sig.get(name) for name in exact_widths()})
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


_value_widths: list[Any] = [None, {}]


def value_widths() -> dict[str, int]:
    """Hex length of a value that can be matched on its own, by signal (registry order): every
    signal the index finds by equal value, and PDQ (vPDQ and local features need a whole file)."""
    exact = exact_widths()
    if _value_widths[0] is not exact:  # (exact_widths is the same dict until the registry changes)
        widths = {sig: 2 * n for sig, n in exact.items()}
        pdq = SIGNALS["pdq"].hex_length
        _value_widths[:] = [exact, {**widths, "pdq": pdq} if pdq else widths]
    return _value_widths[1]  # type: ignore[no-any-return]


def value_query(signal: str, value: str) -> Query:
    """A query for one canonical value of ``signal`` (one of :func:`value_widths`)."""
    if signal == "pdq":
        return Query(pdq=[(value, "pdq")])
    if signal not in exact_widths():
        raise TypeError(f"not a signal found by equal value: {signal}")
    q = Query()
    q.exact[signal] = value
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
