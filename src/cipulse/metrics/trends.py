"""Week-over-week change and change points in durations and failure rates.

`week_over_week` compares two `GroupFacts` of equal-length windows. `change_points` finds shifts in the
mean of a time-ordered series with ruptures' PELT search and an L2 (mean-shift) cost. The penalty defaults
to a BIC-style ``2 * sigma^2 * ln(n)``, with sigma estimated robustly from first differences
(``MAD(diff) / (0.6745 * sqrt(2))``), so single outliers do not count as change points while a sustained
shift of a few sigma does. A series shorter than ``2 * min_size`` has no detectable change point.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from cipulse.metrics.facts import GroupFacts

WOW_METRICS = (
    "total",
    "success_rate",
    "failure",
    "duration_p50",
    "duration_p95",
    "queue_p50",
    "queue_p95",
    "billable_minutes",
    "cost_usd",
)


@dataclass(frozen=True, slots=True)
class Change:
    metric: str
    previous: float | None
    current: float | None

    @property
    def absolute(self) -> float | None:
        if self.previous is None or self.current is None:
            return None
        return self.current - self.previous

    @property
    def relative(self) -> float | None:
        """Fractional change; None when there is no baseline (previous missing or zero)."""
        if self.previous is None or self.current is None or self.previous == 0:
            return None
        return (self.current - self.previous) / abs(self.previous)


def week_over_week(current: GroupFacts, previous: GroupFacts) -> list[Change]:
    """One `Change` per metric in `WOW_METRICS`."""
    return [Change(m, getattr(previous, m), getattr(current, m)) for m in WOW_METRICS]


@dataclass(frozen=True, slots=True)
class ChangePoint:
    index: int
    at: datetime | None
    mean_before: float
    mean_after: float


def robust_sigma(values: Sequence[float]) -> float:
    """Noise level from first differences' median absolute deviation (insensitive to level shifts)."""
    if len(values) < 3:
        return 0.0
    diffs = sorted(b - a for a, b in itertools.pairwise(values))
    median = diffs[len(diffs) // 2]
    mad = sorted(abs(d - median) for d in diffs)[len(diffs) // 2]
    return mad / (0.6745 * math.sqrt(2))


def change_points(
    values: Sequence[float],
    times: Sequence[datetime] | None = None,
    *,
    penalty: float | None = None,
    min_size: int = 5,
) -> list[ChangePoint]:
    """Indices where the mean of `values` shifts (the first index of each new segment)."""
    n = len(values)
    if n < 2 * min_size:
        return []
    sigma = robust_sigma(values)
    if penalty is None:
        if sigma == 0:
            sigma = _stdev(values) or 1.0
        penalty = 2 * sigma * sigma * math.log(n)
    import numpy as np
    import ruptures

    signal = np.asarray(values, dtype=float).reshape(-1, 1)
    ends = ruptures.Pelt(model="l2", min_size=min_size, jump=1).fit(signal).predict(pen=penalty)
    points = []
    previous = 0
    bounds = list(ends)
    for position, end in enumerate(bounds[:-1]):
        following = bounds[position + 1]
        before = values[previous:end]
        after = values[end:following]
        points.append(
            ChangePoint(
                index=end,
                at=None if times is None else times[end],
                mean_before=sum(before) / len(before),
                mean_after=sum(after) / len(after),
            )
        )
        previous = end
    return points


def _stdev(values: Sequence[float]) -> float:
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
