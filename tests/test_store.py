"""The store on SQLite and PostgreSQL: schema and migrations, hash sets, bulk import (atomicity,
duplicates, conflicts, rejects), reading back, and what the index loads.

Every hash here is synthetic (random hex); nothing refers to real material.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from opspoor.errors import AlreadyExists, FormatError, NotFound, StoreError
from opspoor.hashsets.model import Category, Entry
from opspoor.signals.vpdq import VpdqFrame, format_vpdq
from opspoor.store import (
    changes_since,
    create_hashset,
    entry_counts,
    entry_details,
    get_hashset,
    hashset_counts,
    import_entries,
    iter_entries,
    list_conflicts,
    list_hashsets,
    load_signal_arrays,
    open_store,
    remove_entries,
    remove_hashset,
    resolve_url,
)
from opspoor.store.db import Store, alembic_config, head_revision
from opspoor.store.hashsets import importer as store_importer
from opspoor.store.models import Base
from records import comparable

US1, US2 = Category("us-cat", "1"), Category("us-cat", "2")


def rhex(rng: random.Random, nbytes: int) -> str:
    return rng.randbytes(nbytes).hex()


def synthetic(n: int, seed: int = 0, *, pdq: bool = True) -> list[Entry]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        signals = {"md5": rhex(rng, 16), "sha1": rhex(rng, 20)}
        if pdq:
            signals["pdq"] = rhex(rng, 32)
        out.append(Entry(signals, category=Category("us-cat", str(1 + i % 5)), external_id=str(i + 1)))
    return out


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = open_store(db_url)
    yield s
    s.close()


# --- schema ----------------------------------------------------------------------------------
def test_migration_creates_the_schema_the_models_describe(store: Store) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    with store.read() as conn:
        tables = set(sa.inspect(conn).get_table_names())
        assert {"hashsets", "entries", "entry_signals", "conflicts", "changes", "id_blocks"} <= tables
        assert MigrationContext.configure(conn).get_current_revision() == head_revision()
        diffs = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), every_table())
    assert diffs == []


def every_table() -> sa.MetaData:
    """The store's models and the review workspace's shared tables (migration 0008), which the
    review box defines (the store may not import it)."""
    from opspoor.review.decisions import metadata as review_decisions
    from opspoor.review.shared import shared as review_shared

    both = sa.MetaData(naming_convention=Base.metadata.naming_convention)
    for md in (Base.metadata, review_decisions, review_shared):
        for table in md.tables.values():
            table.to_metadata(both)
    return both


def test_alembic_upgrade_head_on_an_empty_database(db_url: str) -> None:
    from alembic import command

    command.upgrade(alembic_config(resolve_url(db_url)), "head")
    with open_store(db_url) as s:  # opens without migrating again, and works
        create_hashset(s, "a")
        assert [h.name for h in list_hashsets(s)] == ["a"]


def index_method(conn: sa.Connection) -> str | None:
    """The access method of the (hashset_id, id) index of entries on PostgreSQL (None on SQLite)."""
    if conn.dialect.name != "postgresql":
        return None
    return conn.execute(
        sa.text(
            "SELECT a.amname FROM pg_class c JOIN pg_am a ON a.oid = c.relam"
            " WHERE c.relname = 'ix_entries_hashset_id_id'"
        )
    ).scalar_one()


def test_migration_0003_moves_hashes_to_columns_and_back(db_url: str) -> None:
    """A store written at revision 0002 (every hash an ``entry_signals`` row) reads the same after
    the upgrade (hashes in ``entries`` columns), and the downgrade puts the rows back."""
    from alembic import command

    rng = random.Random(11)
    md5, sha1, pdq, frame = rhex(rng, 16), rhex(rng, 20), rhex(rng, 32), rhex(rng, 32)
    dna = rng.randbytes(144)
    url = resolve_url(db_url)
    command.upgrade(alembic_config(url), "0002")
    engine = sa.create_engine(url)
    old_rows = {
        (1, "md5", md5, False),
        (1, "sha1", sha1, False),
        (1, "photodna", "QUJD", False),  # kept as given by an older opspoor, and no PhotoDNA at all
        (2, "photodna", base64.b64encode(dna).decode(), False),  # kept as given: base64
        (2, "pdq", pdq, False),
        (2, "pdq", frame, True),  # a derived (augmentation) value stays a row
    }
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO hashsets (id, tenant, name, kind, distance)"
                " VALUES (1, 'default', 's', 'known', 31)"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO entries (id, hashset_id, external_id, category_scheme, category_code)"
                " VALUES (:i, 1, :x, 'us-cat', '1')"
            ),
            [{"i": 1, "x": "a"}, {"i": 2, "x": "b"}],
        )
        conn.execute(
            sa.text(
                "INSERT INTO entry_signals (entry_id, hashset_id, signal, value, derived)"
                " VALUES (:e, 1, :s, :v, :d)"
            ),
            [{"e": e, "s": sig, "v": v, "d": d} for e, sig, v, d in old_rows],
        )
    command.upgrade(alembic_config(url), "head")
    with open_store(db_url) as store:
        assert [(e.external_id, e.signals) for e in iter_entries(store, "s")] == [
            ("a", {"md5": md5, "sha1": sha1, "photodna": "QUJD"}),
            ("b", {"photodna": base64.b64encode(dna).decode(), "pdq": pdq}),
        ]
        # the index takes an old spelling as its bytes, and leaves out what is no PhotoDNA
        ids, values = load_signal_arrays(store, ["s"], "photodna")
        assert (ids.tolist(), [bytes(v) for v in values]) == ([2], [dna])
        ids, values = load_signal_arrays(store, ["s"], "pdq")
        assert sorted(zip(ids.tolist(), (bytes(v).hex() for v in values), strict=True)) == sorted(
            [(2, pdq), (2, frame)]
        )
        assert hashset_counts(store, "s").signals == {"md5": 1, "pdq": 1, "photodna": 2, "sha1": 1}
        with store.read() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM entry_signals")).scalar_one() == 3
            assert index_method(conn) == ("brin" if db_url.startswith("postgres") else None)
    command.downgrade(alembic_config(url), "0002")
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT entry_id, signal, value, derived FROM entry_signals")).all()
        assert {(e, sig, v, bool(d)) for e, sig, v, d in rows} == old_rows
        assert "md5" not in {c["name"] for c in sa.inspect(conn).get_columns("entries")}
        assert index_method(conn) == ("btree" if db_url.startswith("postgres") else None)
    engine.dispose()


def test_unknown_schema_revision_is_refused(db_url: str) -> None:
    with open_store(db_url) as s, s.write() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = 'ffff'"))
    with pytest.raises(StoreError, match="does not know"):
        open_store(db_url)


def test_resolve_url() -> None:
    assert resolve_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert resolve_url("sqlite:///x.db") == "sqlite:///x.db"
    p = resolve_url("some/file.sqlite")
    assert p.startswith("sqlite:///") and p.endswith("/some/file.sqlite") and Path(p[10:]).is_absolute()


def test_default_url_from_env_and_data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("OPSPOOR_DB", str(tmp_path / "env.sqlite"))
    assert resolve_url(None) == f"sqlite:///{tmp_path / 'env.sqlite'}"
    monkeypatch.delenv("OPSPOOR_DB")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    url = resolve_url(None)
    assert url == f"sqlite:///{tmp_path / 'xdg' / 'opspoor' / 'opspoor.sqlite'}"
    assert (tmp_path / "xdg" / "opspoor").stat().st_mode & 0o777 == 0o700


# --- hash sets -------------------------------------------------------------------------------
def test_create_list_show_remove(store: Store) -> None:
    create_hashset(store, "known-a", source="hotline", distance=20)
    create_hashset(store, "ignore-b", kind="ignorable")
    with pytest.raises(AlreadyExists):
        create_hashset(store, "known-a")
    with pytest.raises(StoreError):
        create_hashset(store, "bad", kind="maybe")
    sets = list_hashsets(store)
    assert [(h.name, h.kind, h.distance, h.source) for h in sets] == [
        ("ignore-b", "ignorable", 31, None),
        ("known-a", "known", 20, "hotline"),
    ]
    import_entries(store, "known-a", synthetic(30))
    assert entry_counts(store) == {"known-a": 30, "ignore-b": 0}
    counts = hashset_counts(store, "known-a")
    assert counts.entries == 30
    assert counts.signals == {"md5": 30, "pdq": 30, "sha1": 30}
    assert counts.categories == {f"us-cat:{c}": 6 for c in "12345"}
    assert remove_hashset(store, "known-a") == 30
    with pytest.raises(NotFound):
        get_hashset(store, "known-a")
    with store.read() as conn:  # nothing of the set is left behind
        assert conn.execute(sa.text("SELECT count(*) FROM entry_signals")).scalar_one() == 0
        assert conn.execute(sa.text("SELECT count(*) FROM entries")).scalar_one() == 0
    assert [c.op for c in changes_since(store)] == ["add", "drop"]


def test_import_keeps_categories_flags_and_odd_text(store: Store) -> None:
    rng = random.Random(7)
    frames = [VpdqFrame(i, 40 if i == 2 else 90, rhex(rng, 32), i * 1.0) for i in range(4)]
    frames.append(VpdqFrame(4, 90, frames[0].hash, 4.0))  # a repeated frame hash
    entries = [
        Entry(
            {
                "md5": rhex(rng, 16),
                "sha1": rhex(rng, 20),
                "sha256": rhex(rng, 32),
                "photodna": rhex(rng, 144),
            },
            category=Category("uk", "A"),
            victim_identified=True,
            offender_identified=False,
            distributed=None,
            series="series\twith tab\nand newline \\ backslash",
            tags=("a,b", "ü", "tab\there"),
            source="hotline ß",
            date_updated="2024-01-02T03:04:05Z",
            external_id="ext\\1",
            size=2**40,
            extra={"vics": {"IsPrecategorized": True, "Nested": [1, "x\ty"]}},
        ),
        Entry({"pdq": rhex(rng, 32)}, category=Category("ncmec", "B2"), external_id="2"),
        Entry({"vpdq": format_vpdq(frames)}, category=Category("inhope", "baseline")),
        Entry({"md5": rhex(rng, 16)}),  # no category, no flags
    ]
    result = import_entries(store, "s", entries, source="hotline ß")
    assert (result.added, result.duplicates, result.conflicts, result.rejected) == (4, 0, 0, 0)
    back = list(iter_entries(store, "s"))
    assert [comparable(e) for e in back] == [comparable(e) for e in entries]
    # vPDQ frames are matchable values of their own: distinct hashes of quality >= 50
    ids, values = load_signal_arrays(store, ["s"], "vpdq")
    want = {frames[i].hash for i in (0, 1, 3)}
    assert {bytes(v).hex() for v in values} == want and len(values) == 3
    assert set(ids.tolist()) == {next(iter(entry_details(store, ids.tolist())))}
    counts = hashset_counts(store, "s")
    assert counts.signals == {"md5": 2, "pdq": 1, "photodna": 1, "sha1": 1, "sha256": 1, "vpdq": 1}
    assert counts.categories == {"inhope:baseline": 1, "ncmec:B2": 1, "none": 1, "uk:A": 1}


def test_kind_of_an_existing_set_must_match(store: Store) -> None:
    import_entries(store, "s", synthetic(3), kind="ignorable")
    with pytest.raises(StoreError, match="ignorable"):
        import_entries(store, "s", synthetic(3, seed=1), kind="known")
    with pytest.raises(NotFound):
        import_entries(store, "missing", synthetic(3), create=False)


# --- atomicity -------------------------------------------------------------------------------
def failing_reader(entries: list[Entry], fail_at: int) -> Iterator[Entry]:
    for i, e in enumerate(entries, 1):
        if i == fail_at:
            raise FormatError("MD5 is not hexadecimal", where="list.json", record=i, line=i + 1)
        yield e


@pytest.mark.parametrize("existing", [False, True])
def test_a_reader_error_mid_file_leaves_nothing(
    store: Store, monkeypatch: pytest.MonkeyPatch, existing: bool
) -> None:
    monkeypatch.setattr(store_importer, "BATCH", 100)  # several batches are written before the error
    if existing:
        import_entries(store, "s", synthetic(10, seed=9))
    before = [comparable(e) for e in iter_entries(store, "s")] if existing else None
    with pytest.raises(FormatError, match="record 500"):
        import_entries(store, "s", failing_reader(synthetic(1000), 500))
    if existing:
        assert [comparable(e) for e in iter_entries(store, "s")] == before
        assert [c.op for c in changes_since(store)] == ["add"]
    else:
        assert list_hashsets(store) == []
    with store.read() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM entries")).scalar_one() == (10 if existing else 0)
    # the store is usable afterwards, and ids are not handed out twice
    r = import_entries(store, "s", synthetic(250, seed=3))
    assert r.added == 250
    ids, _ = load_signal_arrays(store, ["s"], "md5")
    assert len(np.unique(ids)) == len(ids) == 250 + (10 if existing else 0)


def test_an_entry_the_store_refuses_aborts_or_is_reported(store: Store) -> None:
    good = synthetic(5)
    bad = [
        Entry({"md5": "ABCDEF0123456789ABCDEF0123456789"}),  # not canonical (upper case)
        Entry({"md5": "zz" * 16}),
        Entry({"sha1": "ab" * 10}),  # wrong length
        Entry({}),
        Entry({"sha3": "ab" * 16}),
    ]
    with pytest.raises(FormatError, match="record 7"):
        import_entries(store, "s", [*good, good[0], bad[0], *synthetic(3, seed=1)])
    assert list_hashsets(store) == []
    seen: list[tuple[int, str]] = []
    r = import_entries(store, "s", [*good, *bad], on_reject=lambda rec, e, why: seen.append((rec, why)))
    assert (r.added, r.rejected) == (5, 5)
    assert [rec for rec, _ in seen] == [6, 7, 8, 9, 10]
    assert "hex" in seen[0][1] and "hex" in seen[1][1] and "40" in seen[2][1]
    assert "no hash" in seen[3][1] and "sha3" in seen[4][1]


# --- duplicates and conflicts ----------------------------------------------------------------
def test_duplicates_fold_and_conflicts_keep_both(store: Store) -> None:
    rng = random.Random(5)
    m = [rhex(rng, 16) for _ in range(8)]
    s = [rhex(rng, 20) for _ in range(8)]
    p = rhex(rng, 32)
    first = [
        Entry({"md5": m[0]}, category=US1, external_id="a"),
        Entry({"md5": m[1], "pdq": p}, category=US1, external_id="b"),
        Entry({"md5": m[2]}, external_id="c"),  # uncategorised
    ]
    assert import_entries(store, "s", first).added == 3
    second = [
        Entry({"md5": m[0], "sha1": s[0]}, category=US1, external_id="a2"),  # dup of a, brings sha1
        Entry({"md5": m[0]}, category=US2, external_id="a3"),  # conflict with a
        Entry({"md5": m[3], "pdq": p}, category=US2, external_id="b2"),  # same PDQ, other category
        Entry({"md5": m[2]}, category=US1, external_id="c2"),  # categorises c: kept, no conflict
        Entry({"md5": m[1]}, external_id="b3"),  # uncategorised repeat of b: duplicate
        Entry({"md5": m[4]}, category=US1, external_id="d"),
        Entry({"md5": m[4]}, category=US1, external_id="d2"),  # repeat inside the file
        Entry({"sha1": s[0]}, category=US1, external_id="a4"),  # repeats a2, itself folded into a
    ]
    r = import_entries(store, "s", second)
    assert (r.added, r.duplicates, r.conflicts) == (4, 4, 2)
    kept = {e.external_id: e for e in iter_entries(store, "s")}
    assert sorted(kept) == ["a", "a3", "b", "b2", "c", "c2", "d"]
    assert kept["a"].signals == {"md5": m[0], "sha1": s[0]}  # folded in from a2
    conflicts = {(c.signal, c.entry.external_id, c.other.external_id) for c in list_conflicts(store, "s")}
    assert conflicts == {("md5", "a", "a3"), ("pdq", "b", "b2")}
    c = next(c for c in list_conflicts(store, "s") if c.signal == "pdq")
    assert (c.value, c.entry.category, c.other.category) == (p, US1, US2)
    assert hashset_counts(store, "s").conflicts == 2
    # importing the same list again adds nothing
    r = import_entries(store, "s", second)
    assert (r.added, r.duplicates, r.conflicts) == (0, 8, 0)
    # the older entry that gained a value is announced to index followers
    adds = [(c.entry_id, c.entry_id_end) for c in changes_since(store) if c.op == "add"]
    a_id = next(e for e in entry_details(store, range(1, 50)).values() if e.external_id == "a").entry_id
    assert (a_id, a_id) in adds


@pytest.mark.parametrize("in_one_import", [True, False])
def test_sha256_and_photodna_repeats_fold_and_conflict(store: Store, in_one_import: bool) -> None:
    """Repeats of a hash column (SHA-256) and of an ``entry_signals`` value (PhotoDNA), found by
    the candidate search of a load into an empty set or by grouping a set that has entries."""
    rng = random.Random(9)
    sha, dna, dna2, md5 = rhex(rng, 32), rhex(rng, 144), rhex(rng, 144), rhex(rng, 16)
    first = [
        Entry({"sha256": sha}, category=US1, external_id="a"),
        Entry({"photodna": dna}, category=US1, external_id="b"),
    ]
    second = [
        Entry({"sha256": sha, "photodna": dna2}, category=US1, external_id="a2"),  # dup of a
        Entry({"photodna": dna, "md5": md5}, category=US2, external_id="b2"),  # conflicts with b
    ]
    if in_one_import:
        r = import_entries(store, "s", first + second)
    else:
        import_entries(store, "s", first)
        r = import_entries(store, "s", second)
    assert (r.duplicates, r.conflicts) == (1, 1)
    kept = {e.external_id: e.signals for e in iter_entries(store, "s")}
    assert kept == {
        "a": {"sha256": sha, "photodna": dna2},
        "b": {"photodna": dna},
        "b2": {"md5": md5, "photodna": dna},
    }
    conflicts = [
        (c.signal, c.value, c.entry.external_id, c.other.external_id) for c in list_conflicts(store, "s")
    ]
    assert conflicts == [("photodna", dna, "b", "b2")]


def test_conflicts_are_per_set(store: Store) -> None:
    e = synthetic(1)[0]
    import_entries(store, "one", [e])
    other = Entry(dict(e.signals), category=Category("us-cat", "5"))
    assert import_entries(store, "two", [other]).conflicts == 0
    assert list_conflicts(store, "two") == []


# --- reading for the index -------------------------------------------------------------------
def test_load_signal_arrays_and_entry_details(store: Store) -> None:
    a, b = synthetic(120, seed=1), synthetic(80, seed=2, pdq=False)
    import_entries(store, "a", a)
    import_entries(store, "b", b, kind="ignorable")
    ids, values = load_signal_arrays(store, ["a", "b"], "md5", chunk=50)
    assert ids.dtype == np.int64 and values.dtype == np.uint8 and values.shape == (200, 16)
    got = {bytes(v).hex(): int(i) for i, v in zip(ids, values, strict=True)}
    assert set(got) == {e.signals["md5"] for e in a + b}
    ids, values = load_signal_arrays(store, ["b"], "pdq")
    assert ids.shape == (0,) and values.shape == (0, 32)
    ids, values = load_signal_arrays(store, ["a"], "pdq")
    details = entry_details(store, [*ids.tolist(), 10**12])
    assert len(details) == 120
    by_ext = {e.external_id: e for e in a}
    for i, v in zip(ids, values, strict=True):
        ref = details[int(i)]
        assert (ref.hashset, ref.kind) == ("a", "known")
        assert by_ext[ref.external_id].signals["pdq"] == bytes(v).hex()
        assert ref.category == by_ext[ref.external_id].category
    b_md5 = by_ext_md5 = {e.signals["md5"]: e for e in b}
    assert all(details.get(got[m]) is None for m in b_md5)  # only asked for set a's ids
    assert (
        entry_details(store, [got[next(iter(by_ext_md5))]])[got[next(iter(by_ext_md5))]].kind == "ignorable"
    )
    with pytest.raises(NotFound):
        load_signal_arrays(store, ["nope"], "md5")


def test_remove_entries_by_id_and_value(store: Store) -> None:
    entries = synthetic(10)
    import_entries(store, "s", entries)
    ids, values = load_signal_arrays(store, ["s"], "md5")
    by_md5 = {bytes(v).hex(): int(i) for i, v in zip(ids, values, strict=True)}
    target = [by_md5[entries[0].signals["md5"]], by_md5[entries[1].signals["md5"]]]
    gone = remove_entries(
        store, "s", entry_ids=[target[0]], signal="sha1", values=[entries[1].signals["sha1"], "00" * 20]
    )
    assert gone == sorted(target)
    left = [e.external_id for e in iter_entries(store, "s")]
    assert left == [e.external_id for e in entries[2:]]
    assert [(c.op, c.entry_id) for c in changes_since(store)][1:] == [("remove", i) for i in sorted(target)]
    last = changes_since(store)[-1].id
    assert changes_since(store, last) == []


def test_iter_entries_streams_in_chunks(store: Store) -> None:
    entries = synthetic(95)
    import_entries(store, "s", entries)
    back = list(iter_entries(store, "s", chunk=10))
    assert [comparable(e) for e in back] == [comparable(e) for e in entries]


def test_timestamps_are_utc(store: Store) -> None:
    import_entries(store, "s", synthetic(1))
    hs = get_hashset(store, "s")
    assert hs.created_at.tzinfo is not None
    assert abs((hs.created_at - datetime.now(UTC)).total_seconds()) < 600
    assert all(c.at.tzinfo is not None for c in changes_since(store))
