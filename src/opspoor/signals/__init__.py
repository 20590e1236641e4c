"""Signal types by short name: the one place that defines a signal. A new type is one module plus
one line in ``SIGNALS`` (or a :func:`register` call); every table of widths elsewhere is derived
from here. A table asked for on every request (:func:`exact_widths`) is derived once and kept until
the registry changes.
"""

from __future__ import annotations

import re
from typing import Any

from opspoor.errors import SignalError
from opspoor.signals.base import IndexKind, SignalType
from opspoor.signals.crypto import MD5, SHA1, SHA256
from opspoor.signals.local import LocalSignal
from opspoor.signals.pdq import PDQ
from opspoor.signals.photodna import PhotoDNA
from opspoor.signals.vpdq import VPDQ


class _Registry(dict[str, type[SignalType]]):
    """The registry's dict: any change to it drops the tables derived from it."""

    def __setitem__(self, name: str, signal: type[SignalType]) -> None:
        super().__setitem__(name, signal)
        _forget_tables()

    def __delitem__(self, name: str) -> None:
        super().__delitem__(name)
        _forget_tables()

    def pop(self, *args: Any) -> Any:
        try:
            return super().pop(*args)
        finally:
            _forget_tables()

    def popitem(self) -> tuple[str, type[SignalType]]:
        try:
            return super().popitem()
        finally:
            _forget_tables()

    def setdefault(self, *args: Any) -> Any:
        try:
            return super().setdefault(*args)
        finally:
            _forget_tables()

    def update(self, *args: Any, **kwargs: Any) -> None:
        super().update(*args, **kwargs)
        _forget_tables()

    def clear(self) -> None:
        super().clear()
        _forget_tables()


SIGNALS: dict[str, type[SignalType]] = _Registry(
    (s.name, s)
    for s in (
        MD5,
        SHA1,
        SHA256,
        PDQ,
        VPDQ,
        PhotoDNA,
        LocalSignal,
    )
)


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


#: ``exact_widths`` of the registry as it is (every match request asks); None after a change
_exact_widths: dict[str, int] | None = None


def _forget_tables() -> None:
    global _exact_widths
    _exact_widths = None


def exact_widths() -> dict[str, int]:
    """Bytes per value of each signal the index finds by equal value (md5 16, sha1 20, sha256 32,
    photodna 144, a plugin's), in registry order: what the matcher's exact indexes hold.
    The answer is shared and kept until the registry changes (then a new dict): do not change it."""
    global _exact_widths
    widths = _exact_widths
    if widths is None:
        widths = _exact_widths = {
            n: h // 2 for n, s in SIGNALS.items() if s.index == "exact" and (h := s.indexed_hex_length())
        }
    return widths


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
