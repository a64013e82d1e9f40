"""Platt scaling: raw model scores -> calibrated failure probabilities.

A two-parameter sigmoid fitted on out-of-fold scores of the training part. It is monotone, so it never
reorders builds (ranking metrics and the gate trade-off are unchanged), it needs few samples (recent
chronological blocks are small), and the gate applies it with one `math.exp`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cipulse.predict.treemodel import sigmoid


@dataclass(frozen=True, slots=True)
class Platt:
    slope: float
    intercept: float

    def probability(self, raw_score: float) -> float:
        return sigmoid(self.slope * raw_score + self.intercept)

    def to_json(self) -> dict[str, Any]:
        return {"method": "platt", "slope": self.slope, "intercept": self.intercept}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Platt:
        if data.get("method") != "platt":
            raise ValueError(f"unknown calibration method {data.get('method')!r}")
        slope, intercept = float(data["slope"]), float(data["intercept"])
        if not (math.isfinite(slope) and math.isfinite(intercept)):
            raise ValueError("calibration parameters must be finite")
        return cls(slope, intercept)


def fit_platt(raw_scores: Sequence[float], failed: Sequence[int]) -> Platt:
    """Fit the sigmoid by (lightly regularised) logistic regression on held-out scores."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    labels = np.asarray(failed, dtype=int)
    if labels.min() == labels.max():
        rate = min(max(float(labels.mean()), 1e-3), 1 - 1e-3)
        return Platt(0.0, math.log(rate / (1 - rate)))
    scores = np.asarray(raw_scores, dtype=float).reshape(-1, 1)
    model = LogisticRegression(C=100.0).fit(scores, labels)
    return Platt(float(model.coef_[0][0]), float(model.intercept_[0]))
