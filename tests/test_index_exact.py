"""The exact index finds every entry with an equal key (shared keys, shared ids), stays within its memory
bound, and keeps doing so through adds, removes, merges, saves and loads."""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from live_ops import replay_ops
from opspoor.errors import IndexFileError
from opspoor.index import ExactIndex


def digests(rng: np.random.Generator, n: int, width: int) -> np.ndarray:
    return rng.integers(0, 256, size=(n, width), dtype=np.uint8)


def reference(queries: np.ndarray, keys: np.ndarray, ids: np.ndarray) -> Counter:
    by_key: dict[bytes, list[int]] = defaultdict(list)
    for k, i in zip(keys, ids.tolist(), strict=True):
        by_key[k.tobytes()].append(i)
    return Counter((qi, i) for qi, q in enumerate(queries) for i in by_key.get(q.tobytes(), []))


def as_counter(m) -> Counter:  # type: ignore[no-untyped-def]
    return Counter(zip(m.query_idx.tolist(), m.ids.tolist(), strict=True))


def with_shared_prefixes(rng: np.random.Generator, keys: np.ndarray) -> np.ndarray:
    """Some keys equal to others in their first 8 bytes only: the prefix alone must not match."""
    out = keys.copy()
    if len(out) > 1:
        rows = rng.integers(0, len(out), size=len(out) // 4)
        out[rows, :8] = out[0, :8]
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 5000), width=st.sampled_from([16, 20, 32, 8]))
def test_lookup_equals_a_dictionary(seed: int, n: int, width: int) -> None:
    rng = np.random.default_rng(seed)
    keys = with_shared_prefixes(rng, digests(rng, n, width))
    if n:
        keys[rng.integers(0, n, size=n // 10)] = keys[0]  # one key in many entries
    ids = rng.integers(0, max(1, n // 2), size=n)  # ids repeat too
    index = ExactIndex.build(keys, ids)
    present = keys[rng.integers(0, n, size=50)] if n else digests(rng, 0, width)
    absent = digests(rng, 50, width)
    near = present.copy()
    near[:, -1] ^= 1  # differs in the last byte only
    queries = np.concatenate([present, absent, near])
    assert as_counter(index.lookup(queries)) == reference(queries, keys, ids)


def test_real_digests_shared_keys_and_sorting() -> None:
    files = [f"file {i}".encode() for i in range(1000)]
    keys = np.array([list(hashlib.md5(f).digest()) for f in files], dtype=np.uint8)
    ids = np.arange(1000) * 10
    keys = np.concatenate([keys, keys[[5]]])  # the same file in a second entry
    ids = np.append(ids, 7)
    index = ExactIndex.build(keys, ids)
    q = np.array([list(hashlib.md5(b"file 5").digest()), list(hashlib.md5(b"unknown").digest())], np.uint8)
    hits = index.lookup(q)
    assert hits.query_idx.tolist() == [0, 0] and hits.ids.tolist() == [7, 50]


def test_memory_is_at_most_one_and_a_half_times_the_key_bytes() -> None:
    rng = np.random.default_rng(1)
    for n in (1000, 100_000, 300_000):
        for width in (16, 20, 32):
            seg = ExactIndex.build(digests(rng, n, width), np.arange(n)).snapshot().base
            key_bytes = seg.prefix.nbytes + seg.rest.nbytes + seg.offsets.nbytes
            assert key_bytes <= 1.5 * n * width and seg.offsets.nbytes <= 2 * n + 8


def test_bad_input_is_refused() -> None:
    index = ExactIndex.build(digests(np.random.default_rng(0), 5, 16), np.arange(5))
    with pytest.raises(ValueError):
        index.lookup(digests(np.random.default_rng(0), 5, 20))
    with pytest.raises(ValueError):
        index.add(digests(np.random.default_rng(0), 5, 16), np.arange(4))
    with pytest.raises(ValueError):
        ExactIndex(4)


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.integers(1, 300), st.integers(0, 2**32)),
        st.tuples(st.just("remove"), st.integers(1, 50), st.integers(0, 2**32)),
        st.tuples(st.just("merge"), st.just(0), st.just(0)),
    ),
    max_size=8,
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), n0=st.integers(0, 2000), ops=OPS)
def test_updates_equal_a_fresh_build(seed: int, n0: int, ops: list) -> None:
    rng = np.random.default_rng(seed)
    keys = digests(rng, n0, 20)
    ids = rng.integers(0, 300, size=n0)
    index = ExactIndex.build(keys, ids)

    def new_keys(r: np.random.Generator, size: int, keys: np.ndarray) -> np.ndarray:
        new = digests(r, size, 20)
        if len(keys):  # re-add known keys too
            new[: size // 2] = keys[r.integers(0, len(keys), size=size // 2)]
        return new

    keys, ids = replay_ops(index, keys, ids, ops, new_keys, 300)
    queries = np.concatenate(
        [keys[rng.integers(0, len(keys), 60)] if len(keys) else keys, digests(rng, 10, 20)]
    )
    assert as_counter(index.lookup(queries)) == reference(queries, keys, ids)
    assert as_counter(index.lookup(queries)) == as_counter(ExactIndex.build(keys, ids).lookup(queries))


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    keys = digests(rng, 20_000, 32)
    index = ExactIndex.build(keys, np.arange(20_000))
    index.add(keys[:10], np.arange(50_000, 50_010))
    index.remove(np.arange(0, 20_000, 3))
    queries = np.concatenate([keys[:500], digests(rng, 100, 32)])
    expect = as_counter(index.lookup(queries))
    index.save(tmp_path)
    for mmap in (True, False):
        loaded = ExactIndex.load(tmp_path, mmap=mmap)
        assert loaded.width == 32 and len(loaded) == len(index)
        assert isinstance(loaded.snapshot().base.prefix, np.memmap) == mmap
        assert as_counter(loaded.lookup(queries)) == expect
    loaded.merge()
    loaded.save(tmp_path)
    assert as_counter(ExactIndex.load(tmp_path).lookup(queries)) == expect
    with pytest.raises(IndexFileError):
        from opspoor.index import HammingIndex

        HammingIndex.load(tmp_path)  # an exact index is not a Hamming one
