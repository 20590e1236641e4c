"""Scoring a method of the robustness evaluation: recall and precision at the operating threshold,
thresholds chosen on one half and applied to the other, false matches and the closest different
pairs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Protocol

import numpy as np

from opspoor.evaluate.methods import Method
from opspoor.evaluate.transforms import Transform

#: distances are stored as uint8; "no hash of this kind" is this far (never matches)
FAR = 255
#: thresholds swept when choosing one for a target precision
MAX_SWEEP = 128
#: false matches listed per method
MAX_EXAMPLES = 50
#: closest different pairs listed per method
MAX_CLOSEST = 10


class Operating(Protocol):
    """What scoring reads of an evaluation's configuration."""

    threshold: int
    target_precision: float


@dataclass
class Scores:
    """What a method achieves, pooled and per transform."""

    method: str
    note: str
    hashes_per_query: float
    hashes_per_original: float
    recall: float  # at the operating threshold
    true_matches: int
    false_wrong_original: int  # (query, wrong original) pairs within the threshold
    false_distractor: int  # (distractor query, original) pairs within the threshold
    precision: float
    #: chosen on half A (applied to B), on half B (applied to A), among 0 to the operating threshold
    thresholds: tuple[int, int]
    heldout_recall: float
    heldout_precision: float
    #: the same with the threshold chosen among any up to MAX_SWEEP: on a corpus of a few hundred
    #: originals it lands just below one half's closest different pair, above the product's range
    thresholds_any: tuple[int, int]
    heldout_recall_any: float
    heldout_precision_any: float
    per_transform: dict[str, dict[str, float | int]]
    false_matches: list[dict[str, str | int]]  # the first MAX_EXAMPLES false matches at the threshold
    #: the MAX_CLOSEST closest different pairs, whatever their distance: what decides the
    #: held-out thresholds and how much room is left above the operating one
    closest_different: list[dict[str, str | int]]
    same_histogram: list[int]  # distance of each edited copy to its own original
    different_histogram: list[int]  # distance of each (query, other original) pair


def _precision(tp: np.ndarray, fp: np.ndarray) -> np.ndarray:
    total = tp + fp
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total > 0, tp / np.maximum(total, 1), 1.0)


def _choose_threshold(
    same: np.ndarray, wrong_hist: np.ndarray, target: float, max_threshold: int = MAX_SWEEP
) -> int:
    """Largest threshold (<= ``max_threshold``) whose precision on these queries reaches ``target``."""
    t = np.arange(max_threshold + 1)
    tp = np.searchsorted(np.sort(same), t, side="right")
    fp = np.cumsum(wrong_hist)[t]
    ok = np.nonzero(_precision(tp, fp) >= target)[0]
    return int(ok.max()) if len(ok) else -1


def score_method(
    method: Method,
    dist: np.ndarray,
    truth: np.ndarray,
    transform_of: np.ndarray,
    half_b: np.ndarray,
    suite: Sequence[Transform],
    cfg: Operating,
    counts: tuple[float, float],
    names: tuple[Sequence[str], Sequence[str]] | None = None,
    flat: np.ndarray | None = None,
) -> Scores:
    """Scores of one method from its (Q, N) distances. ``truth`` is the original of each query
    (-1 for distractors); ``half_b`` marks the queries of the second half; ``names`` labels the
    queries and the originals for the list of false matches; ``flat`` marks the originals whose
    PDQ quality is below ``FLAT_QUALITY`` (per transform, ``recall_not_flat`` leaves their copies out)."""
    q = np.arange(len(truth))
    edited = truth >= 0
    wrong = np.ones(dist.shape, dtype=bool)
    wrong[q[edited], truth[edited]] = False
    same = np.where(edited, dist[q, np.maximum(truth, 0)], FAR).astype(np.int64)
    wrong_d = np.where(wrong, dist, FAR)
    thr = cfg.threshold
    false_per_query = (wrong_d <= thr).sum(axis=1)
    hist_wrong = [np.bincount(wrong_d[h].ravel(), minlength=FAR + 1) for h in (~half_b, half_b)]

    def held_out(max_threshold: int) -> tuple[tuple[int, int], np.ndarray, int]:
        """Thresholds chosen on each half, the copies found by the other half's, its false pairs."""
        t_a = _choose_threshold(same[edited & ~half_b], hist_wrong[0], cfg.target_precision, max_threshold)
        t_b = _choose_threshold(same[edited & half_b], hist_wrong[1], cfg.target_precision, max_threshold)
        applied = np.where(half_b, t_a, t_b)
        return (t_a, t_b), edited & (same <= applied), int((wrong_d <= applied[:, None]).sum())

    # the product's range first: with fewer than 1 / (1 - target) true matches in a half, the
    # target allows no false pair, so a threshold swept beyond it stops just below that half's
    # closest different pair, and the other half fails whenever its own closest one is nearer
    thresholds, held_tp, held_fp = held_out(thr)
    thresholds_any, held_tp_any, held_fp_any = held_out(MAX_SWEEP)
    not_flat = edited & ~flat[np.maximum(truth, 0)] if flat is not None else edited
    per_transform: dict[str, dict[str, float | int]] = {}
    for j, t in enumerate(suite):
        rows = edited & (transform_of == j)
        if not rows.any():
            continue
        textured = rows & not_flat
        per_transform[t.name] = {
            "queries": int(rows.sum()),
            "recall": float((same[rows] <= thr).mean()),
            "heldout_recall": float(held_tp[rows].mean()),
            "heldout_recall_any": float(held_tp_any[rows].mean()),
            "false_matches": int(false_per_query[rows].sum()),
            "median_distance": float(np.median(same[rows])),
        }
        if textured.any():  # left out when every original of the row is flat
            per_transform[t.name]["recall_not_flat"] = float((same[textured] <= thr).mean())

    def pair(qi: int, oi: int) -> dict[str, str | int]:
        return {
            "query": names[0][qi] if names else str(qi),
            "original": names[1][oi] if names else str(oi),
            "distance": int(wrong_d[qi, oi]),
        }

    false_pairs = [
        pair(qi, oi) for qi, oi in islice(zip(*np.nonzero(wrong_d <= thr), strict=True), MAX_EXAMPLES)
    ]
    k = min(MAX_CLOSEST, wrong_d.size)
    nearest = np.argpartition(wrong_d.ravel(), k - 1)[:k] if k else np.zeros(0, dtype=np.int64)
    nearest = nearest[np.argsort(wrong_d.ravel()[nearest], kind="stable")]
    nearest = nearest[wrong_d.ravel()[nearest] < FAR]  # FAR: never compared, no pair
    closest = [pair(qi, oi) for qi, oi in zip(*np.unravel_index(nearest, wrong_d.shape), strict=True)]
    tp = int((same[edited] <= thr).sum())
    fp_wrong = int(false_per_query[edited].sum())
    fp_distr = int(false_per_query[~edited].sum())
    diff_all = wrong_d[wrong]
    return Scores(
        method=method.name,
        note=method.note,
        hashes_per_query=counts[0],
        hashes_per_original=counts[1],
        recall=tp / max(int(edited.sum()), 1),
        true_matches=tp,
        false_wrong_original=fp_wrong,
        false_distractor=fp_distr,
        precision=float(_precision(np.array(tp), np.array(fp_wrong + fp_distr))),
        thresholds=thresholds,
        heldout_recall=float(held_tp[edited].mean()) if edited.any() else 0.0,
        heldout_precision=float(_precision(np.array(held_tp.sum()), np.array(held_fp))),
        thresholds_any=thresholds_any,
        heldout_recall_any=float(held_tp_any[edited].mean()) if edited.any() else 0.0,
        heldout_precision_any=float(_precision(np.array(held_tp_any.sum()), np.array(held_fp_any))),
        per_transform=per_transform,
        false_matches=false_pairs,
        closest_different=closest,
        same_histogram=np.bincount(same[edited], minlength=FAR + 1).tolist(),
        different_histogram=np.bincount(diff_all, minlength=FAR + 1).tolist(),
    )
