"""Signal types by short name. A new type is one module plus one line in ``SIGNALS``."""

from __future__ import annotations

from opspoor.errors import SignalError
from opspoor.signals.base import SignalType
from opspoor.signals.crypto import MD5, SHA1, SHA256
from opspoor.signals.local import LocalSignal
from opspoor.signals.pdq import PDQ
from opspoor.signals.vpdq import VPDQ

SIGNALS: dict[str, type[SignalType]] = {
    s.name: s
    for s in (
        MD5,
        SHA1,
        SHA256,
        PDQ,
        VPDQ,
        LocalSignal,
    )
}


def get_signal(name: str) -> type[SignalType]:
    try:
        return SIGNALS[name.lower()]
    except KeyError:
        raise SignalError(f"unknown signal type {name!r}; known: {', '.join(SIGNALS)}") from None


__all__ = ["SIGNALS", "SignalType", "get_signal"]
