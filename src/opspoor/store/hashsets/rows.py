"""Rows of a batch formatted for the writer: COPY text, COPY BINARY and executemany tuples."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import chain, compress, repeat
from typing import Any

import orjson

from opspoor.errors import SignalError
from opspoor.hashsets.formats.arrays import ARRAY_HASHES, TEXT_FIELDS, ArrayBatch
from opspoor.hashsets.formats.base import EntryBatch
from opspoor.hashsets.model import (
    Category,
)
from opspoor.signals import get_signal
from opspoor.signals.vpdq import QUALITY_THRESHOLD, parse_vpdq
from opspoor.store.hashsets.copybinary import BINARY_COLUMNS, copy_binary
from opspoor.store.hashsets.schema import (
    _DERIVABLE,
    DERIVED_AS,
    ENTRY_COLUMNS,
    HASH_COLUMNS,
)


@dataclass(slots=True)
class _Rows:
    """One batch, ready for the writer: text or binary for COPY, or tuples for executemany."""

    entries: Any = None
    #: the ``entries`` columns ``entries`` gives, in order (COPY leaves out those NULL throughout)
    entry_columns: tuple[str, ...] = ENTRY_COLUMNS
    #: ``entries`` is a COPY BINARY payload (see ``copybinary``), not COPY text
    binary: bool = False
    signals: list[Any] = field(default_factory=list)
    #: number of signal rows in ``signals``
    signal_rows: int = 0
    #: (signal, value) that may repeat an earlier value of the load (see ``_DuplicateFilter``)
    candidates: list[tuple[str, str]] = field(default_factory=list)


def _vpdq_frames(value: str) -> list[str]:
    """The distinct frame hashes of a vPDQ text that are good enough to match on."""
    return list(dict.fromkeys(f.hash for f in parse_vpdq(value) if f.quality >= QUALITY_THRESHOLD))


# --- row formatting --------------------------------------------------------------------------
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_NULL = "\\N"
_COPY_BOOL = {None: _NULL, True: "t", False: "f"}


def _c(value: str | None) -> str:
    """A COPY text field. ``isprintable`` is false for tab, newline and CR: one C-speed scan
    decides for nearly every value that nothing needs escaping."""
    if value is None:
        return _NULL
    if value.isprintable() and "\\" not in value:
        return value
    return value.translate(_COPY_ESCAPES)


def _copy_texts(values: Sequence[str | None]) -> Iterable[str] | None:
    """A column of COPY text fields, checked for escapes in one pass over the whole column; None
    when every value is None."""
    if values.count(None) == len(values):
        return None
    joined = "".join(filter(None, values))
    if joined.isprintable() and "\\" not in joined:
        return [_NULL if v is None else v for v in values]
    return list(map(_c, values))


def _tags_json(tags: Sequence[tuple[str, ...]]) -> list[str | None] | None:
    """Tags as JSON lists (None without tags), or None when no entry has any."""
    if not any(tags):
        return None
    return [json.dumps(list(t), ensure_ascii=False) if t else None for t in tags]


#: put between the ``extra`` objects of a batch serialised in one call; orjson writes it as
#: ``,"\u0000split",``, which no object's own JSON holds outside a list of exactly that text
_SPLIT = "\x00split"
_SPLIT_JSON = ',"\\u0000split",'


def _extra_json(extras: Sequence[dict[str, Any]]) -> list[str | None] | None:
    """``extra`` as JSON text (None when empty), or None when no entry has any.

    One orjson call for the whole batch, split afterwards: called once per object, orjson spends
    most of its time allocating each result."""
    if not any(extras):
        return None
    try:
        joined = orjson.dumps(list(chain.from_iterable(zip(extras, repeat(_SPLIT))))).decode()
        texts: list[str | None] = joined[1 : -len(_SPLIT_JSON)].split(_SPLIT_JSON)  # type: ignore[assignment]
    except (TypeError, orjson.JSONEncodeError):  # integers beyond 64 bits, keys that are not text
        texts = []
    if len(texts) != len(extras):
        return [json.dumps(d, ensure_ascii=False, separators=(",", ":")) if d else None for d in extras]
    if not all(extras):
        texts = [t if d else None for t, d in zip(texts, extras, strict=True)]
    return texts


def _signal_columns(
    batch: EntryBatch, ids: Sequence[Any]
) -> Iterator[tuple[str, Sequence[Any], list[str], bool]]:
    """(signal, entry ids, values, derived) per ``entry_signals`` signal of a batch: the ids and
    values of the entries that carry it; vPDQ gives its frame hashes as derived values."""
    for name, values in batch.signals.items():
        if name in HASH_COLUMNS:
            continue  # columns of the entry row
        if name == "vpdq":
            eids: list[Any] = []
            frames: list[str] = []
            for eid, v in zip(ids, values, strict=True):
                if v is not None:
                    hashes = _vpdq_frames(v)
                    eids.extend([eid] * len(hashes))
                    frames.extend(hashes)
            yield name, eids, frames, True
        elif None not in values:
            yield name, ids, values, False  # type: ignore[misc]
        else:
            keep = [v is not None for v in values]
            yield name, list(compress(ids, keep)), list(compress(values, keep)), False  # type: ignore[arg-type]
    # matching-only values (augmentation hashes): checked here, one by one, as few entries carry them
    extra_ids: dict[str, list[Any]] = {}
    extra_values: dict[str, list[str]] = {}
    for eid, derived in zip(ids, batch.derived, strict=True):
        for sig, raw in derived.items():
            if sig not in _DERIVABLE:
                raise SignalError(f"derived {sig!r} values are not supported; only {', '.join(_DERIVABLE)}")
            checked = [get_signal(DERIVED_AS.get(sig, sig)).validate(v) for v in raw]
            extra_ids.setdefault(sig, []).extend([eid] * len(checked))
            extra_values.setdefault(sig, []).extend(checked)
    for sig, vals in extra_values.items():
        yield sig, extra_ids[sig], vals, True


def _category_columns(categories: Sequence[Category | None]) -> tuple[list[str | None], list[str | None]]:
    """Scheme and code columns. Categories are looked up by identity: readers share a few objects,
    and a dataclass ``__hash__`` would cost more than the rest of the row."""
    keys = list(map(id, categories))
    split = {
        k: (None, None) if c is None else (c.scheme, c.code)
        for k, c in dict(zip(keys, categories, strict=True)).items()
    }
    pairs = list(map(split.__getitem__, keys))
    return [p[0] for p in pairs], [p[1] for p in pairs]


#: COPY text of a bytea in hex form: the field ``\\x`` unescapes to the ``\x`` prefix
_BYTEA = "\\\\x"


def _copy_hashes(values: Sequence[str | None] | None) -> Iterable[str] | None:
    """A hash column (checked lower-case hex) as COPY text of bytea; None when no entry has one."""
    if values is None or values.count(None) == len(values):
        return None
    if None not in values:
        return map(_BYTEA.__add__, values)  # type: ignore[arg-type]
    return [_NULL if v is None else _BYTEA + v for v in values]


def _blob_column(values: Sequence[str | None] | None, nbytes: int) -> Iterable[bytes | None]:
    """A hash column (checked lower-case hex) as bytes, decoded in one call when all are there."""
    if values is None:
        return repeat(None)
    if None not in values:
        raw = bytes.fromhex("".join(values))  # type: ignore[arg-type]
        return [raw[i : i + nbytes] for i in range(0, len(raw), nbytes)]
    return [None if v is None else bytes.fromhex(v) for v in values]


def _copy_rows(h: int, batch: EntryBatch, lo: int) -> _Rows:
    """COPY text of a batch, built column by column with C-speed joins."""
    n = len(batch)
    ids = list(map(str, range(lo, lo + n)))
    scheme, code = _category_columns(batch.category)
    tags = _tags_json(batch.tags)
    extra = _extra_json(batch.extra)
    vpdq = batch.signals.get("vpdq")
    flag = _COPY_BOOL.__getitem__
    sizes = batch.size
    columns: dict[str, Iterable[str] | None] = {
        "id": ids,
        "hashset_id": repeat(str(h)),
        "external_id": _copy_texts(batch.external_id),
        "category_scheme": _copy_texts(scheme),
        "category_code": _copy_texts(code),
        "victim_identified": map(flag, batch.victim_identified),
        "offender_identified": map(flag, batch.offender_identified),
        "distributed": map(flag, batch.distributed),
        "series": _copy_texts(batch.series),
        "tags": None if tags is None else _copy_texts(tags),
        "source": _copy_texts(batch.source),
        "date_updated": _copy_texts(batch.date_updated),
        "size": map(str, sizes)
        if None not in sizes
        else [_NULL if s is None else str(int(s)) for s in sizes],
        "vpdq": None if vpdq is None else _copy_texts(vpdq),
        "extra": None if extra is None else _copy_texts(extra),
        **{name: _copy_hashes(batch.signals.get(name)) for name in HASH_COLUMNS},
    }
    # columns NULL throughout the batch are left out of the COPY (fewer fields to join and parse)
    given = {k: c for k, c in columns.items() if c is not None}
    rows = _Rows("\n".join(map("\t".join, zip(*given.values(), strict=False))) + "\n", tuple(given))
    for name, eids, values, derived in _signal_columns(batch, ids):
        rows.signal_rows += len(values)
        if values:
            rows.signals.append(
                "".join(
                    chain.from_iterable(
                        zip(eids, repeat(f"\t{h}\t{name}\t"), values, repeat("\tt\n" if derived else "\tf\n"))
                    )
                )
            )
    return rows


def _binary_rows(h: int, batch: ArrayBatch, lo: int) -> _Rows:
    """COPY BINARY of an ArrayBatch: it carries no ``entry_signals`` values."""
    return _Rows(copy_binary(batch, h, lo).data, BINARY_COLUMNS, binary=True)


def _array_tuple_rows(h: int, batch: ArrayBatch, lo: int) -> _Rows:
    """executemany parameters of an ArrayBatch: hashes as bytes straight from the arrays, ``extra``
    as the JSON text the reader wrote."""
    n = len(batch)
    codes = batch.category.tolist()
    flags = [[None if f < 0 else bool(f) for f in col] for col in batch.flags.T.tolist()]
    hashes = {}
    for k, (name, width) in enumerate(ARRAY_HASHES.items()):
        raw = batch.hashes[name].tobytes()
        given = batch.has[:, k].tolist()
        hashes[name] = [raw[i * width : (i + 1) * width] if g else None for i, g in enumerate(given)]
    external_id, series, date_updated, extra = batch.texts(*TEXT_FIELDS)
    victim, offender, distributed = flags
    columns: dict[str, Iterable[Any]] = {
        "id": range(lo, lo + n),
        "hashset_id": repeat(h),
        "external_id": external_id,
        "category_scheme": [None if c < 0 else "us-cat" for c in codes],
        "category_code": [None if c < 0 else str(c) for c in codes],
        "victim_identified": victim,
        "offender_identified": offender,
        "distributed": distributed,
        "series": series,
        "tags": repeat(None),
        "source": repeat(batch.source),
        "date_updated": date_updated,
        "size": [None if v < 0 else v for v in batch.size.tolist()],
        "vpdq": repeat(None),
        "extra": extra,
        **hashes,
    }
    entries = _in_entry_order(columns)
    return _Rows(entries)


def _tuple_rows(h: int, batch: EntryBatch, lo: int) -> _Rows:
    """executemany parameters of a batch."""
    n = len(batch)
    ids = range(lo, lo + n)
    scheme, code = _category_columns(batch.category)
    tags = _tags_json(batch.tags)
    extra = _extra_json(batch.extra)
    vpdq = batch.signals.get("vpdq")
    columns: dict[str, Iterable[Any]] = {
        "id": ids,
        "hashset_id": repeat(h),
        "external_id": batch.external_id,
        "category_scheme": scheme,
        "category_code": code,
        "victim_identified": batch.victim_identified,
        "offender_identified": batch.offender_identified,
        "distributed": batch.distributed,
        "series": batch.series,
        "tags": repeat(None) if tags is None else tags,
        "source": batch.source,
        "date_updated": batch.date_updated,
        "size": batch.size,
        "vpdq": repeat(None) if vpdq is None else vpdq,
        "extra": repeat(None) if extra is None else extra,
        **{name: _blob_column(batch.signals.get(name), nbytes) for name, nbytes in HASH_COLUMNS.items()},
    }
    entries = _in_entry_order(columns)
    rows = _Rows(entries)
    for name, eids, values, derived in _signal_columns(batch, ids):
        rows.signal_rows += len(values)
        rows.signals.append(list(zip(eids, repeat(h), repeat(name), values, repeat(derived))))
    return rows


def _in_entry_order(columns: dict[str, Iterable[Any]]) -> list[tuple[Any, ...]]:
    """executemany rows of columns named by ``ENTRY_COLUMNS`` (the one list of them), in its order."""
    return list(zip(*(columns[c] for c in ENTRY_COLUMNS), strict=False))
