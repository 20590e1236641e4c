"""PDQ: Meta's 256-bit perceptual image hash. (stub, to be implemented)"""

from __future__ import annotations

from opspoor.signals.base import SignalType


class PDQ(SignalType):
    name = "pdq"
    media = frozenset({"image"})
    default_threshold = 31
    hex_length = 64

    @classmethod
    def distance(cls, a: str, b: str) -> int:
        return (int(a, 16) ^ int(b, 16)).bit_count()
