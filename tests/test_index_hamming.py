"""The Hamming index returns exactly what brute force returns: random and clustered data, every radius
layout, distances exactly at r and r + 1, dihedral search, updates, persistence, concurrent merges."""

from __future__ import annotations

import json
import threading
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from live_ops import replay_ops
from opspoor.errors import IndexFileError
from opspoor.index import HammingIndex, MihLayout, brute_force_hamming, choose_layout
from opspoor.index import mih as mih_module
from opspoor.index.mih import MihSegment, bytes_per_hash, default_bit_order
from opspoor.signals import get_signal
from opspoor.signals.pdq import hex_to_words, words_to_hex

ORDER = default_bit_order()
# layouts exercised at small sizes: HMA's 16 x 16, the 10M choice (with low bits beside the
# positions), a 12-table one, few long substrings (radius 3 per table) and one table alone
LAYOUTS = [
    MihLayout(16, 16, 10, ORDER),
    MihLayout(11, 23, 10, ORDER),
    MihLayout(12, 21, 12, ORDER),
    MihLayout(8, 28, 12, ORDER),
    MihLayout(1, 24, 10, ORDER),
]


def flip_bits(rng: np.random.Generator, words: np.ndarray, k: int) -> np.ndarray:
    """Copies of ``words`` (n, 4) with exactly ``k`` distinct random bits flipped in each row."""
    out = words.copy()
    for row in range(len(out)):
        for bit in rng.choice(256, size=k, replace=False):
            out[row, bit // 64] ^= np.uint64(1) << np.uint64(bit % 64)
    return out


def random_hashes(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(0, 2**64, size=(n, 4), dtype=np.uint64)


def clustered_hashes(rng: np.random.Generator, n: int) -> np.ndarray:
    """Families of near-duplicates: each member is a seed with 0..40 random bits flipped."""
    seeds = random_hashes(rng, max(1, n // 20))
    family = rng.integers(0, len(seeds), size=n)
    out = seeds[family].copy()
    flips = rng.integers(0, 41, size=n)
    for k in np.unique(flips):
        rows = np.flatnonzero(flips == k)
        out[rows] = flip_bits(rng, out[rows], int(k))
    return out


def queries_for(rng: np.random.Generator, hay: np.ndarray, radius: int, n: int) -> np.ndarray:
    """Entries flipped by exactly r and r + 1 bits, other near ones, and random hashes."""
    if len(hay) == 0:
        return random_hashes(rng, n)
    pick = rng.integers(0, len(hay), size=n)
    parts = [
        flip_bits(rng, hay[pick[: n // 4]], radius),
        flip_bits(rng, hay[pick[n // 4 : n // 2]], min(256, radius + 1)),
        flip_bits(rng, hay[pick[n // 2 : 3 * n // 4]], int(rng.integers(0, 40))),
        random_hashes(rng, n - 3 * (n // 4)),
    ]
    return np.concatenate(parts)


def brute_matches(queries: np.ndarray, hay: np.ndarray, ids: np.ndarray, radius: int) -> Counter:
    q, pos, d = brute_force_hamming(queries, hay, radius)
    return Counter(zip(q.tolist(), ids[pos].tolist(), d.tolist(), strict=True))


def as_counter(m) -> Counter:  # type: ignore[no-untyped-def]
    return Counter(zip(m.query_idx.tolist(), m.ids.tolist(), m.distances.tolist(), strict=True))


@pytest.fixture
def small_segments(monkeypatch: pytest.MonkeyPatch) -> None:
    """Use the tables even for tiny segments, so that small tests exercise them."""
    monkeypatch.setattr(mih_module, "FLAT_BELOW", 16)


# --- the method itself --------------------------------------------------------------------------


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    seed=st.integers(0, 2**32 - 1),
    layout=st.sampled_from(LAYOUTS),
    kind=st.sampled_from(["random", "clustered"]),
    n=st.integers(0, 3000),
    radius=st.sampled_from([0, 1, 8, 31]) | st.integers(0, 40),
)
def test_mih_segment_equals_brute_force(
    small_segments: None, seed: int, layout: MihLayout, kind: str, n: int, radius: int
) -> None:
    rng = np.random.default_rng(seed)
    hay = random_hashes(rng, n) if kind == "random" else clustered_hashes(rng, n)
    ids = rng.permutation(n).astype(np.int64) * 7 + 3
    queries = queries_for(rng, hay, radius, 40)
    seg = MihSegment.build(hay, ids, layout)
    assert seg.flat == (n < mih_module.FLAT_BELOW)
    for method in ("mih", "scan"):
        r = seg.search(queries, radius, threads=2, method=method)
        got = Counter(zip(r.query.tolist(), seg.ids[r.pos].tolist(), r.distance.tolist(), strict=True))
        assert got == brute_matches(queries, hay, ids, radius), method


@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda lay: f"m{lay.m}b{lay.b}a{lay.addr_bits}")
def test_distance_exactly_r_is_found_and_r_plus_one_is_not(layout: MihLayout) -> None:
    rng = np.random.default_rng(7)
    hay = random_hashes(rng, 6000)  # above FLAT_BELOW: real tables
    seg = MihSegment.build(hay, np.arange(6000), layout)
    assert not seg.flat
    for radius in (0, 1, 8, 31):
        at_r = flip_bits(rng, hay[:50], radius)
        beyond = flip_bits(rng, hay[50:100], radius + 1)
        r = seg.search(np.concatenate([at_r, beyond]), radius, method="mih")
        hits = set(zip(r.query.tolist(), seg.ids[r.pos].tolist(), strict=True))
        assert {(i, i) for i in range(50)} <= hits
        assert not any(q >= 50 and i == q for q, i in hits)
        assert (r.distance[np.isin(r.query, np.arange(50))] <= radius).all()


def test_vectorised_brute_force_agrees_with_the_signal_reference() -> None:
    rng = np.random.default_rng(3)
    hay = clustered_hashes(rng, 300)
    queries = queries_for(rng, hay, 4, 12)
    q, pos, d = brute_force_hamming(queries, hay, 31)
    pdq = get_signal("pdq")
    hay_hex = words_to_hex(hay)
    expect = {
        (qi, i, dist)
        for qi, qh in enumerate(words_to_hex(queries))
        for i, dist in pdq.brute_force_match(qh, hay_hex, 31)
    }
    assert set(zip(q.tolist(), pos.tolist(), d.tolist(), strict=True)) == expect
    assert len(expect) > 12  # the clustered data really has matches


def test_meta_test_vectors_match_brute_force(reference: Path, small_segments: None) -> None:
    folder = reference / "pdq" / "data" / "reg-test-input"
    needles = (folder / "needles.txt").read_text().split()
    haystack = (folder / "haystack.txt").read_text().split()
    pdq = get_signal("pdq")
    expect = {(qi, i, d) for qi, h in enumerate(needles) for i, d in pdq.brute_force_match(h, haystack, 31)}
    for layout in (None, MihLayout(11, 23, 8, ORDER)):
        index = HammingIndex.build(hex_to_words(haystack), np.arange(len(haystack)), layout=layout)
        got = as_counter(index.search(hex_to_words(needles), 31))
        assert set(got) == expect and max(got.values()) == 1
    assert expect  # the needles do match


def test_choose_layout_meets_the_memory_goal_and_the_pigeonhole_bound() -> None:
    for n in (10_000, 1_000_000, 10_000_000, 50_000_000):
        lay = choose_layout(n)
        assert lay.m * lay.b <= 256 and n <= lay.max_hashes
        assert int((lay.table_radii(31) + 1).sum()) == 32
        assert bytes_per_hash(lay, n) <= 100, (n, lay)
    assert (choose_layout(10_000_000).m, choose_layout(10_000_000).b) == (11, 23)


# --- the index: search, dihedral, updates, files ------------------------------------------------


def test_search_sorts_and_reports_every_entry_of_a_shared_id() -> None:
    rng = np.random.default_rng(5)
    hay = random_hashes(rng, 100)
    hay[11] = flip_bits(rng, hay[[10]], 2)[0]
    ids = np.arange(100) // 2  # two entries per id; entries 10 and 11 (id 5) are 2 bits apart
    index = HammingIndex.build(hay, ids)
    queries = np.concatenate([hay[[11]], flip_bits(rng, hay[[40]], 3)])
    m = index.search(queries, 31)
    assert m.query_idx.tolist() == [0, 0, 1]
    assert m.ids.tolist() == [5, 5, 20] and m.distances.tolist() == [0, 2, 3]
    assert m.of_query(1) == slice(2, 3) and m.of_query(2) == slice(3, 3)
    # bytes in hex order are the same hashes as hex_to_words' words
    as_bytes = np.frombuffer(bytes.fromhex("".join(words_to_hex(queries))), np.uint8).reshape(-1, 32)
    assert as_counter(index.search(as_bytes, 31)) == as_counter(m)


def test_search_dihedral_reports_each_entry_once_with_its_closest_variant(small_segments: None) -> None:
    rng = np.random.default_rng(11)
    hay = clustered_hashes(rng, 2000)
    ids = np.arange(2000)
    index = HammingIndex.build(hay, ids)
    variants = np.stack([queries_for(rng, hay, 20, 30) for _ in range(8)], axis=1)  # (30, 8, 4)
    m = index.search_dihedral(variants, 31)
    q, pos, d = brute_force_hamming(variants.reshape(-1, 4), hay, 31)
    best: dict[tuple[int, int], int] = {}
    for qi, p, dist in zip(q.tolist(), pos.tolist(), d.tolist(), strict=True):
        key = (qi // 8, int(ids[p]))
        best[key] = min(best.get(key, 999), dist)
    assert {
        (a, b): c for a, b, c in zip(m.query_idx.tolist(), m.ids.tolist(), m.distances.tolist(), strict=True)
    } == best
    assert len(m) == len(best)
    assert m.variants is not None
    dist_by_variant = np.bitwise_count(variants[m.query_idx, m.variants] ^ hay[m.ids]).sum(axis=1)
    assert np.array_equal(dist_by_variant, m.distances)


def test_bad_input_is_refused() -> None:
    index = HammingIndex.build(np.zeros((3, 4), np.uint64), np.arange(3))
    with pytest.raises(ValueError):
        index.search(np.zeros((2, 4), np.uint32))
    with pytest.raises(ValueError):
        index.search(np.zeros((2, 4), np.uint64), radius=-1)
    with pytest.raises(ValueError):
        index.search_dihedral(np.zeros((2, 4), np.uint64))
    with pytest.raises(ValueError):
        index.add(np.zeros((2, 4), np.uint64), np.arange(3))


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.integers(1, 400), st.integers(0, 2**32)),
        st.tuples(st.just("remove"), st.integers(1, 60), st.integers(0, 2**32)),
        st.tuples(st.just("merge"), st.just(0), st.just(0)),
    ),
    max_size=8,
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    seed=st.integers(0, 2**32 - 1),
    n0=st.integers(0, 1500),
    ops=OPS,
    kind=st.sampled_from(["random", "clustered"]),
)
def test_updates_equal_a_fresh_build(small_segments: None, seed: int, n0: int, ops: list, kind: str) -> None:
    rng = np.random.default_rng(seed)
    make = random_hashes if kind == "random" else clustered_hashes
    hashes = make(rng, n0)
    ids = rng.integers(0, 500, size=n0)  # ids repeat: remove drops every entry of an id
    index = HammingIndex.build(hashes, ids)

    def new_hashes(r: np.random.Generator, size: int, hashes: np.ndarray) -> np.ndarray:
        if len(hashes) == 0 or r.random() < 0.5:
            return make(r, size)
        return flip_bits(r, hashes[r.integers(0, len(hashes), size)], 2)

    hashes, ids = replay_ops(index, hashes, ids, ops, new_hashes, 500)
    queries = queries_for(rng, hashes, 31, 40)
    for radius in (0, 31):
        assert as_counter(index.search(queries, radius)) == brute_matches(queries, hashes, ids, radius)
    fresh = HammingIndex.build(hashes, ids)
    assert as_counter(index.search(queries, 31)) == as_counter(fresh.search(queries, 31))


def test_writes_during_a_merge_are_kept(small_segments: None) -> None:
    rng = np.random.default_rng(2)
    hashes = random_hashes(rng, 3000)
    index = HammingIndex.build(hashes, np.arange(3000))
    index.add(random_hashes(rng, 100), np.arange(3000, 3100))
    late = random_hashes(rng, 5)
    build = index._build_segment
    seen: list[int] = []

    def build_and_write_meanwhile(keys, ids, *, base):  # type: ignore[no-untyped-def]
        if base:  # the merge's slow part: a reader and two writers act meanwhile
            seen.append(len(index.search(hashes[:10], 0)))
            index.add(late, np.array([9000, 9001, 9002, 9003, 9004]))
            index.remove(np.array([0, 1, 3001, 9004]))
        return build(keys, ids, base=base)

    index._build_segment = build_and_write_meanwhile  # type: ignore[method-assign]
    merger = threading.Thread(target=index.merge)
    merger.start()
    merger.join()
    index._build_segment = build  # type: ignore[method-assign]
    assert seen == [10]
    m = index.search(np.concatenate([hashes[:3], late]), 0)
    assert sorted(m.ids.tolist()) == [2, 9000, 9001, 9002, 9003]
    assert len(index) == 3100 + 5 - 4 and index.delta_size == 4


def test_save_and_load_round_trip(tmp_path: Path, small_segments: None) -> None:
    rng = np.random.default_rng(9)
    hashes = clustered_hashes(rng, 5000)
    index = HammingIndex.build(hashes, np.arange(5000))
    index.add(flip_bits(rng, hashes[:50], 4), np.arange(10_000, 10_050))
    index.remove(np.arange(0, 5000, 7))
    queries = queries_for(rng, hashes, 31, 60)
    expect = as_counter(index.search(queries, 31))
    index.save(tmp_path / "ix")
    for mmap in (True, False):
        loaded = HammingIndex.load(tmp_path / "ix", mmap=mmap)
        assert isinstance(loaded.snapshot().base.hashes, np.memmap) == mmap
        assert as_counter(loaded.search(queries, 31)) == expect and len(loaded) == len(index)
    manifest = json.loads((tmp_path / "ix" / "manifest.json").read_text())
    assert manifest["counts"] == {"base": 5000, "delta": 50, "live": len(index)}
    # the loaded index moves on: merge, save again; the old files are gone, the result stays
    loaded = HammingIndex.load(tmp_path / "ix")
    loaded.merge()
    loaded.save(tmp_path / "ix")
    again = HammingIndex.load(tmp_path / "ix")
    assert as_counter(again.search(queries, 31)) == expect
    tokens = {f.name.split(".")[0] for f in (tmp_path / "ix").glob("*.npy")}
    assert len(tokens) == 2  # one base, one delta


def test_load_refuses_a_damaged_or_foreign_directory(tmp_path: Path) -> None:
    with pytest.raises(IndexFileError):
        HammingIndex.load(tmp_path)
    index = HammingIndex.build(random_hashes(np.random.default_rng(1), 5000), np.arange(5000))
    index.save(tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    (tmp_path / "manifest.json").write_text(json.dumps({**manifest, "version": 99}))
    with pytest.raises(IndexFileError, match="version"):
        HammingIndex.load(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({**manifest, "kind": "exact"}))
    with pytest.raises(IndexFileError):
        HammingIndex.load(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    next(tmp_path.glob("*.perms.npy")).unlink()
    with pytest.raises(IndexFileError, match="missing"):
        HammingIndex.load(tmp_path)
