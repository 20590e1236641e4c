"""Vectorised brute force (XOR + popcount in NumPy): the reference the indexes are tested against."""

from __future__ import annotations

import numpy as np


def brute_force_hamming(
    queries: np.ndarray, haystack: np.ndarray, radius: int, block: int = 1 << 22
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every ``(query, haystack position, distance)`` with distance <= radius, sorted by query, position.

    ``queries`` (Q, 4) and ``haystack`` (N, 4) uint64; works block by block to bound memory.
    """
    qs, ps, ds = [], [], []
    step = max(1, block // max(1, haystack.shape[0]))
    for a in range(0, queries.shape[0], step):
        q = queries[a : a + step]
        d = np.bitwise_count(q[:, None, :] ^ haystack[None, :, :]).sum(axis=2, dtype=np.int16)
        qi, pos = np.nonzero(d <= radius)
        qs.append(qi + a)
        ps.append(pos)
        ds.append(d[qi, pos])
    if not qs:
        z = np.zeros(0, np.int64)
        return z, z, np.zeros(0, np.int16)
    return np.concatenate(qs).astype(np.int64), np.concatenate(ps).astype(np.int64), np.concatenate(ds)
