"""Multi-index hashing over 256-bit hashes: one immutable segment.

The 256 bits, in a fixed pseudo-random order (so that correlated bits of real PDQ hashes spread
over all substrings), are cut into ``m`` disjoint substrings of ``b`` bits; ``m * b <= 256`` and
unused bits only make the filter weaker, never wrong. If two hashes differ in at most ``r`` bits
and the substrings get radii ``r_t`` with ``sum(r_t + 1) > r``, at least one substring ``t``
differs in at most ``r_t`` bits (pigeonhole). So looking up, in table ``t``, every entry whose
substring is within ``r_t`` of the query's, and checking each candidate's full distance, finds
every hash within ``r`` — exactly, with no approximate recall.

A table is a direct-address array over the top ``addr_bits`` of the substring: ``offsets``
(uint32, ``2**addr_bits + 1``) and entries (uint32, bucket after bucket), each entry a position
with the substring's remaining ``low_bits`` packed in its top bits. A probe enumerates the
addresses within ``r_t`` flips and keeps the entries whose low bits fit in the flips left: the
candidates are those of a ``b``-bit table, the probes and the offsets those of an
``addr_bits``-bit one. The hashes and ids are stored in table 0's bucket order, so table 0 needs
no entries and its buckets are contiguous. See docs/index.md for the choice of m, b, addr_bits.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from opspoor.index import _files as F
from opspoor.index import _kernels as K
from opspoor.index._threads import default_threads, run_chunks, threads_for

#: below this many hashes a segment is scanned linearly (tables would cost more than they save)
FLAT_BELOW = 4096
#: seed of the fixed bit order (the order itself is saved with an index)
BIT_ORDER_SEED = 0x0D5F_0042


@lru_cache(maxsize=1)
def default_bit_order() -> np.ndarray:
    order = np.random.default_rng(BIT_ORDER_SEED).permutation(256).astype(np.int16)
    order.flags.writeable = False
    return order


@dataclass(frozen=True, eq=False)
class MihLayout:
    """``m`` substrings of ``b`` bits, taken in ``bit_order``; tables address ``addr_bits`` of them."""

    m: int
    b: int
    addr_bits: int
    bit_order: np.ndarray  # (256,) int16, a permutation of 0..255

    def __post_init__(self) -> None:
        if not (self.m >= 1 and 1 <= self.addr_bits <= self.b and self.m * self.b <= 256):
            raise ValueError(f"bad MIH layout m={self.m} b={self.b} addr_bits={self.addr_bits}")
        if self.addr_bits > 28 or self.low_bits > 16:
            raise ValueError(
                f"bad MIH layout: addr_bits={self.addr_bits} (<= 28), low_bits={self.low_bits} (<= 16)"
            )
        if sorted(self.bit_order.tolist()) != list(range(256)):
            raise ValueError("bit_order must be a permutation of 0..255")

    @property
    def low_bits(self) -> int:
        return self.b - self.addr_bits

    @property
    def max_hashes(self) -> int:
        """Positions share a uint32 with the low bits."""
        return 1 << (32 - self.low_bits)

    def table_radii(self, radius: int) -> np.ndarray:
        """Per-table radius for a query radius, with ``sum(r_t + 1) = radius + 1`` (pigeonhole).

        ``radius = q m + a``: ``a + 1`` tables get ``q``, the rest ``q - 1`` (``-1``: skipped).
        Table 0, which cannot filter on low bits, gets the smaller radius.
        """
        q, a = divmod(radius, self.m)
        r = np.full(self.m, q, dtype=np.int64)
        r[: self.m - a - 1] = q - 1
        return r

    def cost(self, n: int, radius: int) -> dict[str, float]:
        """Expected probes, bucket entries scanned and candidates per query, ``n`` uniform hashes.

        A table of radius ``r`` probes the addresses within ``r`` flips, scans their buckets and
        passes on the entries whose full ``b``-bit key is within ``r``; table 0 (no low bits
        beside its positions) passes on its whole buckets.
        """
        probes = scanned = cands = 0.0
        for t, r in enumerate(self.table_radii(radius).tolist()):
            if r < 0:
                continue
            p = flip_count(self.addr_bits, r)
            probes += p
            scanned += p * n / 2**self.addr_bits
            cands += p * n / 2**self.addr_bits if t == 0 else flip_count(self.b, r) * n / 2**self.b
        return {"probes": probes, "scanned": scanned, "candidates": cands}

    def expected_ns(self, n: int, radius: int) -> float:
        c = self.cost(n, radius)
        return c["probes"] * PROBE_NS + c["scanned"] * SCAN_NS + c["candidates"] * CANDIDATE_NS

    def key_lut(self) -> np.ndarray:
        """``lut[j, v]``: byte ``j`` of value ``v`` moved to its slots of the bit order (4 uint64).

        Bit ``p`` of a hash is bit ``p % 64`` of word ``p // 64`` (byte ``j`` = bits ``8j..8j+7``);
        slot ``s`` of the permuted hash is bit ``s % 64`` of word ``s // 64``; substring ``t`` is
        slots ``t*b .. t*b + b - 1``.
        """
        lut = np.zeros((32, 256, 4), dtype=np.uint64)
        values = np.arange(256)
        for slot, p in enumerate(self.bit_order.tolist()):
            j, k = divmod(p, 8)
            lut[j, (values >> k) & 1 == 1, slot // 64] |= np.uint64(1 << (slot % 64))
        return lut


def flip_count(b: int, r: int) -> int:
    """Keys within ``r`` flips of a ``b``-bit key."""
    return sum(math.comb(b, k) for k in range(min(r, b) + 1))


@lru_cache(maxsize=64)
def flip_masks(bits: int, r: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All ``bits``-bit masks of weight <= r by weight; their weights; ``upto[w]``: how many <= w."""
    masks, weights, upto = [0], [0], [1]
    for w in range(1, min(r, bits) + 1):
        for c in itertools.combinations(range(bits), w):
            masks.append(sum(1 << i for i in c))
            weights.append(w)
        upto.append(len(masks))
    upto += [len(masks)] * (r + 1 - len(upto))
    return np.array(masks, dtype=np.uint32), np.array(weights, dtype=np.int64), np.array(upto, dtype=np.int64)


#: per-query costs in ns, fitted to five layouts measured at 10M uniform hashes (docs/index.md):
#: a probe (offsets and bucket cache misses), an entry scanned in a bucket, a candidate checked
PROBE_NS, SCAN_NS, CANDIDATE_NS = 57.0, 6.6, 22.0
#: a linear scan, per hash (sequential, four popcounts)
FLAT_NS = 1.0
#: memory budget: bytes per hash of the whole segment (hash, id, entries, offsets)
MAX_BYTES_PER_HASH = 100.0
#: of which the offset tables may take at most
TABLE_BYTES_PER_HASH = 10.0


def bytes_per_hash(layout: MihLayout, n: int) -> float:
    """Memory of a segment of ``n`` hashes: 32 (hash) + 8 (id) + 4 per table but the first (entries)
    + the offset tables."""
    return 32 + 8 + 4 * (layout.m - 1) + 4 * layout.m * (2**layout.addr_bits + 1) / max(n, 1)


def choose_layout(n: int, radius: int = 31) -> MihLayout:
    """The layout with the lowest expected time per query at ``radius`` over ``n`` uniform hashes.

    Tried: ``m`` from 8 to 16 substrings of ``b = 256 // m`` bits, addressed by ``addr_bits`` so
    that the offset tables take at most ``TABLE_BYTES_PER_HASH`` and the whole segment at most
    ``MAX_BYTES_PER_HASH`` per hash (tiny segments may exceed it with 8-bit tables), and positions
    fit beside the low bits. At 10M hashes and radius 31 this gives m=11, b=23, addr_bits=21.
    """
    best: tuple[float, MihLayout] | None = None
    order = default_bit_order()
    for m in range(8, 17):
        b = min(256 // m, 28)
        for addr in range(min(b, 8), min(b, 28) + 1):
            if b - addr > 16 or n > 1 << (32 - (b - addr)):
                continue
            lay = MihLayout(m, b, addr, order)
            table_bytes = 4 * m * 2**addr / max(n, 1)
            if addr > 8 and (
                table_bytes > TABLE_BYTES_PER_HASH or bytes_per_hash(lay, n) > MAX_BYTES_PER_HASH
            ):
                continue
            ns = lay.expected_ns(n, radius)
            if best is None or ns < best[0]:
                best = (ns, lay)
    if best is None:
        raise ValueError(f"no MIH layout holds {n} hashes in one segment")
    return best[1]


def as_words(hashes: np.ndarray, what: str = "hashes") -> np.ndarray:
    """(..., 4) uint64 words from (..., 4) uint64 or (..., 32) uint8 (bytes in hex order)."""
    a = np.asarray(hashes)
    if a.dtype == np.uint8 and a.shape[-1:] == (32,):
        return np.ascontiguousarray(a).view(">u8").astype(np.uint64)
    if a.dtype == np.uint64 and a.shape[-1:] == (4,):
        return np.ascontiguousarray(a)
    raise ValueError(f"{what} must be (..., 4) uint64 or (..., 32) uint8, got {a.shape} {a.dtype}")


@dataclass(frozen=True)
class RawMatches:
    """Matches of a segment by position: ``query``, ``pos`` (int64) and ``distance`` (int16)."""

    query: np.ndarray
    pos: np.ndarray
    distance: np.ndarray


def _collect(parts: list[tuple[np.ndarray, np.ndarray, int]]) -> RawMatches:
    q = np.concatenate([p[0][: p[2]] for p in parts]) if parts else np.zeros(0, np.int64)
    packed = np.concatenate([p[1][: p[2]] for p in parts]) if parts else np.zeros(0, np.int64)
    return RawMatches(q, packed >> 8, (packed & 0xFF).astype(np.int16))


@dataclass(frozen=True)
class _Plan:
    """A segment's search at one radius: scan or probe, each table's radius, the probe masks."""

    scan: bool
    radii: np.ndarray
    masks: tuple[np.ndarray, np.ndarray, np.ndarray]


class MihSegment:
    """Immutable hashes + ids + MIH tables. Build with :meth:`build`, or :meth:`load` saved arrays."""

    def __init__(
        self,
        hashes: np.ndarray,
        ids: np.ndarray,
        layout: MihLayout,
        perms: np.ndarray | None,
        offsets: np.ndarray | None,
        token: str | None = None,
    ) -> None:
        self.hashes = hashes  # (n, 4) uint64, in table 0's bucket order
        self.ids = ids  # (n,) int64
        self.layout = layout
        self.perms = perms  # (m - 1, n) uint32 entries, or None for a flat (linear-scan) segment
        self.offsets = offsets  # (m, 2**addr_bits + 1) uint32, or None
        self.token = token or F.new_token()
        self._lut = layout.key_lut() if offsets is not None else None
        self._plans: dict[int, _Plan] = {}

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    @property
    def flat(self) -> bool:
        return self.offsets is None

    @property
    def nbytes(self) -> int:
        tables = 0 if self.perms is None or self.offsets is None else self.perms.nbytes + self.offsets.nbytes
        return int(self.hashes.nbytes + self.ids.nbytes + tables)

    def stored_keys(self) -> np.ndarray:
        return self.hashes

    @classmethod
    def build(
        cls, hashes: np.ndarray, ids: np.ndarray, layout: MihLayout | None = None, threads: int | None = None
    ) -> MihSegment:
        """Index ``hashes`` (n, 4) uint64 with ``ids`` (n,) int64; layout by :func:`choose_layout`."""
        hashes = as_words(hashes)
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        n = hashes.shape[0]
        if hashes.ndim != 2 or ids.shape != (n,):
            raise ValueError(f"hashes (n, 4) and ids (n,) must match: {hashes.shape} vs {ids.shape}")
        if n < FLAT_BELOW:  # scanned linearly: the layout is only recorded
            flat_layout = layout or MihLayout(1, 8, 8, default_bit_order())
            return cls(hashes.copy(), ids.copy(), flat_layout, None, None)
        layout = layout or choose_layout(n)
        if n > layout.max_hashes:
            raise ValueError(f"{n} hashes do not fit one segment of layout m={layout.m} b={layout.b}")
        threads = threads or default_threads()
        lut, m, low = layout.key_lut(), layout.m, layout.low_bits
        offsets = np.empty((m, (1 << layout.addr_bits) + 1), dtype=np.uint32)
        perms = np.empty((m - 1, n), dtype=np.uint32)
        # table 0 orders the hashes themselves; the other tables list positions in that order
        order = np.empty(n, dtype=np.uint32)
        K.bucket_table(_substring_keys(hashes, lut, 1, layout.b, threads)[0], low, False, order, offsets[0])
        hashes = gather_rows(hashes, order, threads)
        ids = ids[order]
        del order
        keys = _substring_keys(hashes, lut, m, layout.b, threads)

        def fill_tables(a: int, b: int) -> None:
            for t in range(a + 1, b + 1):
                K.bucket_table(keys[t], low, True, perms[t - 1], offsets[t])

        run_chunks(fill_tables, m - 1, threads, 1)
        return cls(hashes, ids, layout, perms, offsets)

    def search(
        self, queries: np.ndarray, radius: int, threads: int | None = None, method: str = "auto"
    ) -> RawMatches:
        """Every (query, position) within ``radius`` (0..255); ``queries`` is (Q, 4) uint64.

        ``method``: ``"mih"`` probes the tables, ``"scan"`` compares with every hash, ``"auto"``
        scans when the expected number of probes and candidates makes that cheaper (tiny
        segments, radii far above 31).
        """
        nq = queries.shape[0]
        if nq == 0 or len(self) == 0:
            return _collect([])
        threads = threads_for(nq, threads)
        hashes = self.hashes
        plan = self._plan(radius)
        scan = method == "scan" or (method == "auto" and plan.scan)
        if self.perms is None or self.offsets is None or self._lut is None or scan:
            parts = run_chunks(
                lambda a, b: K.flat_search(queries, a, b, hashes, radius), nq, threads, _chunk(nq, threads)
            )
            return _collect(parts)
        lay, perms, offsets = self.layout, self.perms, self.offsets
        qkeys = _substring_keys(queries, self._lut, lay.m, lay.b, 1)
        radii, (masks, weights, upto) = plan.radii, plan.masks
        parts = run_chunks(
            lambda a, b: K.mih_search(
                queries,
                qkeys,
                a,
                b,
                radii,
                lay.low_bits,
                hashes,
                perms,
                offsets,
                masks,
                weights,
                upto,
                radius,
            ),
            nq,
            threads,
            _chunk(nq, threads),
        )
        return _collect(parts)

    def _plan(self, radius: int) -> _Plan:
        """What a search at ``radius`` needs that depends only on the layout and the size: worked
        out once per radius (the cost model alone took a third of a one-query search over 1M)."""
        plan = self._plans.get(radius)
        if plan is None:
            lay = self.layout
            radii = lay.table_radii(radius)
            scan = lay.expected_ns(len(self), radius) >= len(self) * FLAT_NS
            plan = _Plan(scan, radii, flip_masks(lay.addr_bits, max(0, int(radii.max()))))
            self._plans[radius] = plan
        return plan

    # --- persistence -------------------------------------------------------------------------
    def arrays(self) -> dict[str, np.ndarray]:
        out = {"hashes": self.hashes, "ids": self.ids, "bit_order": self.layout.bit_order}
        if self.perms is not None and self.offsets is not None:
            out |= {"perms": self.perms, "offsets": self.offsets}
        return out

    def meta(self) -> dict[str, int | bool]:
        lay = self.layout
        return {"n": len(self), "m": lay.m, "b": lay.b, "addr_bits": lay.addr_bits, "flat": self.flat}

    @classmethod
    def load(cls, directory: Path, token: str, meta: dict[str, Any], mmap: bool) -> MihSegment:
        n, m = int(meta["n"]), int(meta["m"])
        bit_order = F.read_array(directory, token, "bit_order", mmap=False)
        layout = MihLayout(m, int(meta["b"]), int(meta["addr_bits"]), np.asarray(bit_order, dtype=np.int16))
        hashes = F.check_shape(F.read_array(directory, token, "hashes", mmap), (n, 4), np.uint64, directory)
        ids = F.check_shape(F.read_array(directory, token, "ids", mmap), (n,), np.int64, directory)
        perms = offsets = None
        if not meta["flat"]:
            perms = F.read_array(directory, token, "perms", mmap)
            offsets = F.read_array(directory, token, "offsets", mmap)
            F.check_shape(perms, (m - 1, n), np.uint32, directory)
            F.check_shape(offsets, (m, (1 << layout.addr_bits) + 1), np.uint32, directory)
        return cls(hashes, ids, layout, perms, offsets, token)


def _chunk(n: int, threads: int) -> int:
    """Small enough to balance the threads, large enough to amortise a kernel call (one thread:
    one call)."""
    if threads <= 1:
        return max(1, n)
    return max(1, min(256, -(-n // (4 * threads))))


def gather_rows(a: np.ndarray, order: np.ndarray, threads: int) -> np.ndarray:
    """``a[order]`` for 2-D ``a``, on threads (NumPy's fancy indexing of rows is 3x slower)."""
    out = np.empty_like(a)
    run_chunks(
        lambda s, e: K.gather_rows(a, order, out, s, e), len(a), threads, max(1, -(-len(a) // (4 * threads)))
    )
    return out


def _substring_keys(words: np.ndarray, lut: np.ndarray, m: int, b: int, threads: int) -> np.ndarray:
    """(m, n) uint32 keys of the first ``m`` substrings of ``b`` bits."""
    n = words.shape[0]
    out = np.empty((m, n), dtype=np.uint32)
    run_chunks(
        lambda s, e: K.substring_keys(words, lut, m, b, out, s, e), n, threads, max(1, -(-n // (4 * threads)))
    )
    return out
