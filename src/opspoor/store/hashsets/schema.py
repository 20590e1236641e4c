"""The hash-set tables, the columns an entry is stored in, and the records the store hands out."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import numpy as np
from sqlalchemy import Index, Table

from opspoor.hashsets.model import (
    Category,
    Entry,
    HashSetInfo,
)
from opspoor.signals import get_signal, identity_signals, signals_by_index
from opspoor.store.models import ChangeRow, ConflictRow, EntryRow, EntrySignalRow, HashSetRow

HASHSETS = cast(Table, HashSetRow.__table__)
ENTRIES = cast(Table, EntryRow.__table__)
SIGNALS = cast(Table, EntrySignalRow.__table__)
CONFLICTS = cast(Table, ConflictRow.__table__)
CHANGES = cast(Table, ChangeRow.__table__)


def _index(name: str) -> Index:
    return next(ix for ix in SIGNALS.indexes if ix.name == name)


DEFAULT_TENANT = "default"
#: signals stored as binary columns of ``entries`` (bytes per value, from the signal registry); the
#: others are ``entry_signals`` rows. The names are the table's columns (a migration adds one).
HASH_COLUMNS: dict[str, int] = {
    n: get_signal(n).hex_length // 2  # type: ignore[operator]
    for n in ("md5", "sha1", "sha256", "pdq")
}


def row_key_signals() -> tuple[str, ...]:
    """Signals found by equal value that are ``entry_signals`` rows (PhotoDNA, a plugin's), as the
    registry has them now."""
    return tuple(n for n in signals_by_index("exact") if n not in HASH_COLUMNS)


def key_signals() -> tuple[str, ...]:
    """Signals whose equal values are looked for on import: a shared value of different categories
    is a conflict (vPDQ frames are not looked at)."""
    return (*HASH_COLUMNS, *row_key_signals())


def row_keys_sql() -> str:
    """:func:`row_key_signals` as an SQL list (names are checked by ``signals.register``)."""
    return ", ".join(f"'{c}'" for c in row_key_signals()) or "NULL"


#: signals whose equal values make two entries the same item (a duplicate): cryptographic identities
#: only; two files may share a perceptual hash (PDQ, PhotoDNA) and still be two media items
IDENTITY_SIGNALS: tuple[str, ...] = identity_signals()
assert set(IDENTITY_SIGNALS) <= set(HASH_COLUMNS), "an identity signal needs its column of entries"
_IDENTITY_SQL = ", ".join(f"'{c}'" for c in IDENTITY_SIGNALS)
ENTRY_COLUMNS = (
    "id",
    "hashset_id",
    "external_id",
    "category_scheme",
    "category_code",
    "victim_identified",
    "offender_identified",
    "distributed",
    "series",
    "tags",
    "source",
    "date_updated",
    "size",
    "vpdq",
    "extra",
    *HASH_COLUMNS,
)
#: signals an entry may carry matching-only (derived) values of: ``pdq_lq`` holds low-quality
#: augmentation PDQs, which the matcher counts only within its tighter low-quality distance;
#: ``local`` the original's local features (signals.local, one text value per entry)
_DERIVABLE = ("pdq", "pdq_lq", "local")
#: derived-only signals: the signal type their values are checked as, and their hex length
DERIVED_AS = {"pdq_lq": "pdq"}
DERIVED_HEX_LENGTH: dict[str, int] = {
    d: get_signal(like).hex_length  # type: ignore[misc]
    for d, like in DERIVED_AS.items()
}
SIGNAL_COLUMNS = ("entry_id", "hashset_id", "signal", "value", "derived")


# --- records ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class HashSetRecord:
    id: int
    name: str
    tenant: str
    kind: str
    source: str | None
    distance: int
    created_at: datetime

    @property
    def info(self) -> HashSetInfo:
        return HashSetInfo(self.name, self.kind, self.source, self.distance)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class HashSetCounts:
    entries: int
    #: signal name -> number of entries carrying it (derived values such as vPDQ frames excluded)
    signals: dict[str, int]
    #: ``scheme:code`` (or ``none``) -> number of entries
    categories: dict[str, int]
    conflicts: int


@dataclass(slots=True)
class ImportResult:
    added: int = 0
    duplicates: int = 0
    conflicts: int = 0
    rejected: int = 0
    #: what decided the duplicates: the strongest hash each shares (``sha256`` > ``sha1`` > ``md5``)
    duplicates_by: dict[str, int] = field(default_factory=dict)
    #: entries whose category code their scheme does not define, by category (``us-cat:8``); imported
    unknown_categories: dict[str, int] = field(default_factory=dict)
    #: uncategorised entries (``us-cat:0``) left out of a set of known material: nobody has looked at them
    uncategorised: int = 0

    @property
    def read(self) -> int:
        return self.added + self.duplicates + self.rejected + self.uncategorised


@dataclass(frozen=True, slots=True)
class EntryRef:
    """What a match needs to say about the entry it hit."""

    hashset: str
    entry_id: int
    external_id: str | None
    category: Category | None
    kind: str = "known"


@dataclass(frozen=True, slots=True)
class ConflictRecord:
    signal: str
    value: str
    entry: EntryRef
    other: EntryRef
    recorded_at: datetime


@dataclass(frozen=True, slots=True)
class Change:
    id: int
    hashset_id: int
    op: str
    entry_id: int | None
    entry_id_end: int | None
    at: datetime


RejectHandler = Callable[[int, Entry, str], None]


# --- small helpers ---------------------------------------------------------------------------
def _chunks(items: Sequence[Any], n: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


def _now() -> datetime:
    return datetime.now(UTC)


def _utc(t: datetime) -> datetime:
    """SQLite hands timestamps back without a zone; they were written in UTC."""
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t


def _category(scheme: str | None, code: str | None) -> Category | None:
    return None if scheme is None or code is None else Category(scheme, code)


def _hex_bytes(value: str, nbytes: int) -> bytes | None:
    """The bytes of a hex value of ``nbytes``, or None when it is not one."""
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        return None
    return raw if len(raw) == nbytes else None


def hex_rows(values: Sequence[str], nbytes: int) -> np.ndarray:
    """Canonical (lower-case) hex values -> an (N, nbytes) uint8 array, as the indexes take them."""
    if not values:
        return np.zeros((0, nbytes), np.uint8)
    return np.frombuffer(bytes.fromhex("".join(values)), np.uint8).reshape(len(values), nbytes)
