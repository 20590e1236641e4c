"""Add / remove / merge steps replayed on a live index and on the plain arrays it should equal."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from opspoor.index.live import LiveIndex

#: new values for an ``add`` step: (the step's generator, how many, the values held so far)
NewValues = Callable[[np.random.Generator, int, np.ndarray], np.ndarray]


def replay_ops(
    index: LiveIndex[Any],
    values: np.ndarray,
    ids: np.ndarray,
    ops: Sequence[tuple[str, int, int]],
    new_values: NewValues,
    id_limit: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Apply each (op, size, seed) to ``index`` and to ``values``/``ids`` alike; the arrays after.

    Ids are drawn below ``id_limit`` so they repeat: a remove drops every entry of an id.
    """
    for op, size, s in ops:
        r = np.random.default_rng(s)
        if op == "add":
            new = new_values(r, size, values)
            new_ids = r.integers(0, id_limit, size=size)
            index.add(new, new_ids)
            values, ids = np.concatenate([values, new]), np.concatenate([ids, new_ids])
        elif op == "remove":
            gone = r.integers(0, id_limit, size=size)
            index.remove(gone)
            keep = ~np.isin(ids, gone)
            values, ids = values[keep], ids[keep]
        else:
            index.merge()
            assert index.delta_size == 0
        assert len(index) == len(ids)
    return values, ids
