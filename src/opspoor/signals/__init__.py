"""Signal types by short name: the one place that defines a signal. A new type is one module plus
one line in ``SIGNALS`` (or a :func:`register` call); every table of widths elsewhere is derived
from here, at the time it is used.
"""

from __future__ import annotations

import re

from opspoor.errors import SignalError
from opspoor.signals.base import IndexKind, SignalType
from opspoor.signals.crypto import MD5, SHA1, SHA256
from opspoor.signals.local import LocalSignal
from opspoor.signals.pdq import PDQ
from opspoor.signals.photodna import PhotoDNA
from opspoor.signals.vpdq import VPDQ

SIGNALS: dict[str, type[SignalType]] = {
    s.name: s
    for s in (
        MD5,
        SHA1,
        SHA256,
        PDQ,
        VPDQ,
        PhotoDNA,
        LocalSignal,
    )
}


_NAME = re.compile(r"[a-z][a-z0-9_]{0,15}")


def get_signal(name: str) -> type[SignalType]:
    try:
        return SIGNALS[name.lower()]
    except KeyError:
        raise SignalError(f"unknown signal type {name!r}; known: {', '.join(SIGNALS)}") from None


def register(signal: type[SignalType]) -> type[SignalType]:
    """Add a signal type (a plugin's, or a test's); usable as a class decorator. The name is what
    the store keeps (16 characters at most) and goes into its SQL as a literal, so it is checked."""
    if not _NAME.fullmatch(signal.name):
        raise SignalError(f"a signal name is 1-16 lower-case letters, digits or _, not {signal.name!r}")
    if signal.name in SIGNALS and SIGNALS[signal.name] is not signal:
        raise SignalError(f"signal type {signal.name!r} is registered already")
    SIGNALS[signal.name] = signal
    return signal


def unregister(name: str) -> None:
    SIGNALS.pop(name, None)


def hex_lengths() -> dict[str, int]:
    """Hex length of each signal whose value is fixed-width hex (md5 32, ..., pdq 64)."""
    return {n: s.hex_length for n, s in SIGNALS.items() if s.hex_length}


def indexed_hex_lengths() -> dict[str, int]:
    """Hex length of the values the index holds, per signal (vPDQ: its frame hashes)."""
    return {n: h for n, s in SIGNALS.items() if (h := s.indexed_hex_length())}


def signals_by_index(kind: IndexKind) -> tuple[str, ...]:
    """Names of the signals the index finds that way, in registry order."""
    return tuple(n for n, s in SIGNALS.items() if s.index == kind)


#: ``exact_widths`` of the registry as it was (every match request asks: kept until it changes)
_exact_widths: tuple[tuple[type[SignalType], ...], dict[str, int]] = ((), {})


def exact_widths() -> dict[str, int]:
    """Bytes per value of each signal the index finds by equal value (md5 16, sha1 20, sha256 32, a
    plugin's), in registry order: what the matcher's exact indexes hold. A signal found by equal
    value without a fixed width (PhotoDNA) has no exact index yet: it is stored, not matched.
    The answer is shared: do not change it."""
    global _exact_widths
    key = tuple(SIGNALS.values())
    if _exact_widths[0] != key:
        widths = {
            n: h // 2 for n, s in SIGNALS.items() if s.index == "exact" and (h := s.indexed_hex_length())
        }
        _exact_widths = (key, widths)
    return _exact_widths[1]


def identity_signals() -> tuple[str, ...]:
    """Cryptographic identities: equal values are the same item (md5, sha1, sha256)."""
    return tuple(n for n, s in SIGNALS.items() if s.identity)


__all__ = [
    "SIGNALS",
    "SignalType",
    "exact_widths",
    "get_signal",
    "hex_lengths",
    "identity_signals",
    "indexed_hex_lengths",
    "register",
    "signals_by_index",
    "unregister",
]
