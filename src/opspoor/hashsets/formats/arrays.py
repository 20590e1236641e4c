"""Entries as NumPy arrays: what the compiled VICS reader yields, and what the store copies in binary.

An :class:`ArrayBatch` holds the same entries an :class:`~opspoor.hashsets.formats.base.EntryBatch`
would, for the usual shape of a large list: the four fixed-width hashes as bytes, a Project VIC
category, three flags, a size, and four text fields as (start, end) spans into one UTF-8 buffer.
No Python object is made per entry, which is what lets a bulk import of millions of entries keep
up with the database. Anything else in a list (PhotoDNA, vPDQ, tags, files, cases) is read the
careful way, as ``EntryBatch``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import orjson

from opspoor.hashsets.formats.base import EntryBatch
from opspoor.hashsets.model import Category, Entry
from opspoor.signals import get_signal

#: the hash columns an ArrayBatch holds, with their width in bytes (the order of ``has``)
ARRAY_HASHES: dict[str, int] = {
    n: get_signal(n).hex_length // 2  # type: ignore[operator]
    for n in ("md5", "sha1", "sha256", "pdq")
}
#: the text fields, in the order of ``spans``' second axis
TEXT_FIELDS: tuple[str, ...] = ("external_id", "series", "date_updated", "extra")
#: flag columns, in the order of ``flags``' second axis
FLAG_FIELDS: tuple[str, ...] = ("victim_identified", "offender_identified", "distributed")

_US_CAT = [Category("us-cat", str(n)) for n in range(6)]
_FLAG: dict[int, bool | None] = {-1: None, 0: False, 1: True}


@dataclass(slots=True)
class ArrayBatch:
    """Entries as columns of arrays (n entries).

    ``hashes[name]`` is ``uint8[n, width]`` (zeros where ``has[:, k]`` is false, ``k`` the
    position of ``name`` in :data:`ARRAY_HASHES`); ``category`` is the Project VIC category
    (``us-cat`` 0-5, -1 for none); ``flags`` is -1 / 0 / 1 for none / false / true; ``size`` is -1
    for none; ``spans[i, f]`` is the (start, end) of text field ``f`` in ``text``, start -1 for
    none. ``extra`` spans hold the entry's ``extra`` as compact JSON.
    """

    text: np.ndarray  # uint8
    hashes: dict[str, np.ndarray]
    has: np.ndarray  # bool[n, 4]
    category: np.ndarray  # int8[n]
    flags: np.ndarray  # int8[n, 3]
    size: np.ndarray  # int64[n]
    spans: np.ndarray  # int64[n, 4, 2]
    source: str | None = None

    def __len__(self) -> int:
        return len(self.category)

    def select(self, keep: np.ndarray) -> ArrayBatch:
        """The entries where ``keep`` (bool[n]) is true; their text spans still point into ``text``."""
        return ArrayBatch(
            self.text,
            {name: h[keep] for name, h in self.hashes.items()},
            self.has[keep],
            self.category[keep],
            self.flags[keep],
            self.size[keep],
            self.spans[keep],
            self.source,
        )

    def hex_values(self, name: str) -> list[str | None]:
        """A hash column as lower-case hex (None where an entry lacks it)."""
        k = list(ARRAY_HASHES).index(name)
        width = ARRAY_HASHES[name] * 2
        joined = self.hashes[name].tobytes().hex()
        given = self.has[:, k].tolist()
        return [joined[i * width : (i + 1) * width] if g else None for i, g in enumerate(given)]

    def texts(self, *fields: str) -> list[list[str | None]]:
        """Text fields, decoded (None where an entry has none), one list per field."""
        raw = self.text.tobytes()
        whole = raw.decode("ascii") if raw.isascii() else None  # then byte offsets are character offsets
        out = []
        for f in fields:
            spans = self.spans[:, TEXT_FIELDS.index(f)].tolist()
            if whole is not None:
                out.append([None if s < 0 else whole[s:e] for s, e in spans])
            else:
                out.append([None if s < 0 else raw[s:e].decode() for s, e in spans])
        return out

    def entries(self) -> Iterator[Entry]:
        return self.to_entry_batch().entries()

    def to_entry_batch(self) -> EntryBatch:
        """The same entries as an :class:`EntryBatch` (for SQLite and per-entry readers)."""
        n = len(self)
        signals = {name: self.hex_values(name) for k, name in enumerate(ARRAY_HASHES) if self.has[:, k].any()}
        flags = [list(map(_FLAG.__getitem__, col)) for col in self.flags.T.tolist()]
        # orjson reads these exactly: the compiled reader writes no floats and no integer beyond 64 bits
        external_id, series, date_updated, extra_json = self.texts(*TEXT_FIELDS)
        extra = [{} if t is None else orjson.loads(t) for t in extra_json]
        return EntryBatch(
            signals,
            [None if c < 0 else _US_CAT[c] for c in self.category.tolist()],
            flags[0],
            flags[1],
            flags[2],
            series,
            [()] * n,
            [self.source] * n,
            date_updated,
            external_id,
            [None if s < 0 else s for s in self.size.tolist()],
            extra,
            [{} for _ in range(n)],
        )
