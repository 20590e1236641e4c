"""Bulk import of ArrayBatch items (NumPy columns, COPY BINARY on PostgreSQL) next to EntryBatch
items: the same rows, duplicates, conflicts, ids and reject numbers either way, on SQLite and
PostgreSQL.

Every hash here is synthetic (random bytes); nothing refers to real material.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from opspoor.errors import FormatError
from opspoor.hashsets.formats import read_entries
from opspoor.hashsets.formats.arrays import ARRAY_HASHES, FLAG_FIELDS, TEXT_FIELDS, ArrayBatch
from opspoor.hashsets.formats.base import EntryBatch
from opspoor.hashsets.formats.vics import CONTEXT_V2, media_entry
from opspoor.hashsets.model import Category, Entry
from opspoor.store import changes_since, hashset_counts, iter_entries, list_conflicts, open_store
from opspoor.store import hashsets as store_hashsets
from opspoor.store.db import Store
from opspoor.store.hashsets import ImportResult, _DuplicateFilter, import_batches, import_entries
from opspoor.store.hashsets import importer as store_importer
from opspoor.store.hashsets import rows as store_rows
from records import comparable

US = [Category("us-cat", str(n)) for n in range(6)]


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = open_store(db_url)
    yield s
    s.close()


def array_batch(entries: Sequence[Entry]) -> ArrayBatch:
    """Entries (us-cat or no category, only the four hash columns, one source) as an ArrayBatch."""
    n = len(entries)
    sources = {e.source for e in entries}
    assert len(sources) <= 1
    text = bytearray()
    spans = np.full((n, len(TEXT_FIELDS), 2), -1, np.int64)
    hashes = {name: np.zeros((n, width), np.uint8) for name, width in ARRAY_HASHES.items()}
    has = np.zeros((n, len(ARRAY_HASHES)), bool)
    for i, e in enumerate(entries):
        assert set(e.signals) <= set(ARRAY_HASHES) and not e.tags and not e.derived
        for k, name in enumerate(ARRAY_HASHES):
            if name in e.signals:
                hashes[name][i] = np.frombuffer(bytes.fromhex(e.signals[name]), np.uint8)
                has[i, k] = True
        for f, field in enumerate(TEXT_FIELDS):
            if field == "extra":
                value = json.dumps(e.extra, ensure_ascii=False, separators=(",", ":")) if e.extra else None
            else:
                value = getattr(e, field)
            if value is not None:
                raw = value.encode()
                spans[i, f] = (len(text), len(text) + len(raw))
                text += raw
    return ArrayBatch(
        np.frombuffer(bytes(text), np.uint8),
        hashes,
        has,
        np.array([-1 if e.category is None else int(e.category.code) for e in entries], np.int8),
        np.array(
            [[-1 if (v := getattr(e, f)) is None else int(v) for f in FLAG_FIELDS] for e in entries], np.int8
        ).reshape(n, len(FLAG_FIELDS)),
        np.array([-1 if e.size is None else e.size for e in entries], np.int64),
        spans,
        next(iter(sources), None),
    )


def stored(store: Store, name: str) -> list[tuple[object, ...]]:
    return [comparable(e) for e in iter_entries(store, name)]


def conflicts(store: Store, name: str) -> list[tuple[str, str, str | None, str | None]]:
    return sorted(
        (c.signal, c.value, c.entry.external_id, c.other.external_id) for c in list_conflicts(store, name)
    )


def outcome(r: ImportResult) -> tuple[int, int, int, int]:
    return (r.added, r.duplicates, r.conflicts, r.rejected)


def varied(n: int, seed: int, *, source: str | None = "Hotline é") -> list[Entry]:
    """Entries with every field present or absent, text that COPY text would escape, non-ASCII."""
    rng = random.Random(seed)
    texts = [None, "Série ☃ 日本", "tab\there\nnew line\\back\rslash", "plain", ""]
    extras: list[dict[str, object]] = [
        {},
        {"note": 'ü "quoted" \\ \n end', "n": [1, 2.5, None, True, False], "nested": {"日本": "語"}},
        {"MediaFiles": [{"FileName": "a\tb.jpg", "FileSize": 2**40}]},
    ]
    out = []
    for i in range(n):
        names = [name for name in ARRAY_HASHES if rng.random() < 0.5] or [rng.choice(list(ARRAY_HASHES))]
        out.append(
            Entry(
                {name: rng.randbytes(ARRAY_HASHES[name]).hex() for name in names},
                category=rng.choice([None, *US[1:]]),  # us-cat:0 is not imported as known
                victim_identified=rng.choice([None, True, False]),
                offender_identified=rng.choice([None, True, False]),
                distributed=rng.choice([None, True, False]),
                series=rng.choice(texts),
                source=source,
                date_updated=rng.choice([None, "2024-05-01T12:00:00Z"]),
                external_id=rng.choice([None, f"ext-{i}", f"média-{i}"]),
                size=rng.choice([None, 0, 12345, 2**40]),
                extra=rng.choice(extras),
            )
        )
    return out


# --- the same rows ---------------------------------------------------------------------------
@pytest.mark.parametrize("source", ["Hotline é", None])
def test_array_batches_store_what_entry_batches_store(
    store: Store, source: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    entries = varied(60, seed=1, source=source)
    # every field is both present and absent somewhere, so NULLs and values are both compared
    assert {e.category is None for e in entries} == {True, False}
    assert {e.size is None for e in entries} == {True, False}
    assert {bool(e.extra) for e in entries} == {True, False}
    r_entry = import_batches(store, "entry", [EntryBatch.from_entries(entries)])
    # small batches are gathered to BATCH entries: 7 alone, then 1 + 52 in one COPY
    monkeypatch.setattr(store_importer, "BATCH", 5)
    parts = [entries[:7], entries[7:8], entries[8:]]
    payloads: list[int] = []
    encode = store_hashsets.copy_binary

    def spy(batch: ArrayBatch, h: int, lo: int) -> np.ndarray:
        payloads.append(len(batch))
        return encode(batch, h, lo)

    monkeypatch.setattr(store_rows, "copy_binary", spy)
    r_array = import_batches(store, "array", [array_batch(p) for p in parts])
    assert payloads == ([] if store.is_sqlite else [7, 53])  # PostgreSQL takes them as COPY BINARY
    assert outcome(r_array) == outcome(r_entry) == (60, 0, 0, 0)
    assert stored(store, "array") == stored(store, "entry") == [comparable(e) for e in entries]
    assert hashset_counts(store, "array") == hashset_counts(store, "entry")


def test_array_batches_of_other_sources_keep_theirs(store: Store) -> None:
    runs = [varied(3, seed=10 + k, source=src) for k, src in enumerate(["a", "a", None, "b", "a"])]
    import_batches(store, "entry", [EntryBatch.from_entries(r) for r in runs])
    import_batches(store, "array", [array_batch(r) for r in runs])
    assert stored(store, "array") == stored(store, "entry")
    assert [e.source for e in iter_entries(store, "array")] == [e.source for r in runs for e in r]


def test_an_entry_with_one_hash_and_nothing_else(store: Store) -> None:
    md5 = random.Random(2).randbytes(16).hex()
    import_batches(store, "s", [array_batch([Entry({"md5": md5})])])
    assert stored(store, "s") == [comparable(Entry({"md5": md5}))]


# --- duplicates and conflicts across both kinds of batch -------------------------------------
def repeats(seed: int) -> tuple[list[Entry], list[Entry]]:
    """Two groups of entries; the second repeats and contradicts the first on every hash column,
    and repeats itself."""
    rng = random.Random(seed)
    md5, sha1, sha256, pdq = (rng.randbytes(w).hex() for w in ARRAY_HASHES.values())
    m = [rng.randbytes(16).hex() for _ in range(6)]
    first = [
        Entry({"md5": md5}, category=US[1], external_id="a"),
        Entry({"sha1": sha1, "md5": m[0]}, category=US[2], external_id="b"),
        Entry({"sha256": sha256}, external_id="c"),  # uncategorised
        Entry({"pdq": pdq, "md5": m[1]}, category=US[3], external_id="d"),
        Entry({"md5": m[2]}, category=US[1], external_id="e"),
        Entry({"md5": m[2]}, category=US[1], external_id="e2"),  # repeat within the group
    ]
    second = [
        Entry({"md5": md5, "sha256": rng.randbytes(32).hex()}, category=US[1], external_id="a2"),  # dup of a
        Entry({"sha1": sha1}, category=US[4], external_id="b2"),  # conflicts with b
        Entry({"sha256": sha256}, category=US[5], external_id="c2"),  # categorises c: kept
        Entry({"pdq": pdq, "md5": m[3]}, category=US[5], external_id="d2"),  # conflicts with d
        Entry({"pdq": pdq}, external_id="d3"),  # shares only d's PDQ: an entry of its own
        Entry({"md5": m[4]}, external_id="f"),
        Entry({"md5": m[4], "sha1": rng.randbytes(20).hex()}, external_id="f2"),  # repeat within the group
    ]
    return first, second


@pytest.mark.parametrize("arrays_first", [True, False])
def test_duplicates_and_conflicts_across_array_and_entry_batches(store: Store, arrays_first: bool) -> None:
    first, second = repeats(seed=3)
    reference = import_batches(
        store, "entries", [EntryBatch.from_entries(first), EntryBatch.from_entries(second)]
    )
    assert outcome(reference) == (10, 3, 2, 0)
    mixed: list[EntryBatch | ArrayBatch] = (
        [array_batch(first), EntryBatch.from_entries(second)]
        if arrays_first
        else [EntryBatch.from_entries(first), array_batch(second)]
    )
    assert outcome(import_batches(store, "mixed", mixed)) == outcome(reference)
    assert stored(store, "mixed") == stored(store, "entries")
    assert conflicts(store, "mixed") == conflicts(store, "entries")
    assert [(s, a, b) for s, _, a, b in conflicts(store, "mixed")] == [
        ("pdq", "d", "d2"),
        ("sha1", "b", "b2"),
    ]


def test_repeats_between_array_batches(store: Store) -> None:
    first, second = repeats(seed=4)
    reference = import_batches(store, "entries", [EntryBatch.from_entries(first + second)])
    r = import_batches(store, "arrays", [array_batch(first), array_batch(second)])
    assert outcome(r) == outcome(reference) == (10, 3, 2, 0)
    assert stored(store, "arrays") == stored(store, "entries")
    assert conflicts(store, "arrays") == conflicts(store, "entries")


def test_array_batches_into_a_set_that_has_entries(store: Store) -> None:
    """No candidate filter here: the whole set is grouped."""
    first, second = repeats(seed=5)
    import_batches(store, "s", [array_batch(first)])
    import_batches(store, "t", [EntryBatch.from_entries(first)])
    r = import_batches(store, "s", [array_batch(second)])
    assert outcome(r) == outcome(import_batches(store, "t", [EntryBatch.from_entries(second)]))
    assert (r.duplicates, r.conflicts) == (2, 2)
    assert stored(store, "s") == stored(store, "t")
    assert conflicts(store, "s") == conflicts(store, "t")


def test_the_duplicate_filter_keys_hashes_alike_in_both_forms() -> None:
    rng = random.Random(6)
    entries = [
        Entry(
            {name: rng.randbytes(w).hex() for name, w in ARRAY_HASHES.items() if rng.random() < 0.7}
            or {"md5": rng.randbytes(16).hex()}
        )
        for _ in range(200)
    ]
    values = sorted((name, v) for e in entries for name, v in e.signals.items())
    f = _DuplicateFilter()
    assert f.candidates(array_batch(entries)) == []
    assert sorted(f.candidates(EntryBatch.from_entries(entries))) == values
    g = _DuplicateFilter()
    assert g.candidates(EntryBatch.from_entries(entries)) == []
    assert sorted(g.candidates(array_batch(entries))) == values
    # the same bytes as another signal type are another value
    md5s = [Entry({"md5": e.signals["pdq"][:32]}) for e in entries if "pdq" in e.signals]
    assert g.candidates(array_batch(md5s)) == []


# --- a mixed stream: ids, counts, reject numbers ---------------------------------------------
def mixed_stream(bad: Entry) -> list[EntryBatch | ArrayBatch]:
    entries = varied(11, seed=7)
    for i, e in enumerate(entries):
        e.external_id = f"r{i + 1}"  # the record number
    return [
        EntryBatch.from_entries(entries[0:2]),
        array_batch(entries[2:5]),
        EntryBatch.from_entries([entries[5], bad, entries[7]]),
        array_batch(entries[8:10]),
        array_batch([]),
        EntryBatch.from_entries(entries[10:11]),
    ]


BAD = Entry({"md5": "AB" * 16}, external_id="r7")  # upper-case hex: refused, as record 7


def test_a_mixed_stream_keeps_order_ids_counts_and_reject_numbers(store: Store) -> None:
    rejects: list[tuple[int, str | None, str]] = []
    seen: list[int] = []
    r = import_batches(
        store,
        "s",
        mixed_stream(BAD),
        progress=seen.append,
        on_reject=lambda n, e, why: rejects.append((n, e.external_id, why)),
    )
    assert outcome(r) == (10, 0, 0, 1) and r.read == 11
    assert [(n, x) for n, x, _ in rejects] == [(7, "r7")] and "lower-case" in rejects[0][2]
    assert seen[-1] == 11 and seen == sorted(seen)
    with store.read() as conn:
        rows = conn.execute(sa.text("SELECT id, external_id FROM entries ORDER BY id")).all()
    ids = [i for i, _ in rows]
    assert [x for _, x in rows] == [f"r{n}" for n in range(1, 12) if n != 7]  # in stream order
    assert ids == list(range(ids[0], ids[0] + 10))
    adds = [(c.entry_id, c.entry_id_end) for c in changes_since(store) if c.op == "add"]
    assert adds == [(ids[0], ids[-1])]


def test_a_refused_entry_after_array_batches_names_its_record(store: Store) -> None:
    with pytest.raises(FormatError) as err:
        import_batches(store, "s", mixed_stream(BAD))
    assert err.value.record == 7
    with store.read() as conn:  # all or nothing
        assert conn.execute(sa.text("SELECT count(*) FROM entries")).scalar_one() == 0


# --- end to end: a VICS file read by the compiled reader -------------------------------------
def test_a_large_vics_file_imports_what_the_careful_path_reads(store: Store, tmp_path: Path) -> None:
    rng = random.Random(7)
    records: list[dict[str, object]] = []
    for i in range(1, 8001):
        r: dict[str, object] = {"MediaID": i, "Category": i % 6, "MD5": rng.randbytes(16).hex().upper()}
        if i % 3:
            r["AlternativeHashes"] = [{"HashName": "PDQ", "HashValue": rng.randbytes(32).hex()}]
        if i % 5 == 0:
            # the same file as an earlier entry (its PDQ too), in the same or another category
            earlier = records[i // 2]
            r["MD5"] = earlier["MD5"]
            r.pop("AlternativeHashes", None)
            if "AlternativeHashes" in earlier:
                r["AlternativeHashes"] = earlier["AlternativeHashes"]
        r |= {"VictimIdentified": "true" if i % 2 else "false", "Series": " Zoë " if i % 7 == 0 else ""}
        r |= {"MediaSize": i * 1000, "DateUpdated": "2024-01-01T00:00:00Z", "IsPrecategorized": "true"}
        records.append(r)
    body = ",\n".join(json.dumps(r, ensure_ascii=False) for r in records)
    path = tmp_path / "large.json"
    path.write_text(f'{{"@odata.context": "{CONTEXT_V2}#Media", "value": [\n{body}\n]}}\n', encoding="utf-8")
    assert any(isinstance(b, ArrayBatch) for b in read_entries(path).batches())
    result = import_entries(store, "file", read_entries(path, source="Hotline"))
    careful = [media_entry(r, None, "Hotline") for r in records]
    expected = import_batches(store, "careful", [EntryBatch.from_entries(careful)])
    assert outcome(result) == outcome(expected) and result.duplicates > 0 and result.conflicts > 0
    assert stored(store, "file") == stored(store, "careful")
    assert conflicts(store, "file") == conflicts(store, "careful")


def test_binary_columns_are_the_entry_columns_an_array_batch_has() -> None:
    from opspoor.store.hashsets.copybinary import BINARY_COLUMNS

    # the encoder writes every field an ArrayBatch holds, no other (BINARY_COLUMNS names their order)
    held = {"id", "hashset_id", "category_scheme", "category_code", "source", "size"}
    assert set(BINARY_COLUMNS) == held | {*TEXT_FIELDS, *FLAG_FIELDS, *ARRAY_HASHES}
    assert set(BINARY_COLUMNS) <= set(store_hashsets.ENTRY_COLUMNS)
