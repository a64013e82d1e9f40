"""Decision thresholds, always chosen on (out-of-fold) training predictions, never on test data."""

from __future__ import annotations

import math
from collections.abc import Sequence


def threshold_for_recall(probabilities: Sequence[float], failed: Sequence[int], target_recall: float) -> float:
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
