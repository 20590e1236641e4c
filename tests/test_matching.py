"""The matcher: each set's cached indexes are used again until that set changes, and give the same
matches as indexes built from the store."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from opspoor.hashsets.model import Category, Entry
from opspoor.matching import (
    IndexGroup,
    Matcher,
    Query,
    build_index_cache,
    index_cache_dir,
    set_cache_dir,
)
from opspoor.store import Store, get_hashset, import_entries, open_store, remove_entries


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


def _cache_dirs(store: Store, name: str) -> list[Path]:
    """The cache folders of a set's states that exist on disk."""
    folder = set_cache_dir(store, get_hashset(store, name))
    return sorted(folder.iterdir()) if folder.is_dir() else []


def _external_ids(matcher: Matcher, queries: list[Query]) -> list[list[tuple[str | None, int]]]:
    return [[(m.external_id, m.distance) for m in ms] for ms in matcher.match_queries(queries)]


def test_cache_is_reused_until_the_set_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSPOOR_CACHE", str(tmp_path / "cache"))
    store = open_store(str(tmp_path / "s.sqlite"))
    first = _entries(50, 1)
    import_entries(store, "a", first)
    q = [Query(md5=first[3].signals["md5"]), Query(pdq=[(first[7].signals["pdq"], "pdq")])]

    built = Matcher.from_store(store, ["a"], cache=True)
    (folder,) = _cache_dirs(store, "a")
    assert folder == index_cache_dir(store, built.sets["a"])
    assert (folder.stat().st_mode & 0o077) == 0
    assert all((f.stat().st_mode & 0o077) == 0 for f in folder.rglob("*"))
    cached = Matcher.from_store(store, ["a"], cache=True)
    plain = Matcher.from_store(store, ["a"])
    for m in (built, cached, plain):
        assert _external_ids(m, q) == [[("e1-3", 0)], [("e1-7", 0)]]
    assert cached.size == plain.size

    more = _entries(5, 2)
    import_entries(store, "a", more)  # a change: the old cache no longer describes the set
    fresh = Matcher.from_store(store, ["a"], cache=True)
    (replaced,) = _cache_dirs(store, "a")  # the folder of the old state is gone
    assert replaced != folder and replaced == index_cache_dir(store, fresh.sets["a"])
    assert _external_ids(fresh, [Query(md5=more[0].signals["md5"])]) == [[("e2-0", 0)]]


def _mtimes(store: Store, name: str) -> dict[Path, int]:
    return {f: f.stat().st_mtime_ns for d in _cache_dirs(store, name) for f in d.rglob("*")}


def test_each_set_is_cached_on_its_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A set's cache serves every combination of sets that names it; a change to one set leaves
    the others' caches as they are."""
    monkeypatch.setenv("OPSPOOR_CACHE", str(tmp_path / "cache"))
    store = open_store(str(tmp_path / "s.sqlite"))
    ea, eb = _entries(30, 6), _entries(30, 7)
    import_entries(store, "a", ea)
    import_entries(store, "b", eb)
    q = [Query(md5=ea[0].signals["md5"]), Query(pdq=[(eb[1].signals["pdq"], "pdq")])]

    only_a = Matcher.from_store(store, ["a"], cache=True)
    assert _external_ids(only_a, q) == [[("e6-0", 0)], []]
    a_files = _mtimes(store, "a")
    assert a_files and not _cache_dirs(store, "b")

    both = Matcher.from_store(store, ["a", "b"], cache=True)
    assert _mtimes(store, "a") == a_files  # a's cache mapped, not written again
    assert _external_ids(both, q) == [[("e6-0", 0)], [("e7-1", 0)]]
    assert _external_ids(both, q) == _external_ids(Matcher.from_store(store, ["a", "b"]), q)
    b_files = _mtimes(store, "b")

    extra = _entries(3, 8)
    import_entries(store, "b", extra)  # only b changes
    again = Matcher.from_store(store, ["b", "a"], cache=True)
    assert _mtimes(store, "a") == a_files
    assert _mtimes(store, "b").keys().isdisjoint(b_files)  # b rebuilt, its old state removed
    assert _external_ids(again, [Query(md5=extra[2].signals["md5"])]) == [[("e8-2", 0)]]


def test_each_set_is_searched_at_its_own_distance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSPOOR_CACHE", str(tmp_path / "cache"))
    store = open_store(str(tmp_path / "s.sqlite"))
    ea, eb = _entries(5, 9), _entries(5, 10)
    import_entries(store, "a", ea)
    import_entries(store, "b", eb)
    with store.write() as conn:  # a strict set next to a loose one
        conn.execute(text("UPDATE hashsets SET distance = 4 WHERE name = 'a'"))
    near_a, near_b = _flip_bits(ea[0].signals["pdq"], 10), _flip_bits(eb[0].signals["pdq"], 10)
    q = [Query(pdq=[(near_a, "pdq")]), Query(pdq=[(near_b, "pdq")])]
    for cache in (True, False):
        m = Matcher.from_store(store, ["a", "b"], cache=cache)
        assert _external_ids(m, q) == [[], [("e10-0", 10)]]


def _flip_bits(pdq: str, n: int) -> str:
    value = int(pdq, 16) ^ ((1 << n) - 1)
    return f"{value:064x}"


def test_damaged_cache_is_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSPOOR_CACHE", str(tmp_path / "cache"))
    store = open_store(str(tmp_path / "s.sqlite"))
    entries = _entries(20, 3)
    import_entries(store, "a", entries)
    m = Matcher.from_store(store, ["a"], cache=True)
    folder = index_cache_dir(store, m.sets["a"])
    for f in (folder / "pdq").iterdir():
        f.write_bytes(b"damaged")
    (folder / "md5" / "manifest.json").write_text("{}")
    again = Matcher.from_store(store, ["a"], cache=True)
    q = [Query(pdq=[(entries[0].signals["pdq"], "pdq")]), Query(md5=entries[1].signals["md5"])]
    assert _external_ids(again, q) == [[("e3-0", 0)], [("e3-1", 0)]]
    IndexGroup.load(folder)  # the rebuilt cache is whole again
    assert _external_ids(Matcher.from_store(store, ["a"], cache=True), q) == _external_ids(again, q)


def test_build_index_cache_caches_the_set_as_it_is_now(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPSPOOR_CACHE", str(tmp_path / "cache"))
    store = open_store(str(tmp_path / "s.sqlite"))
    entries = _entries(10, 11)
    import_entries(store, "a", entries)
    build_index_cache(store, "a")
    (folder,) = _cache_dirs(store, "a")
    built = _mtimes(store, "a")
    m = Matcher.from_store(store, ["a"], cache=True)
    assert _mtimes(store, "a") == built  # mapped, not built again
    assert _external_ids(m, [Query(md5=entries[4].signals["md5"])]) == [[("e11-4", 0)]]
    remove_entries(
        store, "a", entry_ids=[m.match_queries([Query(md5=entries[4].signals["md5"])])[0][0].entry_id]
    )
    build_index_cache(store, "a")
    (now,) = _cache_dirs(store, "a")
    assert now != folder
    assert IndexGroup.load(now).sizes()["md5"] == 9


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


def test_region_variants_are_looked_up_when_the_whole_image_is_flat(tmp_path: Path) -> None:
    """A flat pad lowers the whole image's PDQ quality; the trimmed picture's hash (gated on its
    own quality when it was made) is still looked up, the whole image's hash and turns are not."""
    store = open_store(str(tmp_path / "s.sqlite"))
    (e,) = _entries(1, 6)
    import_entries(store, "a", [e])
    picture = e.signals["pdq"]
    other = "0f" * 32
    variants = [(other, "dihedral/rot90"), (picture, "border")]
    flat = Query.from_signals({"pdq": other, "pdq_quality": 20, "pdq_variants": variants})
    assert flat.pdq == [(picture, "border")]
    sharp = Query.from_signals({"pdq": other, "pdq_quality": 90, "pdq_variants": variants})
    assert [m for _, m in sharp.pdq] == ["pdq", "dihedral/rot90", "border"]
    got = Matcher.from_store(store, ["a"]).match_queries([flat])
    assert [(x.external_id, x.distance, x.method) for x in got[0]] == [("e6-0", 0, "border")]


def _flip_bits(value: str, n: int) -> str:
    """``value`` with its ``n`` lowest bits flipped: exactly ``n`` bits away."""
    return format(int(value, 16) ^ ((1 << n) - 1), "064x")


def test_a_capped_query_hash_matches_only_within_its_cap(tmp_path: Path) -> None:
    """A low-quality query hash carries its own largest distance, below the set's 31."""
    store = open_store(str(tmp_path / "s.sqlite"))
    (e,) = _entries(1, 7)
    import_entries(store, "a", [e])
    near, far = _flip_bits(e.signals["pdq"], 12), _flip_bits(e.signals["pdq"], 20)
    matcher = Matcher.from_store(store, ["a"])
    uncapped = [Query(pdq=[(far, "border")])]
    assert _external_ids(matcher, uncapped) == [[("e7-0", 20)]]
    capped = [Query(pdq=[(far, "border", 12)]), Query(pdq=[(near, "border", 12)])]
    assert _external_ids(matcher, capped) == [[], [("e7-0", 12)]]
    # as a scan record carries it (JSON lists), and whatever the whole image's quality
    record = {"pdq": "0f" * 32, "pdq_quality": 20, "pdq_variants": [[near, "border", 12], [far, "pad", 12]]}
    assert _external_ids(matcher, [Query.from_signals(record)]) == [[("e7-0", 12)]]


def test_low_quality_derived_values_match_only_within_the_low_quality_distance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from opspoor.signals.robust import LOW_QUALITY_DISTANCE
    from opspoor.store import iter_entries

    monkeypatch.setenv("OPSPOOR_CACHE", str(tmp_path / "cache"))
    store = open_store(str(tmp_path / "s.sqlite"))
    e = _entries(1, 8)[0]
    low = "c3" * 32
    e.derived = {"pdq_lq": [low]}
    import_entries(store, "a", [e])
    queries = [Query(pdq=[(_flip_bits(low, n), "pdq")]) for n in (0, LOW_QUALITY_DISTANCE, 20)]
    expected = [[("e8-0", 0)], [("e8-0", LOW_QUALITY_DISTANCE)], []]
    assert _external_ids(Matcher.from_store(store, ["a"]), queries) == expected
    assert _external_ids(Matcher.from_store(store, ["a"], cache=True), queries) == expected  # built
    cached = Matcher.from_store(store, ["a"], cache=True)  # mapped from the cache
    assert _external_ids(cached, queries) == expected
    assert cached.size["pdq"] == 2  # the entry's PDQ and its low-quality value
    (back,) = iter_entries(store, "a")
    assert not back.derived  # never exported


def test_near_blank_pages_with_other_marks_do_not_match(tmp_path: Path) -> None:
    """Near-blank pages hash alike whatever their mark (a page number in one corner): with the
    default robust query hashes (low-quality ones included) another page is not matched."""
    import io

    from PIL import Image, ImageDraw

    from opspoor.signals.engine import ROBUST_PRESETS, HashOptions, hash_bytes

    def page(mark: str) -> bytes:
        img = Image.new("RGB", (480, 360), (250, 250, 250))
        ImageDraw.Draw(img).text((430, 330), mark, fill=(20, 20, 20))
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=90)
        return buf.getvalue()

    fast = HashOptions(robust=ROBUST_PRESETS["fast"])
    store = open_store(str(tmp_path / "s.sqlite"))
    import_entries(
        store, "a", [Entry({"pdq": hash_bytes(page("1"), options=fast).pdq}, external_id="page-1")]
    )
    matcher = Matcher.from_store(store, ["a"])
    queries = [Query.from_file_signals(hash_bytes(page(m), options=fast)) for m in ("2", "7", "xy")]
    assert matcher.match_queries(queries) == [[], [], []]
