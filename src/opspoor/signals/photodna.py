"""PhotoDNA: stored and matched exactly, never computed (opspoor has no PhotoDNA hasher).

The value is opaque: kept as given minus whitespace; refused only when it cannot be one. Accepted
spellings are base64, hex, and comma-separated decimal bytes.
"""

from __future__ import annotations

import re

from opspoor.errors import SignalError
from opspoor.signals.base import SignalType

_PHOTODNA_TEXT = re.compile(r"[A-Za-z0-9+/=]+|\d{1,3}(?:,\d{1,3})+")
_WS = re.compile(r"\s+")


class PhotoDNA(SignalType):
    name = "photodna"
    media = frozenset({"image"})
    index = "exact"
    computed = False

    @classmethod
    def validate(cls, value: str) -> str:
        v = _WS.sub("", value)
        if not v:
            raise SignalError("photodna value is empty")
        if not _PHOTODNA_TEXT.fullmatch(v):
            raise SignalError(f"photodna value is not base64, hex or decimal bytes: {value[:40]!r}")
        return v

    @classmethod
    def distance(cls, a: str, b: str) -> int:
        return 0 if a == b else 1
