"""The fast import path: VICS records decoded as columns, batches loaded into the store, indexes
built after a large load, duplicates found from the candidates a Bloom filter picks.

Each fast step is checked against the careful path it must agree with. Every hash here is
synthetic (random hex); nothing refers to real material.
"""

from __future__ import annotations

import base64
import io
import json
import random
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opspoor.errors import FormatError
from opspoor.hashsets.formats import EntryBatch, read_entries
from opspoor.hashsets.formats import vics as vics_module
from opspoor.hashsets.formats.base import RecordError
from opspoor.hashsets.formats.vics import media_batch, media_entry
from opspoor.hashsets.model import Category, Entry
from opspoor.store import import_entries, iter_entries, list_conflicts, open_store
from opspoor.store.db import Store
from opspoor.store.hashsets import _DuplicateFilter, import_batches
from opspoor.store.hashsets import importer as store_importer
from opspoor.store.hashsets import writers as store_writers

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CONTEXT = "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/Default/$metadata#Media"


def hexs(n: int, alphabet: str = "0123456789abcdef") -> st.SearchStrategy[str]:
    return st.text(alphabet, min_size=n, max_size=n)


# Values of every kind a Media property may hold in the field, well formed or not: each record is
# read by the fast path (columns) and by media_entry, which must agree.
_DNA = bytes((3 * i + 7) % 256 for i in range(144))
#: one PhotoDNA as lists spell it: base64 (wrapped), decimal bytes, upper-case hex
DNA_SPELLINGS = [
    base64.b64encode(_DNA).decode()[:96] + "\n" + base64.b64encode(_DNA).decode()[96:],
    ",".join(map(str, _DNA)),
    _DNA.hex().upper(),
]
values: dict[str, st.SearchStrategy[Any]] = {
    "MediaID": st.integers(0, 10**6) | st.sampled_from(["A-1", "", None, True, 1.5]),
    "Category": st.sampled_from([0, 1, 5, "2", "", None, " 3", 6, "x", True, 1.0]),
    "MD5": hexs(32) | hexs(32, "0123456789ABCDEF") | st.sampled_from(["", None, "g" * 32, "a" * 31, 5]),
    "SHA1": hexs(40) | st.sampled_from([None, "", "A" * 40]),
    "SHA256": st.none() | hexs(64),
    "PhotoDNA": st.none() | st.sampled_from(["QUJD REVG", "1,2,3", "", "$$$", *DNA_SPELLINGS]),
    "MediaSize": st.integers(-1, 2**70) | st.sampled_from([None, "", "12", "x", 3.0]),
    "VictimIdentified": st.sampled_from([True, False, None, "true", "False", "", "yes", 1, 2, "maybe"]),
    "IsDistributed": st.sampled_from([True, "false", None, 0]),
    "Series": st.sampled_from([None, "", "  Series A ", 7, ["x"]]),
    "Tags": st.sampled_from([None, "", "a, b", ["x", " y "], ["x", 1], 3]),
    "DateUpdated": st.sampled_from([None, "", "2024-01-01T00:00:00Z", 5]),
    "IsPrecategorized": st.sampled_from(["true", True, None, 2**64 + 1, {"n": [1, 2**65]}]),
    "Notes": st.text(max_size=5) | st.sampled_from(["é\u2028\t\\", 1.5e300]),
    "MediaFiles": st.none() | st.just([{"FileName": "a.jpg", "Size": 1}]) | st.just("x"),
    "OpspoorCategory": st.sampled_from([None, "", "uk:A", "ncmec:B2", "nope:1"]),
    "md5": hexs(32),  # a mapped property, unusually spelled
    "AlternativeHashes": st.none()
    | st.lists(
        st.fixed_dictionaries(
            {
                "HashName": st.sampled_from(["PDQ", "PhotoDNA", "MD5", "pdq", "Fuzzy"]),
                "HashValue": hexs(64) | st.sampled_from(["QUJD", None, "", *DNA_SPELLINGS]),
            }
        ),
        max_size=2,
    ),
}
#: values of the usual shape, which the fast path must take as they are
usual: dict[str, st.SearchStrategy[Any]] = {
    "MediaID": st.integers(0, 10**6),
    "Category": st.integers(0, 5) | st.sampled_from(["1", "", None]),
    "MD5": hexs(32) | hexs(32, "0123456789ABCDEF"),
    "SHA1": hexs(40),
    "SHA256": st.none() | hexs(64),
    "PhotoDNA": st.sampled_from([None, *DNA_SPELLINGS]),
    "MediaSize": st.none() | st.integers(0, 2**40),
    "VictimIdentified": st.sampled_from([True, False, None, "true", "False", ""]),
    "IsDistributed": st.sampled_from([True, "false", None]),
    "Series": st.sampled_from([None, "", "  Series A "]),
    "Tags": st.sampled_from([None, "", "a, b", ["x", " y "]]),
    "DateUpdated": st.sampled_from([None, "", "2024-01-01T00:00:00Z"]),
    "IsPrecategorized": st.sampled_from(["true", True, None]),
    "Notes": st.text(max_size=5) | st.sampled_from(["é\u2028\t\\", [1, {"a": 2.5}]]),
    "MediaFiles": st.none() | st.just([{"FileName": "a.jpg", "Size": 1}]),
    "OpspoorCategory": st.sampled_from([None, "", "uk:A", "ncmec:B2"]),
    "AlternativeHashes": st.lists(
        st.fixed_dictionaries({"HashName": st.just("PDQ"), "HashValue": hexs(64)})
        | st.fixed_dictionaries(
            {"HashName": st.just("PhotoDNA"), "HashValue": st.sampled_from(DNA_SPELLINGS)}
        ),
        max_size=1,
    ),
}
COMMON = ["MediaID", "Category", "MD5", "SHA1", "MediaSize", "VictimIdentified", "IsDistributed"]
COMMON += ["Series", "Tags", "DateUpdated", "IsPrecategorized", "AlternativeHashes"]


@st.composite
def media_records(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Records that share one shape (as a real file does), now and then with odd values."""
    keys = draw(st.lists(st.sampled_from(sorted(values)), max_size=3, unique=True))
    shape = [k for k in COMMON if draw(st.booleans()) or k in ("MediaID", "MD5")]
    shape += [k for k in keys if k not in shape]
    n = draw(st.integers(1, 6))
    records = []
    for _ in range(n):
        odd = draw(st.integers(0, 5)) == 0
        records.append({k: draw(values[k] if odd or k not in usual else usual[k]) for k in shape})
    return records


def careful(records: list[dict[str, Any]]) -> list[Entry] | None:
    """What media_entry makes of each record, or None if one is invalid."""
    try:
        return [media_entry(r, None, "src") for r in records]
    except RecordError:
        return None


@SETTINGS
@given(records=media_records())
def test_media_batch_agrees_with_media_entry(records: list[dict[str, Any]]) -> None:
    expected = careful(json.loads(json.dumps(records)))  # as json decodes the file
    try:
        decoded = orjson.loads(json.dumps(records))  # as the fast path decodes it
    except orjson.JSONDecodeError:
        return  # (a float beyond double range) the fast path hands the run to json
    try:
        batch = media_batch(decoded, None, "src")
    except RecordError:
        batch = None
    if batch is None:
        return  # the careful path reads these records (and names the one at fault)
    assert expected is not None, "the fast path took a record media_entry refuses"
    assert list(batch.entries()) == expected


@SETTINGS
@given(
    records=st.lists(media_records(), min_size=1, max_size=4).map(lambda rs: [r for g in rs for r in g]),
    indent=st.sampled_from([None, 1]),
)
def test_vics_reader_fast_and_careful_paths_agree(records: list[dict[str, Any]], indent: int | None) -> None:
    doc = json.dumps({"@odata.context": CONTEXT, "value": records}, indent=indent, ensure_ascii=False)
    results = []
    for run in (vics_module.RUN, 0):  # RUN 0: every record is read one by one
        original = vics_module.RUN
        vics_module.RUN = run
        try:
            errors: list[FormatError] = []
            got = list(read_entries(io.BytesIO(doc.encode()), on_error=errors.append))
        finally:
            vics_module.RUN = original
        results.append((got, [(e.record, e.line, e.detail) for e in errors]))
    assert results[0] == results[1]


def _vics_file(records: list[str]) -> bytes:
    body = ",\n".join(records)
    return f'{{"@odata.context": "{CONTEXT}", "value": [\n{body}\n]}}\n'.encode()


def test_the_usual_shape_takes_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(1)
    rows = [
        json.dumps(
            {
                "MediaID": i,
                "Category": i % 6,
                "MD5": rng.randbytes(16).hex().upper(),
                "VictimIdentified": "true",
                "Series": "",
                "Tags": "",
                "IsPrecategorized": "true",
                "AlternativeHashes": [{"HashName": "PDQ", "HashValue": rng.randbytes(32).hex()}],
            }
        )
        for i in range(1, 3001)
    ]
    slow = 0
    real = vics_module._slow

    def counting(*args: Any, **kw: Any) -> Iterator[EntryBatch]:
        nonlocal slow
        slow += 1
        return real(*args, **kw)

    monkeypatch.setattr(vics_module, "_slow", counting)
    batches = list(read_entries(io.BytesIO(_vics_file(rows))).batches())
    assert sum(map(len, batches)) == 3000 and slow == 1  # only the last record is read alone
    last = list(batches[-1].entries())[-1]
    assert last.external_id == "3000" and last.category == Category("us-cat", "0")
    assert set(last.signals) == {"md5", "pdq"} and last.signals["md5"].islower()


def test_integers_beyond_64_bits_stay_exact() -> None:
    big = 2**64 + 1
    rows = [f'{{"MediaID": {i}, "MD5": "{i:032x}", "Count": {big}}}' for i in range(1, 50)]
    got = list(read_entries(io.BytesIO(_vics_file(rows))))
    assert len(got) == 49 and all(e.extra == {"vics": {"Count": big}} for e in got)


def test_a_syntax_error_inside_a_run_names_its_record_and_line() -> None:
    rows = [f'{{"MediaID": {i}, "MD5": "{i:032x}"}}' for i in range(1, 200)]
    rows[120] = rows[120].replace(", ", " ")
    with pytest.raises(FormatError) as info:
        list(read_entries(io.BytesIO(_vics_file(rows))))
    assert (info.value.record, info.value.line) == (121, 122) and "invalid JSON" in info.value.detail


# --- EntryBatch --------------------------------------------------------------------------------
def test_entry_batch_round_trip_extend_and_select() -> None:
    a = [Entry({"md5": "a" * 32}, category=Category("uk", "A"), tags=("x",)), Entry({"sha1": "b" * 40})]
    b = [Entry({"pdq": "c" * 64, "md5": "d" * 32}, size=3, extra={"k": 1})]
    batch = EntryBatch.from_entries(a)
    assert list(batch.entries()) == a
    batch.extend(EntryBatch.from_entries(b))
    assert list(batch.entries()) == a + b and len(batch) == 3
    assert batch.signals["pdq"] == [None, None, "c" * 64]
    assert list(batch.select([True, False, True]).entries()) == [a[0], b[0]]


# --- the store ---------------------------------------------------------------------------------
@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = open_store(db_url)
    yield s
    s.close()


def synthetic(n: int, seed: int, repeat_every: int = 0) -> list[Entry]:
    """Random entries; with ``repeat_every`` each such entry repeats an earlier MD5 (a duplicate
    or, with another category, a conflict)."""
    rng = random.Random(seed)
    out: list[Entry] = []
    for i in range(n):
        md5, sha1 = rng.randbytes(16).hex(), rng.randbytes(20).hex()
        # a PhotoDNA value too, so the load writes entry_signals rows (and drops their value index)
        photodna = rng.randbytes(144).hex()
        if repeat_every and i and i % repeat_every == 0:
            earlier = out[rng.randrange(i)].signals
            # the same file: its hashes agree
            md5, sha1, photodna = earlier["md5"], earlier["sha1"], earlier["photodna"]
        cat = Category("us-cat", str(1 + rng.randrange(2)))
        signals = {"md5": md5, "sha1": sha1, "photodna": photodna}
        out.append(Entry(signals, category=cat, external_id=str(i)))
    return out


def outcome(store: Store, name: str) -> tuple[list[tuple[Any, ...]], set[tuple[str, str, str]]]:
    entries = [(e.external_id, e.category, e.signals) for e in iter_entries(store, name)]
    conflicts = {(c.signal, c.entry.external_id, c.other.external_id) for c in list_conflicts(store, name)}
    return entries, conflicts


def value_index_present(store: Store) -> bool:
    with store.read() as conn:
        return "ix_entry_signals_value" in {
            ix["name"] for ix in sa.inspect(conn).get_indexes("entry_signals")
        }


@pytest.mark.parametrize("rebuild", [False, True])
def test_batches_and_entries_import_alike(
    store: Store, monkeypatch: pytest.MonkeyPatch, db_url: str, rebuild: bool
) -> None:
    """Per-entry import, column import with the value index kept up to date, and with it rebuilt
    after the load (and the duplicate search on Bloom candidates) give the same set."""
    monkeypatch.setattr(store_importer, "BATCH", 300)
    if rebuild:
        monkeypatch.setattr(store_writers, "REBUILD_MIN_ROWS", 0)
    entries = synthetic(2000, seed=4, repeat_every=7)
    r1 = import_entries(store, "one", iter(entries))  # a plain iterator: grouped into batches
    batches = [EntryBatch.from_entries(entries[i : i + 128]) for i in range(0, len(entries), 128)]
    r2 = import_batches(store, "two", batches)
    assert (r1.added, r1.duplicates, r1.conflicts) == (r2.added, r2.duplicates, r2.conflicts)
    assert r1.duplicates > 0 and r1.conflicts > 0 and r1.added + r1.duplicates == 2000
    assert outcome(store, "one") == outcome(store, "two")
    assert value_index_present(store)
    # a second import into the now filled set searches by grouping, and finds every repeat
    r3 = import_entries(store, "two", synthetic(300, seed=4, repeat_every=7))
    assert r3.added == 0 and r3.duplicates == 300


def test_duplicate_search_without_candidates_when_the_filter_saturates(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    entries = synthetic(1500, seed=8, repeat_every=5)
    expected = import_entries(store, "a", entries)
    monkeypatch.setattr(_DuplicateFilter, "MIN_CANDIDATES", 0)
    monkeypatch.setattr(_DuplicateFilter, "MAX_SHARE", 0.0)
    got = import_entries(store, "b", entries)
    assert (got.added, got.duplicates, got.conflicts) == (
        expected.added,
        expected.duplicates,
        expected.conflicts,
    )
    assert outcome(store, "a") == outcome(store, "b")


def test_the_filter_names_every_repeat() -> None:
    rng = random.Random(3)
    f = _DuplicateFilter()
    seen: set[str] = set()
    false = 0
    for _ in range(20):
        values = [rng.randbytes(16).hex() for _ in range(2000)]
        values += rng.sample(sorted(seen), min(50, len(seen))) + values[:20]  # earlier and in-batch repeats
        repeats = {v for v in values if v in seen} | {v for v, k in Counter(values).items() if k > 1}
        found = {v for _, v in f.candidates(EntryBatch.from_entries([Entry({"md5": v}) for v in values]))}
        assert repeats <= found
        false += len(found - repeats)
        seen.update(values)
    assert f.values == 20 * 2020 + 19 * 50 and false <= 2  # false candidates are rare at this fill


def test_a_failing_large_load_keeps_the_index(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_importer, "BATCH", 100)
    monkeypatch.setattr(store_writers, "REBUILD_MIN_ROWS", 0)
    import_entries(store, "kept", synthetic(50, seed=1))

    def failing() -> Iterator[Entry]:
        for i, e in enumerate(synthetic(1000, seed=2), 1):
            if i == 700:
                raise FormatError("broken record", record=i)
            yield e

    with pytest.raises(FormatError, match="record 700"):
        import_entries(store, "lost", failing())
    assert value_index_present(store)
    assert len(outcome(store, "kept")[0]) == 50
    with store.read() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM entries")).scalar_one() == 50


def test_a_busy_table_keeps_its_index_during_the_load(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """PostgreSQL: when another session reads entry_signals, the load does not wait on it to drop
    the index (two seconds at most) and goes on updating the index instead."""
    monkeypatch.setattr(store_writers, "REBUILD_MIN_ROWS", 0)
    store = open_store(pg_url)
    try:
        import_entries(store, "first", synthetic(10, seed=1))
        reader = store.engine.connect()
        tx = reader.begin()
        reader.execute(sa.text("SELECT count(*) FROM entry_signals"))  # holds ACCESS SHARE
        done = threading.Event()
        result: list[Any] = []
        t = threading.Thread(
            target=lambda: (result.append(import_entries(store, "s", synthetic(500, 3))), done.set())
        )
        t.start()
        assert done.wait(30), "the import waited for the reader"
        t.join()
        tx.rollback()
        reader.close()
        assert result[0].added == 500 and value_index_present(store)
    finally:
        store.close()


@pytest.mark.parametrize("records", [3, 6000])  # a short run (decoded records), a long one (arrays)
def test_a_nul_in_a_record_names_that_record_and_the_rest_is_read(records: int) -> None:
    """The fast paths check no text: a run holding a NUL character (``\\u0000`` in the JSON) is read
    record by record, so the careful path names the record and reads the others (Hypothesis found a
    ``Notes`` of ``"\\x00"`` ending the whole read with a ``RecordError``)."""
    bad = records // 2 + 1
    rows = [
        json.dumps({"MediaID": i, "Category": 1, "MD5": f"{i:032x}", "Notes": "\x00" if i == bad else "ok"})
        for i in range(1, records + 1)
    ]
    errors: list[FormatError] = []
    got = list(read_entries(io.BytesIO(_vics_file(rows)), on_error=errors.append))
    assert [e.external_id for e in got] == [str(i) for i in range(1, records + 1) if i != bad]
    assert [(e.record, "extra.vics.Notes: contains a NUL" in str(e)) for e in errors] == [(bad, True)]
