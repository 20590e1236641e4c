"""The signal registry is the one place that defines a signal: a stored-only signal registered by a
plugin (here a 16-byte "testhash": one class and one ``register`` call, in this file) is checked,
imported (a CSV column, the service's entries route), loaded and matched exactly through the store,
the index, ``opspoor match`` and ``POST /v1/match`` with no other edit; PhotoDNA is such a signal."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from opspoor.cli import app as cli_app
from opspoor.errors import SignalError
from opspoor.hashsets.formats.base import AmbiguousHash, canonical_signal, hex_type, hex_types
from opspoor.hashsets.model import ENTRY_SIGNALS, Category, Entry, RecordError
from opspoor.index import ExactIndex
from opspoor.signals import (
    SIGNALS,
    SignalType,
    exact_widths,
    get_signal,
    hex_lengths,
    identity_signals,
    indexed_hex_lengths,
    register,
    signals_by_index,
    unregister,
)
from opspoor.store import (
    Store,
    entry_details,
    hashset_counts,
    import_entries,
    iter_entries,
    list_conflicts,
    load_signal_arrays,
    open_store,
)
from opspoor.store.hashsets import HASH_COLUMNS, IDENTITY_SIGNALS, key_signals
from test_service import add_entries, create_set, eventually, match_values, running

runner = CliRunner()


class TestHash(SignalType):
    """A stored-only signal of 16 bytes, matched by equal value."""

    __test__ = False
    name = "testhash"
    media = frozenset({"any"})
    hex_length = 32
    index = "exact"
    computed = False

    @classmethod
    def distance(cls, a: str, b: str) -> int:
        return 0 if a == b else 1


@pytest.fixture
def testhash() -> Iterator[type[SignalType]]:
    register(TestHash)
    try:
        yield TestHash
    finally:
        unregister(TestHash.name)


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = open_store(db_url)
    yield s
    s.close()


def _hex(k: int) -> str:
    return format(k, "032x")


def test_the_registry_describes_every_signal() -> None:
    assert hex_lengths() == {"md5": 32, "sha1": 40, "sha256": 64, "pdq": 64, "photodna": 288}
    assert indexed_hex_lengths() == {**hex_lengths(), "vpdq": 64}  # vPDQ's index holds frame hashes
    assert signals_by_index("exact") == ("md5", "sha1", "sha256", "photodna")
    assert signals_by_index("hamming") == ("pdq", "vpdq")
    assert identity_signals() == IDENTITY_SIGNALS == ("md5", "sha1", "sha256")
    assert HASH_COLUMNS == {"md5": 16, "sha1": 20, "sha256": 32, "pdq": 32}
    assert key_signals() == ("md5", "sha1", "sha256", "pdq", "photodna")
    assert ENTRY_SIGNALS == ("md5", "sha1", "sha256", "pdq", "vpdq", "photodna")  # not local features
    photodna = get_signal("photodna")
    assert (photodna.computed, photodna.index, photodna.hex_length) == (False, "exact", 288)
    assert exact_widths()["photodna"] == 144  # the matcher's exact index holds its 144 bytes
    assert all(SIGNALS[n].computed for n in ("md5", "sha1", "sha256", "pdq", "vpdq", "local"))
    raw = bytes(range(144))
    b64 = base64.b64encode(raw).decode()
    assert photodna.validate(f" {b64[:100]}\n{b64[100:]} ") == raw.hex()  # base64, wrapped
    assert photodna.validate(raw.hex().upper()) == raw.hex()
    assert photodna.validate(", ".join(map(str, raw))) == raw.hex()  # NCMEC's decimal bytes


def test_a_registered_signal_is_known_to_the_formats_and_then_forgotten(
    testhash: type[SignalType],
) -> None:
    assert canonical_signal("testhash", _hex(7).upper()) == _hex(7)
    with pytest.raises(RecordError, match="testhash value must be 32 hex characters"):
        canonical_signal("testhash", "abc")
    unregister("testhash")
    with pytest.raises(RecordError, match="unknown signal type 'testhash'"):
        canonical_signal("testhash", _hex(7))
    register(testhash)


def test_a_registered_stored_only_signal_is_imported_and_matched_exactly(
    store: Store, testhash: type[SignalType]
) -> None:
    assert key_signals()[-1] == "testhash"  # looked at for conflicts, as PhotoDNA is
    cat = Category("us-cat", "1")
    entries = [Entry({"testhash": _hex(k)}, category=cat, external_id=f"t{k}") for k in range(1, 6)] + [
        Entry({"testhash": "not hex at all, wrong length"}, category=cat, external_id="bad")
    ]
    rejected: list[tuple[int, str]] = []
    result = import_entries(store, "plugin", entries, on_reject=lambda n, e, why: rejected.append((n, why)))
    assert (result.added, result.rejected) == (5, 1)
    assert rejected == [(6, "testhash value must be 32 hex characters, got 28")]
    assert hashset_counts(store, "plugin").signals == {"testhash": 5}
    assert [e.signals for e in iter_entries(store, "plugin")] == [{"testhash": _hex(k)} for k in range(1, 6)]

    ids, values = load_signal_arrays(store, ["plugin"], "testhash")
    assert values.shape == (5, 16)
    index = ExactIndex.build(values, ids)
    queries = np.frombuffer(bytes.fromhex(_hex(3) + _hex(9)), np.uint8).reshape(2, 16)
    hits = index.lookup(queries)
    assert hits.query_idx.tolist() == [0]  # the second query is in no entry
    found = entry_details(store, hits.ids.tolist())
    assert [ref.external_id for ref in found.values()] == ["t3"]


def test_a_registered_signal_shared_across_categories_is_a_conflict_never_a_duplicate(
    store: Store, testhash: type[SignalType]
) -> None:
    entries = [
        Entry({"testhash": _hex(1)}, category=Category("us-cat", "1"), external_id="a"),
        Entry({"testhash": _hex(1)}, category=Category("us-cat", "2"), external_id="b"),
        Entry({"testhash": _hex(1)}, category=Category("us-cat", "1"), external_id="c"),
    ]
    result = import_entries(store, "plugin", entries)
    assert (result.added, result.duplicates, result.conflicts) == (3, 0, 1)
    [c] = list_conflicts(store, "plugin")
    assert (c.signal, c.value, c.entry.external_id, c.other.external_id) == ("testhash", _hex(1), "a", "b")


def test_a_signal_name_the_store_cannot_keep_is_refused() -> None:
    class Bad(TestHash):
        name = "no'quotes"

    with pytest.raises(SignalError, match="signal name"):
        register(Bad)
    assert "no'quotes" not in SIGNALS


def test_photodna_is_stored_and_found_by_equal_value(store: Store) -> None:
    dna = bytes(range(144)).hex()
    entries = [
        Entry({"md5": _hex(1), "photodna": dna}, category=Category("us-cat", "1")),
        Entry({"md5": _hex(2), "photodna": dna}, category=Category("us-cat", "2")),
    ]
    result = import_entries(store, "pdna", entries)
    assert (result.added, result.duplicates, result.conflicts) == (2, 0, 1)  # never a duplicate
    assert hashset_counts(store, "pdna").signals == {"md5": 2, "photodna": 2}


def test_a_registered_stored_only_signal_is_imported_and_matched_by_the_cli(
    db_url: str, tmp_path: Path, testhash: type[SignalType]
) -> None:
    """No module names the plugin's signal: the CSV reader takes its column by its registry name,
    ``opspoor match`` takes its value typed (``testhash:…``) or by its width, and the matcher's
    exact index (built from the store, then mapped from the index cache) finds it."""
    listing = tmp_path / "plugin.csv"
    rows = [f"{_hex(k).upper()},us-cat:1,t{k}" for k in range(1, 6)]
    listing.write_text("testhash,category,external_id\n" + "\n".join(rows) + "\n", encoding="utf-8")
    res = runner.invoke(cli_app, ["hashset", "import", str(listing), "--name", "plugin", "--db", db_url])
    assert res.exit_code == 0, res.output
    with open_store(db_url) as s:
        assert hashset_counts(s, "plugin").signals == {"testhash": 5}

    for _ in range(2):  # built from the store and cached, then mapped from the cache
        res = runner.invoke(
            cli_app,
            ["match", "--hashset", "plugin", "--db", db_url, "--json", f"testhash:{_hex(3)}", _hex(4)]
            + [_hex(9)],
        )
        assert res.exit_code == 0, res.output
        out = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
        found = [[(m["signal"], m["external_id"], m["distance"]) for m in o["matches"]] for o in out]
        assert found == [[("testhash", "t3", 0)], [("testhash", "t4", 0)], []]

    unregister("testhash")  # without the registry line the value is not a hash value at all
    res = runner.invoke(cli_app, ["match", "--hashset", "plugin", "--db", db_url, f"testhash:{_hex(3)}"])
    assert res.exit_code == 1 and "not a file and not a hash value" in res.output
    register(testhash)


def test_a_registered_stored_only_signal_is_added_and_matched_by_the_service(
    db_url: str, testhash: type[SignalType]
) -> None:
    """``POST /v1/hashsets/{name}/entries`` takes the plugin's values and ``POST /v1/match``
    finds them (the live matcher's exact index for the signal is made from the registry)."""
    with running(db_url) as api:
        create_set(api, "plugin")
        entries = [{"signals": {"testhash": _hex(k)}, "external_id": f"t{k}"} for k in (1, 2)]
        assert add_entries(api, "plugin", entries)["added"] == 2

        def found() -> list[list[tuple[str, str | None]]]:
            values = [{"type": "testhash", "value": _hex(2).upper()}, {"type": "testhash", "value": _hex(7)}]
            results = match_values(api, values)
            return [[(m["signal"], m["external_id"]) for m in r["matches"]] for r in results]

        eventually(lambda: found() == [[("testhash", "t2")], []])
        r = api.client.post(
            "/v1/match",
            headers=api.auth("a", "platform"),
            json={"signals": [{"type": "testhash", "value": "ab" * 20}]},
        )
        assert r.status_code == 422
        assert "signals.0.value: testhash value must be 32 hex characters, got 40" in r.json()["detail"]
        r = api.client.post(
            "/v1/match",
            headers=api.auth("a", "platform"),
            json={"signals": [{"type": "vpdq", "value": "ab" * 16}]},
        )
        assert r.status_code == 422 and "not matched by value" in r.json()["detail"]  # a whole video's


def test_tables_asked_per_request_follow_every_change_of_the_registry() -> None:
    """``exact_widths``/``value_widths`` are derived once (every match request asks) and derived
    again after any change: ``register``/``unregister`` and a direct edit of ``SIGNALS`` alike."""
    from opspoor.matching import value_query, value_widths

    before = exact_widths()
    assert exact_widths() is before  # kept, not derived per call
    assert "testhash" not in before and "testhash" not in value_widths()
    register(TestHash)
    try:
        assert exact_widths()["testhash"] == 16
        assert value_widths()["testhash"] == 32
        assert value_query("testhash", "ab" * 16).exact == {"testhash": "ab" * 16}
    finally:
        unregister(TestHash.name)
    assert "testhash" not in exact_widths() and "testhash" not in value_widths()
    with pytest.raises(TypeError):
        value_query("testhash", "ab" * 16)
    SIGNALS["testhash"] = TestHash  # a plugin editing the dict itself
    try:
        assert exact_widths()["testhash"] == 16
    finally:
        del SIGNALS["testhash"]
    assert exact_widths() == before


def test_a_bare_hex_value_is_typed_by_the_widths_in_the_registry(testhash: type[SignalType]) -> None:
    """Files of bare hex (md5sum lines, a hash column) are typed by width from the registry: a
    width two signals share needs ``--type``, and a registered signal joins its width's group."""
    assert hex_types()[64] == ("sha256", "pdq")
    assert hex_type("ab" * 144, None) == "photodna"  # 288 hex: PhotoDNA's bytes
    with pytest.raises(AmbiguousHash, match="32 hex characters may be md5 or testhash"):
        hex_type(_hex(7), None)
    assert hex_type(_hex(7), "testhash") == "testhash"
    unregister("testhash")
    try:
        assert hex_type(_hex(7), None) == "md5"
        with pytest.raises(RecordError, match="a hash of 30 hex characters is none of md5 \\(32\\)"):
            hex_type(_hex(7)[2:], None)
    finally:
        register(testhash)
