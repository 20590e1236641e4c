"""What a hash set can hold: the checks every entry's signal values pass before the store takes them
(fixed-width lower-case hex, PhotoDNA's included; a parseable vPDQ text; the text of a stored-only
signal without a fixed width, without control characters)."""

from __future__ import annotations

from opspoor.errors import SignalError
from opspoor.hashsets.formats.base import EntryBatch
from opspoor.signals import SIGNALS
from opspoor.signals.vpdq import parse_vpdq


def _hex_length(name: str) -> int | None:
    s = SIGNALS.get(name)
    return None if s is None else s.hex_length


def _stored_text(name: str) -> bool:
    """A stored-only signal whose value is text, not fixed-width hex (a plugin's)."""
    s = SIGNALS.get(name)
    return s is not None and not s.computed and s.hex_length is None


# --- checking a batch ------------------------------------------------------------------------
_LOWER_HEX = b"0123456789abcdef"
_CONTROL = frozenset("\t\n\r\\")


def refused_entries(batch: EntryBatch) -> list[tuple[int, str]]:
    """(index, reason) of the entries the store cannot hold. Each signal column is checked in one
    C-speed pass; only a column that fails is looked at value by value."""
    bad: dict[int, str] = {}
    for name, values in batch.signals.items():
        if not column_ok(name, values):
            for i, v in enumerate(values):
                if v is not None and i not in bad and (reason := signal_problem(name, v)):
                    bad[i] = reason
    if not batch.signals or all(None in v for v in batch.signals.values()):
        for i, row in enumerate(
            zip(*batch.signals.values(), strict=True) if batch.signals else [()] * len(batch)
        ):
            if all(v is None for v in row) and i not in bad:
                bad[i] = "the entry has no hash"
    return sorted(bad.items())


def column_ok(name: str, values: list[str | None]) -> bool:
    given = values if None not in values else [v for v in values if v is not None]
    if not given:
        return True
    try:
        joined = "".join(given)  # type: ignore[arg-type]
    except TypeError:
        return False
    length = _hex_length(name)
    if name == "vpdq":
        return False  # parsed one by one
    if length is not None:
        return (
            len(joined) == length * len(given)
            and set(map(len, given)) == {length}  # type: ignore[arg-type]
            and joined.isascii()
            and not joined.encode("ascii").translate(None, _LOWER_HEX)
        )
    if _stored_text(name):
        return "" not in given and not _CONTROL.intersection(joined)
    return False


def signal_problem(name: str, value: object) -> str | None:
    """Why the store cannot hold ``value`` as ``name``, or None."""
    if not isinstance(value, str):
        return f"{name} value must be text, got {type(value).__name__}"
    if name == "vpdq":
        try:
            parse_vpdq(value)
        except SignalError as exc:
            return exc.message
        return None
    if _stored_text(name):
        if not value or _CONTROL.intersection(value):
            return f"{name} value is empty or holds control characters"
        return None
    length = _hex_length(name)
    if length is None:
        return f"unknown signal type {name!r}"
    if len(value) != length:
        return f"{name} value must be {length} hex characters, got {len(value)}"
    if not (value.isascii() and not value.encode("ascii").translate(None, _LOWER_HEX)):
        return f"{name} value is not lower-case hexadecimal: {value[:80]!r}"
    return None
