"""Training details: recency weights per project, and per-project calibration of a pooled model."""

from __future__ import annotations

import numpy as np
import pytest

from cipulse.predict.features import FEATURE_NAMES
from cipulse.predict.training import HALF_LIFE_DAYS, recency_weights, train

DAY = 86400.0


def test_recency_weights_halve_every_half_life_counted_per_project() -> None:
    times = np.array([0.0, HALF_LIFE_DAYS * DAY, 2 * HALF_LIFE_DAYS * DAY, 5 * DAY, 5 * DAY])
    groups = np.array([0, 0, 0, 1, 1])
    weights = recency_weights(times, groups)
    assert weights is not None
    assert weights.tolist() == pytest.approx([0.25, 0.5, 1.0, 1.0, 1.0])
    assert recency_weights(None, None) is None


def _pooled_history(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Two projects with the same signal but very different failure rates (10% and 60%)."""
    parts = []
    for group, rate in ((0, 0.1), (1, 0.6)):
        size = 1500
        features = np.full((size, len(FEATURE_NAMES)), np.nan)
        signal = rng.normal(size=size)
        failed = (rng.random(size) < rate * (1 + np.tanh(signal))).astype(int)
        features[:, 0] = signal + rng.normal(scale=0.5, size=size)
        features[:, FEATURE_NAMES.index("fail_ratio_all")] = rate
        blocks = np.minimum(np.arange(size) * 5 // size, 4)
        parts.append((features, failed, blocks, np.full(size, group)))
    return tuple(np.concatenate([part[i] for part in parts]) for i in range(4))  # type: ignore[return-value]


def test_pooled_model_gets_one_calibration_per_project() -> None:
    features, failed, blocks, groups = _pooled_history(np.random.default_rng(0))
    times = np.tile(np.arange(1500, dtype=float) * 3600, 2)
    model = train("lightgbm", features, failed, block_ids=blocks, times=times, groups=groups)
    assert set(model.by_group) == {0, 1}
    for group in (0, 1):
        rows = groups == group
        probabilities = model.probabilities(features[rows], group)
        # calibrated on that project's held-out builds: the mean probability tracks its own failure rate
        assert abs(probabilities.mean() - failed[rows].mean()) < 0.08
    assert model.decision(0).recall_threshold != model.decision(1).recall_threshold
    assert model.decision(None) is model.pooled
    assert model.decision(7) is model.pooled  # unknown project: the pooled calibration
