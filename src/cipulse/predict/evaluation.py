"""The chronological evaluation protocol (DL-CIBuild's, see the data README).

Each project is split into 10 equal chronological folds; for k = 6..10 a model is trained on folds 1..k-1
and tested on fold k. Calibration and thresholds are fitted inside the training part (see `training`),
so nothing about fold k is known before it is scored. Predictions of the five test folds are pooled per
project for the measures. Every model is shown next to the "repeat the previous outcome" baseline and
random skipping at the same rate.

Ideas and hyperparameters are chosen on the development protocol (`development_projects`): the same
protocol run on the first half of each project only. That half precedes every test fold of the full
protocol, so choosing on it never looks at the data the published numbers are measured on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from cipulse.predict import scoring
from cipulse.predict.dataset import (
    Project,
    as_matrix,
    chronological_folds,
    project_from_builds,
    start_times,
)
from cipulse.predict.features import FEATURE_NAMES
from cipulse.predict.training import (
    GLOBAL_LIGHTGBM_PARAMS,
    INNER_BLOCKS,
    VALIDATION_BLOCKS,
    ModelKind,
    TrainedModel,
    train,
)

FOLDS = 10
FIRST_TEST_FOLD = 6
SKIP_SHARES = (0.3, 0.5)
CURVE_SHARES = tuple(round(0.05 * i, 2) for i in range(0, 20))

CIPULSE = "cipulse (LightGBM, per project)"
CIPULSE_GLOBAL = "cipulse (LightGBM, global)"
FOREST = "RandomForest baseline"
PREVIOUS = "previous outcome"
RANDOM = "random skipping"

CHOSEN = CIPULSE_GLOBAL
"""The model the goals are judged on, fixed on the development protocol before the final run: among the
models meeting both F1(fail) goals there, the one keeping the most failing builds at 30% skipped (global
0.870 with F1 0.603, above the baseline on 10/10; per project 0.863 with F1 0.608, 10/10)."""

_PREV_INDEX = FEATURE_NAMES.index("prev_failed_repo")


@dataclass
class Predictions:
    """Pooled test-fold predictions of one model on one project."""

    failed: list[int] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    decided_fail: list[bool] = field(default_factory=list)
    gate_flagged: list[bool] = field(default_factory=list)
    fold_of: list[int] = field(default_factory=list)

    def add(
        self,
        fold: int,
        failed: Sequence[int],
        scores: Sequence[float],
        decided: Sequence[bool],
        gate_cut: float,
    ) -> None:
        self.failed.extend(int(v) for v in failed)
        self.scores.extend(float(v) for v in scores)
        self.decided_fail.extend(bool(v) for v in decided)
        self.gate_flagged.extend(float(v) >= gate_cut for v in scores)
        self.fold_of.extend([fold] * len(failed))


@dataclass(frozen=True)
class Measures:
    roc_auc: float
    pr_auc: float
    f1_fail: float
    kept_at: dict[float, float]
    gate_recall: float
    gate_skipped: float
    brier: float | None
    curve: list[tuple[float, float]]


def measure(predictions: Predictions, *, probabilistic: bool = True) -> Measures:
    """Measures over pooled folds; skip shares are applied within each test fold, then summed."""
    failed = np.asarray(predictions.failed)
    scores = np.asarray(predictions.scores)
    folds = np.asarray(predictions.fold_of)

    def kept_share(share: float) -> float:
        return scoring.kept_share_per_fold(failed, scores, folds, share)

    flagged = np.asarray(predictions.gate_flagged, dtype=bool)
    return Measures(
        roc_auc=scoring.roc_auc(failed, scores),
        pr_auc=scoring.pr_auc(failed, scores),
        f1_fail=scoring.f1_fail(failed, np.asarray(predictions.decided_fail, dtype=float)),
        kept_at={share: kept_share(share) for share in SKIP_SHARES},
        gate_recall=float(flagged[failed == 1].mean()) if failed.sum() else float("nan"),
        gate_skipped=float(1.0 - flagged.mean()) if len(flagged) else float("nan"),
        brier=scoring.brier(failed, scores) if probabilistic else None,
        curve=[(share, kept_share(share)) for share in CURVE_SHARES],
    )


@dataclass
class ProjectResult:
    name: str
    builds: int
    failure_rate: float
    measures: dict[str, Measures]
    predictions: dict[str, Predictions]
    importances: dict[str, float]


@dataclass
class Evaluation:
    projects: list[ProjectResult]
    target_recall: float
    models: list[str]
    development: bool = False


def development_projects(projects: Sequence[Project]) -> list[Project]:
    """The first half of each project's builds, for choosing ideas without touching any test fold."""
    return [project_from_builds(p.name, p.builds[: len(p.builds) // 2]) for p in projects]


def fit_count(projects: Sequence[Project], with_global: bool, with_forest: bool) -> int:
    per_part = VALIDATION_BLOCKS + 1
    folds = FOLDS - FIRST_TEST_FOLD + 1
    per_project = per_part * (1 + int(with_forest))
    return folds * (len(projects) * per_project + (per_part if with_global else 0))


def evaluate(
    projects: Sequence[Project],
    *,
    target_recall: float = 0.9,
    with_global: bool = True,
    with_forest: bool = True,
    development: bool = False,
    on_fit: Callable[[], None] | None = None,
) -> Evaluation:
    """Run the protocol on every project; `on_fit` is called after each model fit (progress).

    `development` says the projects were cut by `development_projects` (recorded for the report).
    """
    matrices = [np.asarray(as_matrix(project.rows), dtype=float) for project in projects]
    labels = [np.asarray(project.labels, dtype=int) for project in projects]
    times = [np.asarray(start_times(project), dtype=float) for project in projects]
    splits = [chronological_folds(len(project.builds), FOLDS) for project in projects]
    kinds: list[tuple[str, ModelKind]] = [(CIPULSE, "lightgbm")]
    if with_forest:
        kinds.append((FOREST, "random_forest"))
    predictions: list[dict[str, Predictions]] = [{} for _ in projects]
    importances: list[dict[str, float]] = [dict.fromkeys(FEATURE_NAMES, 0.0) for _ in projects]
    for test_fold in range(FIRST_TEST_FOLD - 1, FOLDS):
        parts = []
        for index in range(len(projects)):
            train_rows = np.arange(splits[index][test_fold].start)
            test_rows = np.arange(splits[index][test_fold].start, splits[index][test_fold].stop)
            parts.append((train_rows, test_rows))
            for name, kind in kinds:
                model = train(
                    kind,
                    matrices[index][train_rows],
                    labels[index][train_rows],
                    target_recall=target_recall,
                    times=times[index][train_rows],
                    on_fit=on_fit,
                )
                _record(
                    predictions[index],
                    name,
                    test_fold,
                    model,
                    matrices[index][test_rows],
                    labels[index][test_rows],
                )
                if name == CIPULSE:
                    for feature, value in model.fitted.importances().items():
                        importances[index][feature] += value / (FOLDS - FIRST_TEST_FOLD + 1)
            prev = np.nan_to_num(matrices[index][test_rows][:, _PREV_INDEX], nan=0.0)
            predictions[index].setdefault(PREVIOUS, Predictions()).add(
                test_fold, labels[index][test_rows].tolist(), prev.tolist(), (prev >= 0.5).tolist(), 0.5
            )
        if with_global:
            model = _train_global(matrices, labels, times, parts, target_recall, on_fit)
            for index, (_, test_rows) in enumerate(parts):
                _record(
                    predictions[index],
                    CIPULSE_GLOBAL,
                    test_fold,
                    model,
                    matrices[index][test_rows],
                    labels[index][test_rows],
                    group=index,
                )
    results = []
    for index, project in enumerate(projects):
        measures = {
            name: measure(pred, probabilistic=name != PREVIOUS) for name, pred in predictions[index].items()
        }
        measures[RANDOM] = _random_measures(predictions[index][PREVIOUS])
        results.append(
            ProjectResult(
                name=project.name,
                builds=len(project.builds),
                failure_rate=float(labels[index].mean()),
                measures=measures,
                predictions=predictions[index],
                importances=importances[index],
            )
        )
    models = [CIPULSE] + ([CIPULSE_GLOBAL] if with_global else []) + ([FOREST] if with_forest else [])
    return Evaluation(results, target_recall, [*models, PREVIOUS, RANDOM], development)


def _record(
    store: dict[str, Predictions],
    name: str,
    fold: int,
    model: TrainedModel,
    features: NDArray[np.float64],
    failed: NDArray[np.int_],
    group: int | None = None,
) -> None:
    """Score one test fold; `group` picks the project's own calibration in a pooled model."""
    decision = model.decision(group)
    probabilities = decision.probabilities(model.fitted.raw_scores(features))
    decided = decision.decide_fail(features, probabilities)
    store.setdefault(name, Predictions()).add(
        fold, failed.tolist(), probabilities.tolist(), decided.tolist(), decision.recall_threshold
    )


def _train_global(
    matrices: Sequence[NDArray[np.float64]],
    labels: Sequence[NDArray[np.int_]],
    times: Sequence[NDArray[np.float64]],
    parts: Sequence[tuple[NDArray[np.int_], NDArray[np.int_]]],
    target_recall: float,
    on_fit: Callable[[], None] | None,
) -> TrainedModel:
    """One model over every project's training part; inner blocks and row ages are per project."""
    features = np.concatenate([matrices[i][rows] for i, (rows, _) in enumerate(parts)])
    failed = np.concatenate([labels[i][rows] for i, (rows, _) in enumerate(parts)])
    starts = np.concatenate([times[i][rows] for i, (rows, _) in enumerate(parts)])
    groups = np.concatenate([np.full(len(rows), i) for i, (rows, _) in enumerate(parts)])
    blocks = np.concatenate(
        [
            np.minimum((np.arange(len(rows)) * INNER_BLOCKS) // max(len(rows), 1), INNER_BLOCKS - 1)
            for rows, _ in parts
        ]
    )
    return train(
        "lightgbm",
        features,
        failed,
        target_recall=target_recall,
        block_ids=blocks,
        times=starts,
        groups=groups,
        params=GLOBAL_LIGHTGBM_PARAMS,
        on_fit=on_fit,
    )


def _random_measures(reference: Predictions) -> Measures:
    """Random skipping keeps, in expectation, exactly (1 - skipped share) of failing builds."""
    nan = float("nan")
    return Measures(
        roc_auc=0.5,
        pr_auc=float(np.mean(reference.failed)),
        f1_fail=nan,
        kept_at={share: 1.0 - share for share in SKIP_SHARES},
        gate_recall=nan,
        gate_skipped=nan,
        brier=None,
        curve=[(share, 1.0 - share) for share in CURVE_SHARES],
    )
