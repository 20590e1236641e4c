"""What a clue is: one observation that may say where a file was made, with its evidence.

A clue never carries pixels: its evidence is text (an OCR snippet, a place name, a number, a file
name), so it can be shown to anyone who may read the case without showing the picture.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: how long an evidence snippet may be (characters): enough to judge, not a transcript
SNIPPET = 80


@dataclass(frozen=True, slots=True)
class Clue:
    #: what was found: gps, language, phone, postcode, plate, url, filename, serial, speech
    kind: str
    #: the finding itself: "nl", "+31 6 12345678", "2611 AB", "example.nl", "WhatsApp"
    value: str
    #: where in the file it was found: exif, name, ocr, frame@12.0s, subtitle, speech
    source: str
    #: countries (ISO 3166 alpha-2) the clue points to, most likely first; empty if none
    countries: tuple[str, ...] = ()
    #: what shows it, in words: the OCR snippet, the place name, the deciding words
    evidence: str = ""
    #: extra figures (confidence, the deciding words), JSON-safe
    detail: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        # (not dataclasses.asdict: its deep copy cost more than the rest of a photo's clues)
        return {
            "kind": self.kind,
            "value": self.value,
            "source": self.source,
            "countries": list(self.countries),
            "evidence": self.evidence,
            "detail": json_copy(self.detail),
        }

    @staticmethod
    def from_json(d: dict[str, Any]) -> Clue:
        return Clue(
            kind=str(d["kind"]),
            value=str(d["value"]),
            source=str(d.get("source") or ""),
            countries=tuple(d.get("countries") or ()),
            evidence=str(d.get("evidence") or ""),
            detail=dict(d.get("detail") or {}),
        )

    def describe(self) -> str:
        """One line for the report: "phone +31 6 12345678 (NL) from ocr: 'Bel 06-...'"."""
        where = f" ({', '.join(self.countries)})" if self.countries else ""
        ev = f": {self.evidence}" if self.evidence else ""
        return f"{self.kind} {self.value}{where} from {self.source}{ev}"


def snippet(text: str, start: int, end: int, room: int = 24) -> str:
    """The found text with a little context, on one line, at most :data:`SNIPPET` characters."""
    a, b = max(0, start - room), min(len(text), end + room)
    s = " ".join(text[a:b].split())
    if len(s) > SNIPPET:
        s = s[: SNIPPET - 1] + "…"
    return ("…" if a > 0 else "") + s + ("…" if b < len(text) else "")


def json_copy(value: Any) -> Any:
    """A deep copy of JSON-safe ``value`` (its dicts, lists and tuples), as ``asdict`` made it."""
    if isinstance(value, dict):
        return {k: json_copy(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(json_copy(v) for v in value)
    return value
