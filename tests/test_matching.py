"""The matcher: cached indexes are used again until the store changes, and give the same matches."""

from __future__ import annotations

from pathlib import Path

import pytest

from opspoor.hashsets.model import Category, Entry
from opspoor.store import import_entries, open_store
from opspoor.triage.matching import Matcher, Query, index_cache_dir


def _entries(n: int, seed: int) -> list[Entry]:
    import numpy as np

    rng = np.random.default_rng(seed)
    return [
        Entry(
            {"md5": rng.bytes(16).hex(), "pdq": rng.bytes(32).hex()},
            Category("us-cat", "1"),
            external_id=f"e{seed}-{i}",
        )
        for i in range(n)
    ]


def test_cache_is_reused_until_the_store_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSPOOR_CACHE", str(tmp_path / "cache"))
    store = open_store(str(tmp_path / "s.sqlite"))
    first = _entries(50, 1)
    import_entries(store, "a", first)
    q = [Query(md5=first[3].signals["md5"]), Query(pdq=[(first[7].signals["pdq"], "pdq")])]

    built = Matcher.from_store(store, ["a"], cache=True)
    folder = index_cache_dir(store, built.sets, "default")
    assert folder.is_dir() and (folder.stat().st_mode & 0o077) == 0
    cached = Matcher.from_store(store, ["a"], cache=True)
    plain = Matcher.from_store(store, ["a"])
    for m in (built, cached, plain):
        got = m.match_queries(q)
        assert [x.external_id for x in got[0]] == ["e1-3"]
        assert [(x.external_id, x.distance) for x in got[1]] == [("e1-7", 0)]

    more = _entries(5, 2)
    import_entries(store, "a", more)  # a change: the old cache no longer describes the store
    fresh = Matcher.from_store(store, ["a"], cache=True)
    assert index_cache_dir(store, fresh.sets, "default") != folder
    hit = fresh.match_queries([Query(md5=more[0].signals["md5"])])
    assert [x.external_id for x in hit[0]] == ["e2-0"]


def test_damaged_cache_is_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSPOOR_CACHE", str(tmp_path / "cache"))
    store = open_store(str(tmp_path / "s.sqlite"))
    entries = _entries(20, 3)
    import_entries(store, "a", entries)
    m = Matcher.from_store(store, ["a"], cache=True)
    folder = index_cache_dir(store, m.sets, "default")
    for f in (folder / "pdq").iterdir():
        f.write_bytes(b"damaged")
    again = Matcher.from_store(store, ["a"], cache=True)
    got = again.match_queries([Query(pdq=[(entries[0].signals["pdq"], "pdq")])])
    assert [x.external_id for x in got[0]] == ["e3-0"]


def test_derived_values_match_their_entry_and_are_not_exported(tmp_path: Path) -> None:
    from opspoor.errors import FormatError, SignalError
    from opspoor.store import iter_entries

    store = open_store(str(tmp_path / "s.sqlite"))
    e = _entries(1, 4)[0]
    extra_pdq = "ab" * 32
    e.derived = {"pdq": [extra_pdq]}
    import_entries(store, "a", [e])
    got = Matcher.from_store(store, ["a"]).match_queries([Query(pdq=[(extra_pdq, "pdq")])])
    assert [(x.external_id, x.distance) for x in got[0]] == [("e4-0", 0)]
    (back,) = iter_entries(store, "a")
    assert back.signals == e.signals and not back.derived
    bad = _entries(1, 5)[0]
    bad.derived = {"pdq": ["not hex"]}
    with pytest.raises((SignalError, FormatError)):
        import_entries(store, "b", [bad])
