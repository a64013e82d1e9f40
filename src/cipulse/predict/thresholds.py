"""Decision thresholds, always chosen on (out-of-fold) training predictions, never on test data."""

from __future__ import annotations

import math
from collections.abc import Sequence


def threshold_for_recall(
    probabilities: Sequence[float], failed: Sequence[int], target_recall: float
) -> float:
    """The highest threshold that still flags `target_recall` of the failing builds (p >= threshold)."""
    if not 0.0 < target_recall <= 1.0:
        raise ValueError("target recall must be in (0, 1]")
    failing = sorted((p for p, y in zip(probabilities, failed, strict=True) if y), reverse=True)
    if not failing:
        return 0.5
    needed = max(1, math.ceil(target_recall * len(failing) - 1e-9))
    return failing[min(needed, len(failing)) - 1]


def threshold_for_f1(probabilities: Sequence[float], failed: Sequence[int]) -> float:
    """The threshold maximising F1 of the failing class (p >= threshold means "will fail")."""
    pairs = sorted(zip(probabilities, failed, strict=True), reverse=True)
    positives = sum(y for _, y in pairs)
    if positives == 0:
        return 1.0
    best_f1, best_threshold = -1.0, 1.0
    true_pos = 0
    for index, (probability, label) in enumerate(pairs):
        true_pos += label
        is_last_of_tie = index + 1 == len(pairs) or pairs[index + 1][0] != probability
        if not is_last_of_tie:
            continue
        flagged = index + 1
        f1 = 2 * true_pos / (flagged + positives)
        if f1 > best_f1:
            best_f1, best_threshold = f1, probability
    return best_threshold


def f1_thresholds_by_group(
    probabilities: Sequence[float], failed: Sequence[int], groups: Sequence[int], candidates: int = 41
) -> dict[int, float]:
    """One threshold per group (e.g. after a failing / after a passing build) maximising the overall F1.

    A single threshold treats "p = 0.4 right after a failure" like "p = 0.4 after a pass"; letting each
    group have its own cut-off (the repeat-the-previous-outcome rule is one such pair) is chosen on
    training predictions like the single threshold, over a grid of quantiles of each group's scores.
    """
    import numpy as np

    p = np.asarray(probabilities, dtype=float)
    y = np.asarray(failed, dtype=int)
    g = np.asarray(groups, dtype=int)
    positives = int(y.sum())
    if positives == 0:
        return {int(group): 1.0 for group in np.unique(g)}
    grids, flagged, true_pos = {}, {}, {}
    for group in np.unique(g).tolist():
        scores, labels = p[g == group], y[g == group]
        grid = np.unique(np.r_[np.quantile(scores, np.linspace(0, 1, candidates)), np.inf])
        grids[group] = grid
        flagged[group] = (scores[None, :] >= grid[:, None]).sum(axis=1)
        true_pos[group] = ((scores[None, :] >= grid[:, None]) & (labels[None, :] == 1)).sum(axis=1)
    names = sorted(grids)
    total_flagged = np.zeros([len(grids[n]) for n in names])
    total_true = np.zeros_like(total_flagged)
    for axis, name in enumerate(names):
        shape = [1] * len(names)
        shape[axis] = len(grids[name])
        total_flagged = total_flagged + flagged[name].reshape(shape)
        total_true = total_true + true_pos[name].reshape(shape)
    f1 = 2 * total_true / (total_flagged + positives)
    best = np.unravel_index(int(np.argmax(f1)), f1.shape)
    return {name: float(min(grids[name][index], 1.01)) for name, index in zip(names, best, strict=True)}
