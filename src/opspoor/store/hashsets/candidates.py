"""Candidates for duplicates in a load into an empty set: a Bloom filter over the key values."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from itertools import compress

import numpy as np

from opspoor.hashsets.formats.arrays import ARRAY_HASHES, ArrayBatch
from opspoor.hashsets.formats.base import EntryBatch
from opspoor.store.hashsets.schema import (
    HASH_COLUMNS,
    hex_rows,
    key_signals,
)


class _DuplicateFilter:
    """Which values of a load into an empty set may repeat an earlier value of the load.

    A blocked Bloom filter (two bits of one 64-bit word per value; 64 MiB whatever the load)
    over a 64-bit key per value, plus an exact check for repeats within a batch. It errs only
    towards too many candidates, which the duplicate search then rules out, so the search looks
    at the candidates (about 1 % of the values at 10 million entries) instead of grouping every
    value of the set. Once candidates pass ``MAX_SHARE`` of the values it stops: the search
    groups the whole set as it does for imports into a set that has entries.

    A hash column's key is computed from its bytes (``_hash_keys``), so a value gets the same key
    whether it comes as hex in an EntryBatch or as bytes in an ArrayBatch; PhotoDNA, text only,
    is keyed by Python's string hash.
    """

    WORDS = 1 << 23
    MAX_SHARE = 0.05
    MIN_CANDIDATES = 10_000

    def __init__(self) -> None:
        self._words = np.zeros(self.WORDS, np.uint64)
        self.values = 0
        self.found = 0
        self.saturated = False

    def candidates(self, batch: EntryBatch | ArrayBatch) -> list[tuple[str, str]]:
        """(signal, lower-case hex or PhotoDNA text) of the batch's key values that may have been
        seen before (and records them)."""
        if self.saturated:
            return []
        out: list[tuple[str, str]] = []
        columns = _array_keys(batch) if isinstance(batch, ArrayBatch) else _entry_keys(batch)
        for name, keys, values_at in columns:
            self.values += len(keys)
            hit = self._seen(keys)
            if hit.any():
                out.extend((name, v) for v in values_at(hit))
        self.found += len(out)
        if self.found > max(self.MIN_CANDIDATES, self.MAX_SHARE * self.values):
            self.saturated = True
            self._words = np.zeros(0, np.uint64)
            return []
        return out

    def _seen(self, h: np.ndarray) -> np.ndarray:
        word = h >> np.uint64(64 - self.WORDS.bit_length() + 1)
        one = np.uint64(1)
        bits = (one << (h & np.uint64(63))) | (one << ((h >> np.uint64(6)) & np.uint64(63)))
        hit = (self._words[word] & bits) == bits
        order = np.argsort(h)
        sh = h[order]
        again = sh[1:] == sh[:-1]  # a value repeated within the batch (or a key collision)
        if again.any():
            hit[order[1:][again]] = True
        # set the bits; words are sorted with the keys, so equal words are neighbours
        sw, sb = word[order], bits[order]
        starts = np.flatnonzero(np.concatenate(([True], sw[1:] != sw[:-1])))
        self._words[sw[starts]] |= np.bitwise_or.reduceat(sb, starts)
        return hit


#: a key column: (signal, uint64 key per value, the values (as candidates give them) where a mask is true)
_KeyColumn = tuple[str, np.ndarray, Callable[[np.ndarray], list[str]]]


def _entry_keys(batch: EntryBatch) -> Iterator[_KeyColumn]:
    """Key columns of an EntryBatch (checked, lower-case values)."""
    wanted = key_signals()
    for name, values in batch.signals.items():
        if name not in wanted:
            continue
        given: list[str] = values if None not in values else [v for v in values if v is not None]  # type: ignore[assignment]
        if not given:
            continue
        if name in HASH_COLUMNS:
            keys = _hash_keys(name, hex_rows(given, HASH_COLUMNS[name]))
        else:
            keys = np.fromiter(map(hash, given), np.int64, len(given)).view(np.uint64)
        yield name, keys, partial(_values_at, given)


def _values_at(values: list[str], hit: np.ndarray) -> list[str]:
    return list(compress(values, hit.tolist()))


def _array_keys(batch: ArrayBatch) -> Iterator[_KeyColumn]:
    """Key columns of an ArrayBatch: the hash rows of the entries that have each hash."""
    for k, name in enumerate(ARRAY_HASHES):
        given = batch.has[:, k]
        if not given.any():
            continue
        rows = batch.hashes[name][given]
        yield name, _hash_keys(name, rows), partial(_hex_of, rows)


def _hex_of(rows: np.ndarray, hit: np.ndarray) -> list[str]:
    """Lower-case hex of the rows where ``hit``."""
    picked = rows[hit]
    width = 2 * picked.shape[1]
    joined = picked.tobytes().hex()
    return [joined[i : i + width] for i in range(0, len(joined), width)]


_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
#: per signal, so that equal bytes of two signal types do not share a key
_KEY_SEEDS = {name: np.uint64(0x9E3779B97F4A7C15 * (k + 1) % 2**64) for k, name in enumerate(HASH_COLUMNS)}


def _hash_keys(name: str, rows: np.ndarray) -> np.ndarray:
    """A 64-bit key per row of hash bytes (uint8[n, width]): every 8 bytes (the last ones
    zero-padded) folded in with splitmix64's mixing, vectorised over the rows."""
    n, width = rows.shape
    padded = np.zeros((n, -(-width // 8) * 8), np.uint8)
    padded[:, :width] = rows
    words = padded.view(np.uint64)
    h = np.full(n, _KEY_SEEDS[name], np.uint64)
    for k in range(words.shape[1]):
        h ^= words[:, k]
        h ^= h >> np.uint64(30)
        h *= _MIX1
        h ^= h >> np.uint64(27)
        h *= _MIX2
        h ^= h >> np.uint64(31)
    return h
