"""Evaluation measures: ROC-AUC, PR-AUC, F1 of the failing class and the gate trade-off.

The trade-off answers "if the gate skips the expensive tests for the X% of builds it rates least likely to
fail, what share of failing builds still runs them?". Ties (the previous-outcome baseline has only two
scores) are broken at random, and we report the expected value, so no baseline gains from a lucky order.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]


def f1_fail(failed: Sequence[int] | FloatArray, predicted_fail: Sequence[bool] | FloatArray) -> float:
    y = np.asarray(failed, dtype=float)
    p = np.asarray(predicted_fail, dtype=float)
    true_pos = float((y * p).sum())
    denominator = float(y.sum() + p.sum())
    return 2 * true_pos / denominator if denominator else 0.0


def roc_auc(failed: Sequence[int] | FloatArray, scores: Sequence[float] | FloatArray) -> float:
    from sklearn.metrics import roc_auc_score

    y = np.asarray(failed)
    return float(roc_auc_score(y, scores)) if 0 < y.sum() < len(y) else float("nan")


def pr_auc(failed: Sequence[int] | FloatArray, scores: Sequence[float] | FloatArray) -> float:
    from sklearn.metrics import average_precision_score

    y = np.asarray(failed)
    return float(average_precision_score(y, scores)) if y.sum() > 0 else float("nan")


def brier(failed: Sequence[int] | FloatArray, probabilities: Sequence[float] | FloatArray) -> float:
    y = np.asarray(failed, dtype=float)
    return float(np.mean((np.asarray(probabilities, dtype=float) - y) ** 2))


def kept_failures(
    failed: Sequence[int] | FloatArray, scores: Sequence[float] | FloatArray, skipped_share: float
) -> tuple[float, float]:
    """(expected failing builds still run, failing builds) when the lowest-scored share is skipped."""
    y = np.asarray(failed, dtype=float)
    s = np.asarray(scores, dtype=float)
    to_skip = round(skipped_share * len(y))
    total_failures = float(y.sum())
    if to_skip == 0:
        return total_failures, total_failures
    skipped_failures = 0.0
    remaining = to_skip
    for value in np.unique(s):  # ascending: least likely to fail first
        group = s == value
        size = int(group.sum())
        failures = float(y[group].sum())
        if size <= remaining:
            skipped_failures += failures
            remaining -= size
        else:
            skipped_failures += failures * remaining / size
            remaining = 0
        if remaining == 0:
            break
    return total_failures - skipped_failures, total_failures


def kept_share_per_fold(
    failed: Sequence[int] | FloatArray,
    scores: Sequence[float] | FloatArray,
    folds: Sequence[int] | FloatArray,
    skipped_share: float,
) -> float:
    """Share of failing builds still run when the lowest-scored share of *each fold* is skipped, summed
    over the folds (a gate decides within one period, never across the whole history at once)."""
    y, s, f = np.asarray(failed), np.asarray(scores), np.asarray(folds)
    kept = total = 0.0
    for fold in np.unique(f):
        rows = f == fold
        fold_kept, fold_total = kept_failures(y[rows], s[rows], skipped_share)
        kept, total = kept + fold_kept, total + fold_total
    return kept / total if total else float("nan")


def tradeoff_curve(
    failed: Sequence[int] | FloatArray, scores: Sequence[float] | FloatArray, shares: Sequence[float]
) -> list[tuple[float, float]]:
    """(share skipped, share of failing builds still run) for each share."""
    result = []
    for share in shares:
        kept, total = kept_failures(failed, scores, share)
        result.append((share, kept / total if total else float("nan")))
    return result
