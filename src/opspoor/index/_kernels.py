"""Compiled inner loops of the indexes (numba, ``nogil`` so that Python threads run them in parallel).

No kernel here uses numba's own threading (``parallel=True``): its default work-queue layer aborts
when two Python threads enter parallel code at once, and a service searches from several threads
while a merge runs in another. Parallelism comes from :func:`opspoor.index._threads.run_chunks`.

Arithmetic note: numba turns ``uint64 op int64`` into float64, so mixed expressions cast explicitly.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic


@intrinsic
def _popcount64(typingctx, x):  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
    """LLVM's ctpop: one POPCNT instruction on the host CPU."""
    sig = types.uint64(types.uint64)

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        (val,) = args
        fn = builder.module.declare_intrinsic("llvm.ctpop", [val.type])
        return builder.call(fn, [val])

    return sig, codegen


@intrinsic
def _prefetch(typingctx, arr, idx):  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
    """Hint the CPU to fetch element ``idx`` of contiguous ``arr`` (flat index) into cache.

    The search loses most of its time waiting for memory; issuing the loads of a pass ahead of
    use keeps dozens of misses in flight instead of the few the out-of-order window holds.
    """
    sig = types.void(arr, idx)

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        i8p = ir.IntType(8).as_pointer()
        ptr = builder.bitcast(builder.gep(ary.data, [args[1]]), i8p)
        fnty = ir.FunctionType(ir.VoidType(), [i8p, ir.IntType(32), ir.IntType(32), ir.IntType(32)])
        fn = builder.module.declare_intrinsic("llvm.prefetch", fnty=fnty)
        i32 = ir.IntType(32)
        # read, high temporal locality, data cache
        builder.call(fn, [ptr, ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return sig, codegen


# plain names for the jitted code (typed Any: mypy cannot see through numba's intrinsic wrapper)
popcount64: Any = _popcount64
prefetch: Any = _prefetch

#: how many candidates ahead the verification pass prefetches (measured: 8..16 is best)
PREFETCH_AHEAD = 16


@njit(nogil=True, cache=True, inline="always")
def _distance(h: np.ndarray, i: int, q0: np.uint64, q1: np.uint64, q2: np.uint64, q3: np.uint64) -> np.int64:
    return np.int64(
        popcount64(h[i, 0] ^ q0)
        + popcount64(h[i, 1] ^ q1)
        + popcount64(h[i, 2] ^ q2)
        + popcount64(h[i, 3] ^ q3)
    )


# --------------------------------------------------------------------------------------------
# building blocks


@njit(nogil=True, cache=True)
def substring_keys(
    words: np.ndarray, lut: np.ndarray, m: int, b: int, out: np.ndarray, start: int, stop: int
) -> None:
    """``out[t, i]`` = key of substring ``t`` of hash ``i``, for ``start <= i < stop``.

    ``lut[j, v]`` (4 uint64) is byte ``j`` having value ``v``, moved to its places in the bit
    order; so the permuted hash costs 32 table look-ups, and substring ``t`` is its bits
    ``t*b .. t*b + b - 1``.
    """
    pw = np.zeros(5, dtype=np.uint64)  # one spare word: a substring may straddle word 3 and "4"
    mask = (np.uint64(1) << np.uint64(b)) - np.uint64(1)
    for i in range(start, stop):
        pw[:] = 0
        for w in range(4):
            word = words[i, w]
            for k in range(8):
                v = np.int64((word >> np.uint64(8 * k)) & np.uint64(0xFF))
                j = 8 * w + k
                pw[0] |= lut[j, v, 0]
                pw[1] |= lut[j, v, 1]
                pw[2] |= lut[j, v, 2]
                pw[3] |= lut[j, v, 3]
        for t in range(m):
            s = t * b
            wi = s >> 6
            off = s & 63
            key = pw[wi] >> np.uint64(off)
            if off + b > 64:
                key |= pw[wi + 1] << np.uint64(64 - off)
            out[t, i] = np.uint32(key & mask)


@njit(nogil=True, cache=True)
def gather_rows(src: np.ndarray, order: np.ndarray, dst: np.ndarray, start: int, stop: int) -> None:
    """``dst[i] = src[order[i]]`` for ``start <= i < stop`` (NumPy's take is slow on rows)."""
    for i in range(start, stop):
        o = np.int64(order[i])
        for c in range(src.shape[1]):
            dst[i, c] = src[o, c]


@njit(nogil=True, cache=True)
def bucket_table(
    keys: np.ndarray, low_bits: int, pack_low: bool, entries: np.ndarray, offsets: np.ndarray
) -> None:
    """Stable counting sort of positions by ``keys >> low_bits`` into ``entries`` and ``offsets``.

    Bucket ``a`` is ``entries[offsets[a]:offsets[a + 1]]`` (``len(offsets)`` = buckets + 1). With
    ``pack_low``, an entry is ``low << (32 - low_bits) | position``: the key bits below the address
    ride along in the spare top bits of the uint32, so a probe filters on them without touching
    the hash; else an entry is just the position.
    """
    n = keys.shape[0]
    n_buckets = offsets.shape[0] - 1
    offsets[:] = 0
    for i in range(n):
        offsets[(np.int64(keys[i]) >> low_bits) + 1] += 1
    for b in range(n_buckets):
        offsets[b + 1] += offsets[b]
    cursor = offsets[:-1].copy()
    low_mask = (np.int64(1) << low_bits) - 1
    shift = 32 - low_bits
    for i in range(n):
        k = np.int64(keys[i])
        a = k >> low_bits
        e = np.int64(i)
        if pack_low and low_bits > 0:
            e |= (k & low_mask) << shift
        entries[np.int64(cursor[a])] = np.uint32(e)
        cursor[a] += 1


@njit(nogil=True, cache=True)
def _grow(a: np.ndarray, need: int) -> np.ndarray:
    if need <= a.shape[0]:
        return a
    b = np.empty(max(need, 2 * a.shape[0]), dtype=a.dtype)
    b[: a.shape[0]] = a
    return b


@njit(nogil=True, cache=True)
def _emit_unique(
    found: np.ndarray, n: int, qi: int, out_q: np.ndarray, out_packed: np.ndarray, n_out: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """Append the distinct values of ``found[:n]`` (``pos << 8 | distance``) for query ``qi``."""
    s = np.sort(found[:n])
    out_q = _grow(out_q, n_out + n)
    out_packed = _grow(out_packed, n_out + n)
    last = np.int64(-1)
    for k in range(n):
        if s[k] != last:
            out_q[n_out] = qi
            out_packed[n_out] = s[k]
            n_out += 1
            last = s[k]
    return out_q, out_packed, n_out


# --------------------------------------------------------------------------------------------
# Hamming search


@njit(nogil=True, cache=True)
def mih_search(
    queries: np.ndarray,
    qkeys: np.ndarray,
    q_start: int,
    q_stop: int,
    table_radius: np.ndarray,
    low_bits: int,
    hashes: np.ndarray,
    perms: np.ndarray,
    offsets: np.ndarray,
    masks: np.ndarray,
    mask_weight: np.ndarray,
    masks_upto: np.ndarray,
    radius: int,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Multi-index search of queries ``q_start..q_stop``: every position within ``radius``.

    ``qkeys[t, q]``: the ``b``-bit key of substring ``t`` of query ``q``; its top bits address
    table ``t``'s buckets, its ``low_bits`` are compared with those packed in the entries. Table
    ``t`` yields the entries whose key is within ``table_radius[t]`` flips (``-1``: table skipped):
    every address within that many flips is probed (``masks``, sorted by weight, ``masks_upto[r]``
    of weight <= r), and an entry passes if its low bits are within the flips left over.
    Table 0 is the hash order itself (no entries, no low-bit filter); table ``t >= 1`` lists its
    entries in ``perms[t - 1]``. All arrays C-contiguous.
    Returns ``(query, pos << 8 | distance, count)``, unique per query, sorted by position.

    Each query runs in passes that only load what the previous pass prefetched, with no
    data-dependent branch around the loads, so many cache misses are in flight at once (a
    plain loop over buckets waits for each miss in turn and is 2-3x slower): probe addresses
    (prefetch offsets); bucket bounds (prefetch buckets); candidates; distances (prefetching a
    few candidates ahead).
    """
    m = offsets.shape[0]
    n_off = offsets.shape[1]
    n_hash = hashes.shape[0]
    n_probes = 0
    for t in range(m):
        if table_radius[t] >= 0:
            n_probes += int(masks_upto[table_radius[t]])
    lo = np.empty(n_probes, dtype=np.int64)
    hi = np.empty(n_probes, dtype=np.int64)
    probe_table = np.empty(n_probes, dtype=np.int64)
    probe_budget = np.empty(n_probes, dtype=np.int64)
    qlow = np.zeros(m, dtype=np.uint64)
    cand = np.empty(4096, dtype=np.int64)
    found = np.empty(256, dtype=np.int64)
    out_q = np.empty(1024, dtype=np.int64)
    out_packed = np.empty(1024, dtype=np.int64)
    n_out = 0
    pos_mask = np.uint64((1 << (32 - low_bits)) - 1)
    low_shift = np.uint64(32 - low_bits)
    offsets_flat = offsets.reshape(-1)
    for qi in range(q_start, q_stop):
        # pass 1: probe addresses (as flat offsets indices)
        p = 0
        for t in range(m):
            rt = table_radius[t]
            if rt < 0:
                continue
            key = np.int64(qkeys[t, qi])
            qlow[t] = np.uint64(key & ((1 << low_bits) - 1))
            addr = key >> low_bits
            for mi in range(np.int64(masks_upto[rt])):
                f = t * n_off + (addr ^ np.int64(masks[mi]))
                prefetch(offsets, f)
                lo[p] = f
                probe_table[p] = t
                probe_budget[p] = rt - np.int64(mask_weight[mi])
                p += 1
        # pass 2: bucket bounds
        total = 0
        for p in range(n_probes):
            f = lo[p]
            a = np.int64(offsets_flat[f])
            b = np.int64(offsets_flat[f + 1])
            lo[p] = a
            hi[p] = b
            t = probe_table[p]
            if t == 0:
                prefetch(hashes, a * 4)
            else:
                prefetch(perms, (t - 1) * n_hash + a)
            total += int(b - a)
        # pass 3: candidates (entries whose low bits are within the flips left)
        cand = _grow(cand, total)
        c = 0
        for p in range(n_probes):
            t = probe_table[p]
            if t == 0:
                for j in range(lo[p], hi[p]):
                    cand[c] = j
                    c += 1
            else:
                budget = probe_budget[p]
                ql = qlow[t]
                row = t - 1
                for j in range(lo[p], hi[p]):
                    e = np.uint64(perms[row, j])
                    cand[c] = np.int64(e & pos_mask)
                    c += int(np.int64(popcount64((e >> low_shift) ^ ql)) <= budget)
        # pass 4: distances, appended without a branch
        found = _grow(found, c + 1)
        q0 = queries[qi, 0]
        q1 = queries[qi, 1]
        q2 = queries[qi, 2]
        q3 = queries[qi, 3]
        for c2 in range(min(PREFETCH_AHEAD, c)):
            prefetch(hashes, cand[c2] * 4)
        n = 0
        for c2 in range(c):
            if c2 + PREFETCH_AHEAD < c:
                prefetch(hashes, cand[c2 + PREFETCH_AHEAD] * 4)
            pos = cand[c2]
            d = _distance(hashes, pos, q0, q1, q2, q3)
            found[n] = (pos << 8) | d
            n += int(d <= radius)
        if n:
            out_q, out_packed, n_out = _emit_unique(found, n, qi, out_q, out_packed, n_out)
    return out_q, out_packed, n_out


@njit(nogil=True, cache=True)
def flat_search(
    queries: np.ndarray, q_start: int, q_stop: int, hashes: np.ndarray, radius: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """Linear scan (small segments, or radii where probing would touch most buckets anyway)."""
    out_q = np.empty(1024, dtype=np.int64)
    out_packed = np.empty(1024, dtype=np.int64)
    n_out = 0
    for qi in range(q_start, q_stop):
        q0 = queries[qi, 0]
        q1 = queries[qi, 1]
        q2 = queries[qi, 2]
        q3 = queries[qi, 3]
        for pos in range(hashes.shape[0]):
            d = _distance(hashes, pos, q0, q1, q2, q3)
            if d <= radius:
                out_q = _grow(out_q, n_out + 1)
                out_packed = _grow(out_packed, n_out + 1)
                out_q[n_out] = qi
                out_packed[n_out] = (pos << 8) | d
                n_out += 1
    return out_q, out_packed, n_out


# --------------------------------------------------------------------------------------------
# exact lookup


@njit(nogil=True, cache=True)
def exact_lookup(
    q_prefix: np.ndarray,
    q_rest: np.ndarray,
    q_start: int,
    q_stop: int,
    prefix: np.ndarray,
    rest: np.ndarray,
    offsets: np.ndarray,
    shift: int,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Positions whose key equals the query's, for queries ``q_start..q_stop``.

    A key is its first 8 bytes as a big-endian uint64 (``prefix``) and the bytes after them
    (``rest``); bucket ``prefix >> shift`` (a direct-address table over the top bits) is scanned.
    Queries go in blocks, each in passes with prefetching, to keep many cache misses in flight.
    """
    out_q = np.empty(1024, dtype=np.int64)
    out_pos = np.empty(1024, dtype=np.int64)
    n_out = 0
    width = rest.shape[1]
    block = 64
    lo = np.empty(block, dtype=np.int64)
    hi = np.empty(block, dtype=np.int64)
    for b0 in range(q_start, q_stop, block):
        b1 = min(b0 + block, q_stop)
        for qi in range(b0, b1):
            lo[qi - b0] = np.int64(q_prefix[qi] >> np.uint64(shift)) if shift < 64 else 0
            prefetch(offsets, lo[qi - b0])
        for qi in range(b0, b1):
            bucket = lo[qi - b0]
            lo[qi - b0] = np.int64(offsets[bucket])
            hi[qi - b0] = np.int64(offsets[bucket + 1])
            prefetch(prefix, lo[qi - b0])
            if width:
                prefetch(rest, lo[qi - b0] * width)
        for qi in range(b0, b1):
            p = q_prefix[qi]
            for pos in range(lo[qi - b0], hi[qi - b0]):
                if prefix[pos] != p:
                    continue
                same = True
                for c in range(width):
                    if rest[pos, c] != q_rest[qi, c]:
                        same = False
                        break
                if same:
                    out_q = _grow(out_q, n_out + 1)
                    out_pos = _grow(out_pos, n_out + 1)
                    out_q[n_out] = qi
                    out_pos[n_out] = pos
                    n_out += 1
    return out_q, out_pos, n_out


@njit(nogil=True, cache=True)
def positions_of_ids(ids: np.ndarray, order: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Positions ``p`` with ``ids[p]`` in ``wanted``; ``order`` sorts ``ids`` (binary search each)."""
    out = np.empty(16, dtype=np.int64)
    n_out = 0
    n = ids.shape[0]
    for k in range(wanted.shape[0]):
        w = wanted[k]
        lo, hi = 0, n
        while lo < hi:
            mid = (lo + hi) >> 1
            if ids[np.int64(order[mid])] < w:
                lo = mid + 1
            else:
                hi = mid
        while lo < n and ids[np.int64(order[lo])] == w:
            out = _grow(out, n_out + 1)
            out[n_out] = order[lo]
            n_out += 1
            lo += 1
    return out[:n_out]
