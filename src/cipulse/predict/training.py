"""Fit a model, its calibration and its thresholds from one training part.

Everything is learned from the training rows only: the last chronological blocks of the training part are
predicted by models fitted on the blocks before them (out-of-fold, like the outer protocol), the Platt
calibration and both thresholds are fitted on those out-of-fold predictions, and the final model is then
refitted on the whole training part. Class imbalance: failing builds are weighted up to balance the
classes (the calibration brings probabilities back to real rates). Drift: projects change over years, so
LightGBM's training rows are weighted down exponentially with their age (half-life HALF_LIFE_DAYS before
the newest build of their project in that fit), which the development protocol preferred to equal weights
and to a fixed recent window.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from cipulse.predict.calibration import Platt, fit_platt
from cipulse.predict.features import FEATURE_NAMES
from cipulse.predict.thresholds import f1_thresholds_by_group, threshold_for_f1, threshold_for_recall

_AFTER_FAILURE = FEATURE_NAMES.index("prev_failed_repo")

ModelKind = Literal["lightgbm", "random_forest"]
FloatArray = NDArray[np.float64]

LIGHTGBM_PARAMS: dict[str, Any] = {
    "objective": "binary",
    "n_estimators": 200,
    "learning_rate": 0.03,
    "num_leaves": 4,
    "min_child_samples": 100,
    "reg_lambda": 10.0,
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.8,
    "n_jobs": 1,
    "verbose": -1,
}
GLOBAL_LIGHTGBM_PARAMS: dict[str, Any] = {**LIGHTGBM_PARAMS, "n_estimators": 400, "num_leaves": 8}
"""A model pooled over many projects has ten times the rows: the development protocol preferred more and
larger trees for it (per-project models got worse with them)."""
HALF_LIFE_DAYS = 365.0
RANDOM_FOREST_PARAMS: dict[str, Any] = {
    "n_estimators": 100,
    "min_samples_leaf": 5,
    "max_features": "sqrt",
    "class_weight": "balanced_subsample",
    "n_jobs": 1,
}
INNER_BLOCKS = 5
VALIDATION_BLOCKS = 2


@dataclass
class FittedModel:
    """A fitted classifier exposing raw (logit-scale) scores, which the calibration maps to probabilities."""

    kind: ModelKind
    estimator: Any

    def raw_scores(self, features: FloatArray) -> FloatArray:
        if self.kind == "lightgbm":
            return np.asarray(self.estimator.booster_.predict(features, raw_score=True), dtype=float)
        probabilities = np.clip(self.estimator.predict_proba(features)[:, 1], 1e-4, 1 - 1e-4)
        return np.asarray(np.log(probabilities / (1 - probabilities)), dtype=float)

    def importances(self) -> dict[str, float]:
        """Gain (LightGBM) or impurity decrease (forest) per feature, normalised to sum to 1."""
        if self.kind == "lightgbm":
            values = np.asarray(
                self.estimator.booster_.feature_importance(importance_type="gain"), dtype=float
            )
        else:
            values = np.asarray(self.estimator.feature_importances_, dtype=float)
        total = float(values.sum()) or 1.0
        return {name: float(value) / total for name, value in zip(FEATURE_NAMES, values, strict=True)}


MIN_PROJECT_HELD_OUT = 10
"""Failing and passing held-out builds a project needs for its own calibration in a pooled model."""


@dataclass
class Decision:
    """Calibration and thresholds fitted on held-out predictions (of one project, or pooled)."""

    calibration: Platt
    f1_threshold: float
    f1_thresholds_by_previous: dict[int, float]
    recall_threshold: float

    def probabilities(self, raw: FloatArray) -> FloatArray:
        slope, intercept = self.calibration.slope, self.calibration.intercept
        return np.asarray(1.0 / (1.0 + np.exp(-(slope * raw + intercept))), dtype=float)

    def decide_fail(self, features: FloatArray, probabilities: FloatArray) -> NDArray[np.bool_]:
        """F1-optimal decisions: the threshold depends on whether the previous build failed."""
        after_failure = previous_failed(features)
        cut = np.where(
            after_failure == 1,
            self.f1_thresholds_by_previous.get(1, 1.01),
            self.f1_thresholds_by_previous.get(0, 1.01),
        )
        return np.asarray(probabilities >= cut, dtype=bool)


@dataclass
class TrainedModel:
    """The fitted model with its pooled decision and, for pooled training, one decision per project.

    A model pooled over projects ranks each project's builds well, but base rates differ (8% to 62%
    failing builds): one pooled threshold flags almost everything in one project and almost nothing in
    another. Calibrating per project (on that project's held-out predictions) fixed this on the
    development protocol (mean F1(fail) 0.583 -> 0.603) without changing any ranking.
    """

    fitted: FittedModel
    pooled: Decision
    target_recall: float
    by_group: dict[int, Decision] = field(default_factory=dict)
    validation: dict[str, float] = field(default_factory=dict)

    def decision(self, group: int | None = None) -> Decision:
        return self.by_group.get(group, self.pooled) if group is not None else self.pooled

    def probabilities(self, features: FloatArray, group: int | None = None) -> FloatArray:
        return self.decision(group).probabilities(self.fitted.raw_scores(features))

    def decide_fail(
        self, features: FloatArray, probabilities: FloatArray, group: int | None = None
    ) -> NDArray[np.bool_]:
        return self.decision(group).decide_fail(features, probabilities)


def fit_decision(
    raw: FloatArray, failed: NDArray[np.int_], after_failure: NDArray[np.int_], target_recall: float
) -> Decision:
    """Platt calibration, F1 thresholds and the gate's recall threshold from held-out raw scores."""
    calibration = fit_platt(raw.tolist(), failed.tolist())
    probabilities = [calibration.probability(value) for value in raw.tolist()]
    return Decision(
        calibration=calibration,
        f1_threshold=threshold_for_f1(probabilities, failed.tolist()),
        f1_thresholds_by_previous=f1_thresholds_by_group(
            probabilities, failed.tolist(), after_failure.tolist()
        ),
        recall_threshold=threshold_for_recall(probabilities, failed.tolist(), target_recall),
    )


def previous_failed(features: FloatArray) -> NDArray[np.int_]:
    """1 where the previous build of the repository failed, else 0 (unknown counts as passed)."""
    return np.asarray(np.nan_to_num(features[:, _AFTER_FAILURE], nan=0.0) == 1.0, dtype=int)


def recency_weights(
    times: FloatArray | None, groups: NDArray[np.int_] | None, half_life_days: float = HALF_LIFE_DAYS
) -> FloatArray | None:
    """exp2(-age / half-life), age measured from the newest row of the same group (project); None: equal."""
    if times is None:
        return None
    group_ids = np.zeros(len(times), dtype=int) if groups is None else groups
    newest = np.zeros(len(times))
    for group in np.unique(group_ids):
        rows = group_ids == group
        newest[rows] = times[rows].max()
    return np.asarray(0.5 ** ((newest - times) / 86400.0 / half_life_days), dtype=float)


def fit_estimator(
    kind: ModelKind,
    features: FloatArray,
    failed: NDArray[np.int_],
    seed: int = 0,
    *,
    weights: FloatArray | None = None,
    params: dict[str, Any] | None = None,
) -> FittedModel:
    """One classifier on all given rows, failing builds weighted to balance the (weighted) classes.

    `weights` (LightGBM only) are per-row sample weights such as `recency_weights`.
    """
    if kind == "lightgbm":
        import lightgbm

        row_weights = np.ones(len(failed)) if weights is None else weights
        positives = float(row_weights[failed == 1].sum())
        negatives = float(row_weights[failed == 0].sum())
        balance = negatives / positives if positives > 0 else 1.0
        chosen = dict(params or LIGHTGBM_PARAMS, random_state=seed, scale_pos_weight=balance)
        estimator: Any = lightgbm.LGBMClassifier(**chosen)
        estimator.fit(_frame(features), failed, sample_weight=weights)
    else:
        from sklearn.ensemble import RandomForestClassifier

        estimator = RandomForestClassifier(**RANDOM_FOREST_PARAMS, random_state=seed)
        estimator.fit(features, failed)
    return FittedModel(kind, estimator)


def _frame(features: FloatArray) -> Any:
    """LightGBM keeps column names when given a DataFrame; names make the dumped model self-describing."""
    import pandas as pd

    return pd.DataFrame(features, columns=list(FEATURE_NAMES))


def inner_blocks(block_ids: NDArray[np.int_] | None, size: int) -> NDArray[np.int_]:
    if block_ids is not None:
        return block_ids
    return np.minimum((np.arange(size) * INNER_BLOCKS) // max(size, 1), INNER_BLOCKS - 1)


def train(
    kind: ModelKind,
    features: FloatArray,
    failed: Sequence[int] | NDArray[np.int_],
    *,
    target_recall: float = 0.9,
    block_ids: NDArray[np.int_] | None = None,
    times: FloatArray | None = None,
    groups: NDArray[np.int_] | None = None,
    params: dict[str, Any] | None = None,
    seed: int = 0,
    on_fit: Callable[[], None] | None = None,
) -> TrainedModel:
    """Fit model, calibration and thresholds on one training part (rows in time order per project).

    `block_ids` assigns each row to a chronological block 0..INNER_BLOCKS-1 (per project for pooled data);
    by default the rows are split into equal blocks in their given order. `times` (build start, epoch
    seconds) turn on recency weighting, with ages counted per `groups` (project) within each fit.
    """
    labels = np.asarray(failed, dtype=int)
    blocks = inner_blocks(block_ids, len(labels))

    def fit(rows: NDArray[np.bool_] | slice) -> FittedModel:
        weights = (
            recency_weights(times[rows], None if groups is None else groups[rows])
            if kind == "lightgbm" and times is not None
            else None
        )
        return fit_estimator(kind, features[rows], labels[rows], seed, weights=weights, params=params)

    held_out_rows = np.zeros(len(labels), dtype=bool)
    oof_raw = np.zeros(len(labels))
    for block in range(INNER_BLOCKS - VALIDATION_BLOCKS, INNER_BLOCKS):
        fit_rows, val_rows = blocks < block, blocks == block
        if labels[fit_rows].min(initial=1) == labels[fit_rows].max(initial=0) or not val_rows.any():
            continue
        oof_raw[val_rows] = fit(fit_rows).raw_scores(features[val_rows])
        held_out_rows |= val_rows
        if on_fit:
            on_fit()
    final = fit(slice(None))
    if on_fit:
        on_fit()
    if not held_out_rows.any():  # too little history for held-out blocks: calibrate in-sample
        held_out_rows[:] = True
        oof_raw = final.raw_scores(features)
    raw, held_out = oof_raw[held_out_rows], labels[held_out_rows]
    after_failure = previous_failed(features[held_out_rows])
    by_group: dict[int, Decision] = {}
    if groups is not None:
        held_out_groups = groups[held_out_rows]
        for group in np.unique(groups).tolist():
            rows = held_out_groups == group
            failing = int(held_out[rows].sum())
            if min(failing, int(rows.sum()) - failing) >= MIN_PROJECT_HELD_OUT:
                by_group[group] = fit_decision(raw[rows], held_out[rows], after_failure[rows], target_recall)
    return TrainedModel(
        fitted=final,
        pooled=fit_decision(raw, held_out, after_failure, target_recall),
        target_recall=target_recall,
        by_group=by_group,
        validation={
            "held_out_builds": float(len(held_out)),
            "held_out_failure_rate": float(held_out.mean()) if len(held_out) else math.nan,
        },
    )
