"""What a hash set can hold: the checks every entry's signal values pass before the store takes them
(fixed-width lower-case hex, a parseable vPDQ text, a PhotoDNA text without control characters)."""

from __future__ import annotations

from opspoor.errors import SignalError
from opspoor.hashsets.formats.base import EntryBatch
from opspoor.signals.vpdq import parse_vpdq

#: hex length of each fixed-width signal
HEX_LENGTH: dict[str, int] = {"md5": 32, "sha1": 40, "sha256": 64, "pdq": 64, "vpdq": 64}

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
    length = HEX_LENGTH.get(name)
    if name == "vpdq":
        return False  # parsed one by one
    if length is not None:
        return (
            len(joined) == length * len(given)
            and set(map(len, given)) == {length}  # type: ignore[arg-type]
            and joined.isascii()
            and not joined.encode("ascii").translate(None, _LOWER_HEX)
        )
    if name == "photodna":
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
    if name == "photodna":
        if not value or _CONTROL.intersection(value):
            return "photodna value is empty or holds control characters"
        return None
    length = HEX_LENGTH.get(name)
    if length is None:
        return f"unknown signal type {name!r}"
    if len(value) != length:
        return f"{name} value must be {length} hex characters, got {len(value)}"
    if not (value.isascii() and not value.encode("ascii").translate(None, _LOWER_HEX)):
        return f"{name} value is not lower-case hexadecimal: {value[:80]!r}"
    return None
