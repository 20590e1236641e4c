"""vPDQ: PDQ of sampled video frames. (stub, to be implemented)"""

from __future__ import annotations

from opspoor.signals.base import SignalType


class VPDQ(SignalType):
    name = "vpdq"
    media = frozenset({"video"})
    default_threshold = 31

    @classmethod
    def validate(cls, value: str) -> str:
        return value.strip()

    @classmethod
    def distance(cls, a: str, b: str) -> int:
        raise NotImplementedError
