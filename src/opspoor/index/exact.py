"""Exact lookup of fixed-width keys (MD5, SHA-1, SHA-256), updated in place.

    index = ExactIndex.build(keys, ids)          # keys: (N, width) uint8, the digest bytes
    hits = index.lookup(queries)                 # every (query row, id) whose key is equal
    index.add(keys2, ids2); index.remove(ids3); index.merge()
    index.save(path); ExactIndex.load(path)      # memory-mapped

A segment stores each key as its first 8 bytes, a big-endian uint64 (``prefix``), and the bytes
after them (``rest``): exactly the raw key bytes, plus a direct-address table over the top bits
of the prefix (``offsets``, at most 2 bytes per key). A lookup reads one offsets pair and scans a
bucket of about two keys. Hex digests become bytes with
``np.frombuffer(bytes.fromhex("".join(hexes)), np.uint8).reshape(-1, width)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import numpy as np

from opspoor.index import _files as F
from opspoor.index import _kernels as K
from opspoor.index._threads import default_threads, run_chunks, threads_for
from opspoor.index.live import LiveIndex, Snapshot
from opspoor.index.mih import gather_rows

MAX_BUCKET_BITS = 26


@dataclass(frozen=True)
class ExactMatches:
    """Hits of a batch, sorted by query then id: ``ids[k]`` has the key of query ``query_idx[k]``."""

    query_idx: np.ndarray  # int64
    ids: np.ndarray  # int64

    def __len__(self) -> int:
        return int(self.ids.shape[0])


def bucket_bits(n: int) -> int:
    """Direct-address bits for ``n`` keys: about 2 keys per bucket, offsets <= 2 bytes per key."""
    return 0 if n < 4 else min(MAX_BUCKET_BITS, n.bit_length() - 2)


def split_keys(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(prefix uint64 of the first 8 bytes, big-endian; the remaining bytes)."""
    return np.ascontiguousarray(keys[:, :8]).view(">u8")[:, 0].astype(np.uint64), np.ascontiguousarray(
        keys[:, 8:]
    )


class ExactSegment:
    """Immutable keys + ids, bucketed by the top bits of the key."""

    def __init__(
        self,
        prefix: np.ndarray,
        rest: np.ndarray,
        ids: np.ndarray,
        offsets: np.ndarray,
        token: str | None = None,
    ) -> None:
        self.prefix = prefix  # (n,) uint64
        self.rest = rest  # (n, width - 8) uint8
        self.ids = ids  # (n,) int64
        self.offsets = offsets  # (2**bits + 1,) uint32
        self.token = token or F.new_token()
        self.bits = int(offsets.shape[0] - 1).bit_length() - 1

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    @property
    def width(self) -> int:
        return 8 + int(self.rest.shape[1])

    @property
    def nbytes(self) -> int:
        return int(self.prefix.nbytes + self.rest.nbytes + self.ids.nbytes + self.offsets.nbytes)

    @classmethod
    def build(cls, keys: np.ndarray, ids: np.ndarray, threads: int) -> ExactSegment:
        n = keys.shape[0]
        bits = bucket_bits(n)
        prefix, rest = split_keys(keys)
        buckets = (prefix >> np.uint64(64 - bits)).astype(np.uint32) if bits else np.zeros(n, np.uint32)
        order = np.empty(n, dtype=np.uint32)
        offsets = np.empty((1 << bits) + 1, dtype=np.uint32)
        K.bucket_table(buckets, 0, False, order, offsets)
        return cls(prefix[order], gather_rows(rest, order, threads), ids[order], offsets)

    def stored_keys(self) -> np.ndarray:
        head = self.prefix.astype(">u8").view(np.uint8).reshape(-1, 8)
        return np.concatenate([head, self.rest], axis=1)

    def lookup(self, queries: np.ndarray, threads: int) -> tuple[np.ndarray, np.ndarray]:
        """(query row, position) of every equal key."""
        nq = queries.shape[0]
        if nq == 0 or len(self) == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        threads = threads_for(nq, threads)
        qp, qr = split_keys(queries)
        shift = 64 - self.bits
        prefix, rest, offsets = self.prefix, self.rest, self.offsets
        parts = run_chunks(
            lambda a, b: K.exact_lookup(qp, qr, a, b, prefix, rest, offsets, shift),
            nq,
            threads,
            max(1024, -(-nq // (8 * threads))),
        )
        return (
            np.concatenate([p[0][: p[2]] for p in parts]),
            np.concatenate([p[1][: p[2]] for p in parts]),
        )

    def arrays(self) -> dict[str, np.ndarray]:
        return {"prefix": self.prefix, "rest": self.rest, "ids": self.ids, "offsets": self.offsets}

    def meta(self) -> dict[str, int]:
        return {"n": len(self), "width": self.width, "bits": self.bits}

    @classmethod
    def load(cls, directory: Path, token: str, meta: dict[str, Any], mmap: bool) -> ExactSegment:
        n, width, bits = int(meta["n"]), int(meta["width"]), int(meta["bits"])
        arr = {
            name: F.read_array(directory, token, name, mmap) for name in ("prefix", "rest", "ids", "offsets")
        }
        F.check_shape(arr["prefix"], (n,), np.uint64, directory)
        F.check_shape(arr["rest"], (n, width - 8), np.uint8, directory)
        F.check_shape(arr["ids"], (n,), np.int64, directory)
        F.check_shape(arr["offsets"], ((1 << bits) + 1,), np.uint32, directory)
        return cls(arr["prefix"], arr["rest"], arr["ids"], arr["offsets"], token)


class ExactIndex(LiveIndex[ExactSegment]):
    """Every entry whose key equals the query's. Keys are ``width`` bytes (at least 8)."""

    kind = "exact"
    version = 1

    def __init__(self, width: int, threads: int | None = None) -> None:
        if width < 8:
            raise ValueError(f"exact keys are at least 8 bytes, got {width}")
        self.width = width
        self.threads = threads or default_threads()
        empty = self._build_segment(self._no_keys(), np.zeros(0, np.int64), base=True)
        super().__init__(Snapshot(empty, None, empty))

    @classmethod
    def build(cls, keys: np.ndarray, ids: np.ndarray, threads: int | None = None) -> ExactIndex:
        """An index over these entries; ``keys`` is (N, width) uint8."""
        keys = np.asarray(keys)
        if keys.ndim != 2:
            raise ValueError(f"keys must be (N, width) uint8, got {keys.shape}")
        index = cls(keys.shape[1], threads)
        keys = index._check_keys(keys)
        ids = np.ascontiguousarray(ids, dtype=np.int64).reshape(-1)
        if ids.shape != (len(keys),):
            raise ValueError(f"{len(keys)} keys but {ids.shape[0]} ids")
        snap = index.snapshot()
        index._snap = Snapshot(index._build_segment(keys, ids, base=True), None, snap.delta)
        return index

    def lookup(self, queries: np.ndarray) -> ExactMatches:
        """Every (query row, id) with an equal key; ``queries`` is (Q, width) uint8."""
        q = self._check_keys(queries)
        snap = self.snapshot()
        bq, bpos = snap.base.lookup(q, self.threads)
        alive = snap.base_alive(bpos)
        dq, dpos = snap.delta.lookup(q, self.threads)
        qi = np.concatenate([bq[alive], dq])
        ids = np.concatenate([snap.base.ids[bpos[alive]], snap.delta.ids[dpos]])
        order = np.lexsort((ids, qi))
        return ExactMatches(qi[order], ids[order])

    # --- LiveIndex hooks -----------------------------------------------------------------------
    def _build_segment(self, keys: np.ndarray, ids: np.ndarray, *, base: bool) -> ExactSegment:
        return ExactSegment.build(keys, ids, self.threads)

    def _check_keys(self, keys: np.ndarray) -> np.ndarray:
        a = np.asarray(keys)
        if a.dtype != np.uint8 or a.ndim != 2 or a.shape[1] != self.width:
            raise ValueError(f"keys must be (N, {self.width}) uint8, got {a.shape} {a.dtype}")
        return np.ascontiguousarray(a)

    def _no_keys(self) -> np.ndarray:
        return np.zeros((0, self.width), np.uint8)

    @classmethod
    def _load_segment(cls, directory: Path, token: str, meta: dict[str, Any], mmap: bool) -> ExactSegment:
        return ExactSegment.load(directory, token, meta, mmap)

    def _params(self) -> dict[str, Any]:
        return {"width": self.width}

    @classmethod
    def _from_params(cls, params: dict[str, Any]) -> Self:
        return cls(int(params["width"]))
