"""Can any gate keep 90% of failing builds while skipping 30% of builds, with the columns of the CSVs?

Ceilings on the final protocol's test folds (10 chronological folds, test k = 6..10, kept shares summed
over the five folds of a project exactly like `cipulse.predict.evaluation.measure`), from loose to tight:

- oracle: a perfect ranking (the only limit is a fold with more than 70% failing builds);
- exact-vector lookup and LightGBM fitted ON the test fold itself: what cipulse's features can separate
  at all when memorising is allowed (an upper bound, not a prediction);
- label-only rankings: the previous outcome, and the best in-fold ranking of the last L outcomes;
- optimistic out-of-sample bounds: models trained on every other build of the project, including the
  future and the same weeks (random fifths of the test fold), which no real gate can have;
- cipulse's own out-of-sample model (global LightGBM, recomputed with `evaluation.evaluate`).

Then the failing builds cipulse's model skips at 30% are described and compared with the passing builds
it skips. Folds, features, the kept measure and cipulse's model come from cipulse itself, so every
definition is the one the published numbers use.

Run (from the repository root; about 10.5 min on a busy 2-core machine, cipulse's own evaluation included):
    nice -n 19 .venv/bin/python bench/prediction_ceiling.py \
        --data ../shared/data/ci-build-history --out prediction-ceiling-tables.md

(`--cache` keeps cipulse's own out-of-sample scores, by default under ~/.cache/cipulse.)
"""

from __future__ import annotations

import argparse
import csv
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cipulse.predict import scoring
from cipulse.predict.dataset import (
    Project,
    as_matrix,
    chronological_folds,
    load_csv_projects,
    start_times,
)
from cipulse.predict.evaluation import CIPULSE, CIPULSE_GLOBAL, FIRST_TEST_FOLD, FOLDS, evaluate
from cipulse.predict.features import FEATURE_NAMES
from cipulse.predict.training import (
    GLOBAL_LIGHTGBM_PARAMS,
    HALF_LIFE_DAYS,
    LIGHTGBM_PARAMS,
    recency_weights,
)

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int_]

CACHE_DIR = Path.home() / ".cache" / "cipulse"
SHARE = 0.3
GOAL = 0.9
SEED = 0
IN_FOLD_SPLITS = 5
MEMORISING_PARAMS = {
    "objective": "binary",
    "n_estimators": 300,
    "learning_rate": 0.1,
    "num_leaves": 255,
    "min_child_samples": 1,
    "min_child_weight": 1e-6,
    "min_data_in_bin": 1,
    "reg_lambda": 0.0,
    "n_jobs": 1,
    "verbose": -1,
}
"""Enough capacity to memorise a test fold (about 500-3900 builds)."""
FLEXIBLE_PARAMS = {
    **LIGHTGBM_PARAMS,
    "n_estimators": 300,
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_child_samples": 20,
    "reg_lambda": 1.0,
}
"""Far more capacity than cipulse's models, for the optimistic bounds."""
NOT_PRE_TEST_COLUMNS = ("build_Failed", "gh_build_started_at", "tr_build_id", "gh_num_commit_comments")
"""CSV columns that are the label, an identifier, a timestamp or possibly measured after the build."""
LABEL_HISTORY_DEPTH = 20


@dataclass(frozen=True)
class ProjectData:
    """One project as cipulse sees it, plus the raw pre-test CSV values of each build."""

    name: str
    features: FloatArray
    failed: IntArray
    times: FloatArray
    test_rows: IntArray
    fold_of: IntArray
    raw_keys: list[str]

    def column(self, name: str) -> FloatArray:
        return self.features[:, FEATURE_NAMES.index(name)]


def raw_pre_test_keys(path: Path) -> list[str]:
    """Each build's pre-test CSV values joined: equal keys are builds no CSV column can tell apart."""
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        columns = [c for c in (reader.fieldnames or ()) if c not in NOT_PRE_TEST_COLUMNS]
        return ["|".join(row[c].strip() for c in columns) for row in reader]


def load(data_dir: Path) -> tuple[list[Project], list[ProjectData]]:
    projects = load_csv_projects(data_dir)
    data = []
    for project in projects:
        size = len(project.builds)
        folds = chronological_folds(size, FOLDS)
        tests = [folds[k] for k in range(FIRST_TEST_FOLD - 1, FOLDS)]
        data.append(
            ProjectData(
                name=project.name,
                features=np.asarray(as_matrix(project.rows), dtype=float),
                failed=np.asarray(project.labels, dtype=int),
                times=np.asarray(start_times(project), dtype=float),
                test_rows=np.concatenate([np.arange(r.start, r.stop) for r in tests]),
                fold_of=np.concatenate(
                    [np.full(len(r), k) for k, r in enumerate(tests, FIRST_TEST_FOLD - 1)]
                ),
                raw_keys=raw_pre_test_keys(data_dir / f"{project.name}.csv"),
            )
        )
    return projects, data


def kept(project: ProjectData, scores: FloatArray, share: float = SHARE) -> float:
    """Share of failing test builds still run when `share` of each test fold is skipped (ties: expected)."""
    return scoring.kept_share_per_fold(project.failed[project.test_rows], scores, project.fold_of, share)


def per_fold(project: ProjectData, score_fold: Callable[[IntArray], FloatArray]) -> FloatArray:
    """Scores for the test rows, computed fold by fold from that fold's row indices."""
    scores = np.zeros(len(project.test_rows))
    for fold in np.unique(project.fold_of):
        positions = np.flatnonzero(project.fold_of == fold)
        scores[positions] = score_fold(project.test_rows[positions])
    return scores


# --- rankings -----------------------------------------------------------------------------------------


def oracle(project: ProjectData) -> FloatArray:
    return project.failed[project.test_rows].astype(float)


def previous_outcome(project: ProjectData) -> FloatArray:
    """The repository's previous build outcome, exactly the baseline's score."""
    return np.nan_to_num(project.column("prev_failed_repo")[project.test_rows], nan=0.0)


def group_rate_in_fold(keys: Sequence[str], failed: IntArray) -> FloatArray:
    """Each build's score = the failure rate of its key within the same fold (the best ranking of keys)."""
    totals: dict[str, list[int]] = {}
    for key, label in zip(keys, failed.tolist(), strict=True):
        entry = totals.setdefault(key, [0, 0])
        entry[0] += label
        entry[1] += 1
    return np.asarray([totals[key][0] / totals[key][1] for key in keys], dtype=float)


def group_rate_learned(train_keys: Sequence[str], train_failed: IntArray, keys: Sequence[str]) -> FloatArray:
    """Score = failure rate of the key among the training builds (plus one pseudo-build at their rate).

    Rates must come from builds outside the scored fold: rates from the rest of the same fold rank a
    key's failing builds below its passing ones (their own failure is missing from their estimate)."""
    prior = float(train_failed.mean())
    totals: dict[str, list[int]] = {}
    for key, label in zip(train_keys, train_failed.tolist(), strict=True):
        entry = totals.setdefault(key, [0, 0])
        entry[0] += label
        entry[1] += 1
    return np.asarray(
        [(totals.get(key, [0, 0])[0] + prior) / (totals.get(key, [0, 0])[1] + 1) for key in keys],
        dtype=float,
    )


def vector_keys(features: FloatArray) -> list[str]:
    """Exact feature vectors as hashable keys (NaN equal to NaN)."""
    filled = np.where(np.isnan(features), -1e300, features)
    return [row.tobytes().hex() for row in filled]


def exact_vector_lookup(project: ProjectData) -> FloatArray:
    """In-sample 1-nearest-neighbour at distance 0: builds with equal feature vectors share a score."""
    return per_fold(
        project, lambda rows: group_rate_in_fold(vector_keys(project.features[rows]), project.failed[rows])
    )


def outcome_bits(failed: IntArray, depth: int = LABEL_HISTORY_DEPTH) -> FloatArray:
    """Outcomes of the `depth` previous builds (column j = j+1 builds back; NaN before the first build)."""
    bits = np.full((len(failed), depth), np.nan)
    for back in range(1, depth + 1):
        bits[back:, back - 1] = failed[:-back]
    return bits


def last_outcomes_in_fold(project: ProjectData, depth: int) -> FloatArray:
    """Best in-fold ranking of the pattern of the last `depth` outcomes (label-only, in-sample: it
    memorises once patterns get rarer than the fold is long)."""
    keys = outcome_patterns(project.failed, depth)
    return per_fold(project, lambda rows: group_rate_in_fold([keys[i] for i in rows], project.failed[rows]))


def last_outcomes_other_folds(project: ProjectData, depth: int) -> FloatArray:
    """The pattern of the last `depth` outcomes, ranked by its failure rate in every OTHER fold of the
    project, earlier and later (label-only, optimistic out-of-sample)."""
    keys = outcome_patterns(project.failed, depth)

    def score(rows: IntArray) -> FloatArray:
        outside = np.setdiff1d(np.arange(len(keys)), rows)
        return group_rate_learned(
            [keys[i] for i in outside], project.failed[outside], [keys[i] for i in rows]
        )

    return per_fold(project, score)


def outcome_patterns(failed: IntArray, depth: int) -> list[str]:
    bits = outcome_bits(failed, depth)
    return ["".join("x" if np.isnan(v) else str(int(v)) for v in row) for row in bits]


def label_history_features(project: ProjectData) -> FloatArray:
    """The full recent outcome sequence plus cipulse's outcome-only summaries (streak, ratios)."""
    summaries = [
        "prev_failed_repo",
        "fail_ratio_last5",
        "fail_ratio_last20",
        "fail_ratio_all",
        "builds_since_failure",
        "outcome_streak",
    ]
    columns = [project.column(name)[:, None] for name in summaries]
    return np.hstack([outcome_bits(project.failed), *columns])


def fit_lightgbm(
    features: FloatArray,
    failed: IntArray,
    params: dict[str, Any],
    weights: FloatArray | None = None,
) -> Callable[[FloatArray], FloatArray]:
    """LightGBM with failing builds weighted to balance the classes, as `training.fit_estimator` does,
    for any set of columns (fit_estimator expects cipulse's full feature vector); returns a raw scorer."""
    import lightgbm

    row_weights = np.ones(len(failed)) if weights is None else weights
    balance = float(row_weights[failed == 0].sum()) / max(float(row_weights[failed == 1].sum()), 1e-12)
    model = lightgbm.LGBMClassifier(**{**params, "random_state": SEED, "scale_pos_weight": balance})
    model.fit(features, failed, sample_weight=weights)
    return lambda rows: np.asarray(model.booster_.predict(rows, raw_score=True), dtype=float)


def in_fold_fit(features: FloatArray, project: ProjectData, params: dict[str, Any]) -> FloatArray:
    """LightGBM trained on a test fold and scored on the same fold (cheating, an upper bound)."""

    def score(rows: IntArray) -> FloatArray:
        labels = project.failed[rows]
        if labels.min() == labels.max():
            return np.zeros(len(rows))
        return fit_lightgbm(features[rows], labels, params)(features[rows])

    return per_fold(project, score)


def past_only_fit(features: FloatArray, project: ProjectData) -> FloatArray:
    """cipulse's per-project LightGBM settings on other features: train on folds before k, test on k."""

    def score(rows: IntArray) -> FloatArray:
        train_rows = np.arange(rows[0])
        weights = recency_weights(project.times[train_rows], None)
        scorer = fit_lightgbm(features[train_rows], project.failed[train_rows], LIGHTGBM_PARAMS, weights)
        return scorer(features[rows])

    return per_fold(project, score)


def fold_parts(project: ProjectData) -> list[list[IntArray]]:
    """Each test fold cut into IN_FOLD_SPLITS random fifths (fixed seed), for the optimistic bounds."""
    rng = np.random.default_rng(SEED)
    return [
        np.array_split(rng.permutation(project.test_rows[project.fold_of == fold]), IN_FOLD_SPLITS)
        for fold in np.unique(project.fold_of)
    ]


def two_sided_weights(project: ProjectData, fold_rows: IntArray) -> FloatArray:
    """cipulse's recency weighting made two-sided: builds close in time to the fold, before or after it,
    count most (half-life HALF_LIFE_DAYS)."""
    age_days = np.abs(project.times - np.median(project.times[fold_rows])) / 86400.0
    return np.asarray(0.5 ** (age_days / HALF_LIFE_DAYS), dtype=float)


def everything_else_fit(project: ProjectData, params: dict[str, Any]) -> FloatArray:
    """Optimistic out-of-sample: each random fifth of a test fold is scored by a model trained on every
    other build of the project, the future and the rest of the same fold included."""
    scores = np.zeros(len(project.features))
    for parts in fold_parts(project):
        weights = two_sided_weights(project, np.concatenate(parts))
        for part in parts:
            train_mask = np.ones(len(project.features), dtype=bool)
            train_mask[part] = False
            scorer = fit_lightgbm(
                project.features[train_mask], project.failed[train_mask], params, weights[train_mask]
            )
            scores[part] = scorer(project.features[part])
    return scores[project.test_rows]


def everything_else_global(data: Sequence[ProjectData], params: dict[str, Any]) -> dict[str, FloatArray]:
    """The same bound for one model pooled over all projects (like cipulse's chosen global model): one
    fit per (test fold, fifth), holding out that fifth of that fold in every project at once."""
    parts_of = {p.name: fold_parts(p) for p in data}
    scores = {p.name: np.zeros(len(p.features)) for p in data}
    for fold in range(FOLDS - FIRST_TEST_FOLD + 1):
        weights = {p.name: two_sided_weights(p, np.concatenate(parts_of[p.name][fold])) for p in data}
        for part in range(IN_FOLD_SPLITS):
            masks = {}
            for p in data:
                masks[p.name] = np.ones(len(p.features), dtype=bool)
                masks[p.name][parts_of[p.name][fold][part]] = False
            scorer = fit_lightgbm(
                np.concatenate([p.features[masks[p.name]] for p in data]),
                np.concatenate([p.failed[masks[p.name]] for p in data]),
                params,
                np.concatenate([weights[p.name][masks[p.name]] for p in data]),
            )
            for p in data:
                held_out = parts_of[p.name][fold][part]
                scores[p.name][held_out] = scorer(p.features[held_out])
    return {p.name: scores[p.name][p.test_rows] for p in data}


def neighbours_in_fold(project: ProjectData, neighbours: int) -> FloatArray:
    """Leave-one-out k-nearest-neighbour within the fold: mean outcome of the closest other builds of the
    same fold (past and future), on rank-scaled features. Optimistic: it reads neighbours' outcomes."""
    from scipy.stats import rankdata
    from sklearn.neighbors import NearestNeighbors

    def score(rows: IntArray) -> FloatArray:
        block = project.features[rows]
        scaled = np.column_stack(
            [
                rankdata(np.nan_to_num(column, nan=-1.0)) / len(column)
                if not np.all(np.isnan(column))
                else np.zeros(len(column))
                for column in block.T
            ]
        )
        index = NearestNeighbors(n_neighbors=neighbours + 1).fit(scaled)
        _, found = index.kneighbors(scaled)
        outcomes = project.failed[rows]
        others = np.array([[j for j in row if j != i][:neighbours] for i, row in enumerate(found)])
        return np.asarray(outcomes[others].mean(axis=1), dtype=float)

    return per_fold(project, score)


def cipulse_scores(projects: Sequence[Project], cache: Path) -> dict[str, dict[str, FloatArray]]:
    """cipulse's out-of-sample probabilities for the test rows (global and per project), cached."""
    if cache.exists():
        stored = np.load(cache)
        return {
            p.name: {CIPULSE_GLOBAL: stored[f"{p.name}/global"], CIPULSE: stored[f"{p.name}/project"]}
            for p in projects
        }
    evaluation = evaluate(projects, with_forest=False, with_global=True)
    result = {
        r.name: {
            CIPULSE_GLOBAL: np.asarray(r.predictions[CIPULSE_GLOBAL].scores),
            CIPULSE: np.asarray(r.predictions[CIPULSE].scores),
        }
        for r in evaluation.projects
    }
    arrays = {}
    for name, scores in result.items():
        arrays[f"{name}/global"] = scores[CIPULSE_GLOBAL]
        arrays[f"{name}/project"] = scores[CIPULSE]
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, **arrays)  # type: ignore[arg-type]
    return result


# --- descriptions -------------------------------------------------------------------------------------


def indistinguishable(project: ProjectData, keys: Sequence[str]) -> tuple[int, int]:
    """(failing test builds whose key also occurs with a passing build in the same fold, failing builds)."""
    count = total = 0
    for fold in np.unique(project.fold_of):
        rows = project.test_rows[project.fold_of == fold]
        passing = {keys[i] for i in rows if project.failed[i] == 0}
        failing = [i for i in rows if project.failed[i] == 1]
        count += sum(keys[i] in passing for i in failing)
        total += len(failing)
    return count, total


def skipped_mask(project: ProjectData, scores: FloatArray, share: float = SHARE) -> NDArray[np.bool_]:
    """The builds a ranking skips: the lowest `share` of each fold (stable order for equal scores)."""
    mask = np.zeros(len(scores), dtype=bool)
    for fold in np.unique(project.fold_of):
        positions = np.flatnonzero(project.fold_of == fold)
        order = positions[np.argsort(scores[positions], kind="stable")]
        mask[order[: round(share * len(positions))]] = True
    return mask


@dataclass(frozen=True)
class Profile:
    """Pre-test facts about a group of builds (means of indicators, medians of sizes)."""

    builds: int
    prev_failed: float
    prev_passed: float
    streak_median: float
    churn_median: float
    files_median: float
    zero_src_churn: float
    hours_since_prev_median: float
    rebuilt_change: float
    code_state_seen: float
    code_state_passed_before: float
    lineage_prev_failed: float
    is_pr: float
    same_csv_values_passed_before: float
    same_csv_values_pass_elsewhere: float
    next_failed: float
    prev_and_next_passed: float


def outcome_context(project: ProjectData) -> dict[str, NDArray[np.bool_]]:
    """Per build: were its exact pre-test CSV values built before with a pass (known before the build),
    do they pass anywhere else in the project, and did the next build fail (both known only afterwards)."""
    passed_before = np.zeros(len(project.failed), dtype=bool)
    passing_keys: set[str] = set()
    for index, key in enumerate(project.raw_keys):
        passed_before[index] = key in passing_keys
        if project.failed[index] == 0:
            passing_keys.add(key)
    passes: dict[str, int] = {}
    for index, key in enumerate(project.raw_keys):
        if project.failed[index] == 0:
            passes[key] = passes.get(key, 0) + 1
    own_pass = project.failed == 0
    elsewhere = np.array([passes.get(key, 0) for key in project.raw_keys]) - own_pass > 0
    next_failed = np.append(project.failed[1:] == 1, False)
    return {"passed_before": passed_before, "passes_elsewhere": elsewhere, "next_failed": next_failed}


def profile(project_rows: Sequence[tuple[ProjectData, IntArray]]) -> Profile:
    def col(name: str) -> FloatArray:
        return np.concatenate([p.column(name)[rows] for p, rows in project_rows])

    prev = np.nan_to_num(col("prev_failed_repo"), nan=0.0)
    churn = np.nan_to_num(col("src_churn"), nan=0.0) + np.nan_to_num(col("test_churn"), nan=0.0)
    files = sum(
        np.nan_to_num(col(name), nan=0.0) for name in ("files_added", "files_deleted", "files_modified")
    )
    same_state = col("same_state_builds")
    state_prev = col("same_state_prev_failed")
    builds = int(sum(len(rows) for _, rows in project_rows))
    contexts = [(outcome_context(p), rows) for p, rows in project_rows]

    def flag(name: str) -> NDArray[np.bool_]:
        return np.concatenate([context[name][rows] for context, rows in contexts])

    def share(values: NDArray[np.bool_]) -> float:
        return float(values.mean()) if len(values) else float("nan")

    return Profile(
        builds=builds,
        prev_failed=share(prev == 1),
        prev_passed=share(prev == 0),
        streak_median=float(np.nanmedian(col("outcome_streak"))) if builds else float("nan"),
        churn_median=float(np.median(churn)) if builds else float("nan"),
        files_median=float(np.median(files)) if builds else float("nan"),
        zero_src_churn=share(np.nan_to_num(col("src_churn"), nan=0.0) == 0),
        hours_since_prev_median=float(np.nanmedian(col("hours_since_prev_build")))
        if builds
        else float("nan"),
        rebuilt_change=share(col("same_change_builds") > 0),
        code_state_seen=share(same_state > 0),
        code_state_passed_before=share((same_state > 0) & (state_prev == 0)),
        lineage_prev_failed=share(np.nan_to_num(col("lineage_prev_failed"), nan=0.0) == 1),
        is_pr=share(col("is_pr") == 1),
        same_csv_values_passed_before=share(flag("passed_before")),
        same_csv_values_pass_elsewhere=share(flag("passes_elsewhere")),
        next_failed=share(flag("next_failed")),
        prev_and_next_passed=share((prev == 0) & ~flag("next_failed")),
    )


# --- report -------------------------------------------------------------------------------------------


def fmt(value: float) -> str:
    """Shares with three decimals, counts (integers above 1) as integers."""
    if np.isnan(value):
        return "n/a"
    return str(int(value)) if value > 1.5 and float(value).is_integer() else f"{value:.3f}"


def table(names: Sequence[str], columns: dict[str, list[float]], goal_counts: bool = True) -> str:
    header = "| project | " + " | ".join(columns) + " |"
    lines = [header, "|" + "---|" * (len(columns) + 1)]
    for index, name in enumerate(names):
        lines.append(f"| {name} | " + " | ".join(fmt(values[index]) for values in columns.values()) + " |")
    lines.append("| **mean** | " + " | ".join(fmt(float(np.mean(v))) for v in columns.values()) + " |")
    if goal_counts:
        lines.append(
            "| projects >= 0.900 | "
            + " | ".join(str(sum(x >= GOAL for x in v)) for v in columns.values())
            + " |"
        )
    return "\n".join(lines)


def profile_table(profiles: dict[str, Profile]) -> str:
    """One row per fact, one column per group of builds."""
    lines = ["| fact | " + " | ".join(profiles) + " |", "|" + "---|" * (len(profiles) + 1)]
    for fact in Profile.__dataclass_fields__:
        values = [getattr(item, fact) for item in profiles.values()]
        cells = [str(v) if isinstance(v, int) else fmt(v) for v in values]
        lines.append(f"| {fact} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/ci-build-history"))
    parser.add_argument("--out", type=Path, default=CACHE_DIR / "prediction-ceiling-tables.md")
    parser.add_argument(
        "--cache", type=Path, default=CACHE_DIR / "prediction-ceiling-scores.npz", help="delete to recompute"
    )
    parser.add_argument("--skip", nargs="*", default=[], help="ceiling names to leave out (slow ones)")
    args = parser.parse_args()
    started = time.monotonic()

    def log(message: str) -> None:
        print(f"[{time.monotonic() - started:7.1f}s] {message}", flush=True)

    projects, data = load(args.data)
    builds = sum(len(p.failed) for p in data)
    log(f"loaded {len(data)} projects, {builds} builds, {len(FEATURE_NAMES)} features")
    names = [p.name for p in data]
    ours = cipulse_scores(projects, args.cache)
    log("cipulse out-of-sample scores ready")

    pooled_cache: dict[str, FloatArray] = {}

    def pooled() -> dict[str, FloatArray]:
        if not pooled_cache:
            pooled_cache.update(everything_else_global(data, GLOBAL_LIGHTGBM_PARAMS))
        return pooled_cache

    ceilings: dict[str, Callable[[ProjectData], FloatArray]] = {
        "oracle": oracle,
        "exact vector lookup, in fold": exact_vector_lookup,
        "LightGBM memorising, in fold": lambda p: in_fold_fit(p.features, p, MEMORISING_PARAMS),
        "LightGBM cipulse settings, in fold": lambda p: in_fold_fit(p.features, p, LIGHTGBM_PARAMS),
        "10-NN leave-one-out, in fold": lambda p: neighbours_in_fold(p, 10),
        "1-NN leave-one-out, in fold": lambda p: neighbours_in_fold(p, 1),
        "all other builds (future too), cipulse per-project settings": lambda p: everything_else_fit(
            p, LIGHTGBM_PARAMS
        ),
        "all other builds (future too), 8 leaves x 400": lambda p: everything_else_fit(
            p, GLOBAL_LIGHTGBM_PARAMS
        ),
        "all other builds (future too), 31 leaves, min 20 per leaf": lambda p: everything_else_fit(
            p, FLEXIBLE_PARAMS
        ),
        "all other builds of all projects (future too), cipulse global settings": lambda p: pooled()[p.name],
        "previous outcome": previous_outcome,
        "last 2 outcomes, in fold": lambda p: last_outcomes_in_fold(p, 2),
        "last 5 outcomes, in fold": lambda p: last_outcomes_in_fold(p, 5),
        "last 10 outcomes, in fold": lambda p: last_outcomes_in_fold(p, 10),
        "last 2 outcomes, rates from other folds": lambda p: last_outcomes_other_folds(p, 2),
        "last 5 outcomes, rates from other folds": lambda p: last_outcomes_other_folds(p, 5),
        "last 10 outcomes, rates from other folds": lambda p: last_outcomes_other_folds(p, 10),
        "outcome history, LightGBM cipulse settings, in fold": lambda p: in_fold_fit(
            label_history_features(p), p, LIGHTGBM_PARAMS
        ),
        "outcome history, LightGBM, past only": lambda p: past_only_fit(label_history_features(p), p),
        "cipulse global (out of sample)": lambda p: ours[p.name][CIPULSE_GLOBAL],
        "cipulse per project (out of sample)": lambda p: ours[p.name][CIPULSE],
    }
    results: dict[str, dict[float, list[float]]] = {}
    for label, ranking in ceilings.items():
        if label in args.skip:
            continue
        scores = [ranking(p) for p in data]
        results[label] = {
            share: [kept(p, s, share) for p, s in zip(data, scores, strict=True)] for share in (0.3, 0.5)
        }
        log(f"{label}: mean kept@30 {np.mean(results[label][0.3]):.3f}")

    out: list[str] = []
    groups = {
        "Features can separate (in-sample, cheating)": [
            "oracle",
            "exact vector lookup, in fold",
            "LightGBM memorising, in fold",
            "LightGBM cipulse settings, in fold",
        ],
        "Optimistic generalisation (reads outcomes of neighbours / the future)": [
            "10-NN leave-one-out, in fold",
            "1-NN leave-one-out, in fold",
            "all other builds (future too), cipulse per-project settings",
            "all other builds (future too), 8 leaves x 400",
            "all other builds (future too), 31 leaves, min 20 per leaf",
            "all other builds of all projects (future too), cipulse global settings",
            "cipulse global (out of sample)",
        ],
        "Outcome history only": [
            "previous outcome",
            "last 2 outcomes, in fold",
            "last 5 outcomes, in fold",
            "last 10 outcomes, in fold",
            "last 2 outcomes, rates from other folds",
            "last 5 outcomes, rates from other folds",
            "last 10 outcomes, rates from other folds",
            "outcome history, LightGBM cipulse settings, in fold",
            "outcome history, LightGBM, past only",
            "cipulse global (out of sample)",
        ],
    }
    for share in (0.3, 0.5):
        for title, labels in groups.items():
            present = [label for label in labels if label in results]
            out.append(f"### {title}: failing builds still run at {int(share * 100)}% skipped\n")
            out.append(table(names, {label: results[label][share] for label in present}) + "\n")
    if "cipulse per project (out of sample)" in results:
        out.append("### cipulse per project model (out of sample), kept at 30% / 50%\n")
        out.append(
            table(
                names,
                {
                    "kept@30": results["cipulse per project (out of sample)"][0.3],
                    "kept@50": results["cipulse per project (out of sample)"][0.5],
                },
            )
            + "\n"
        )

    # Indistinguishable failing builds.
    rows_raw, rows_vec = [], []
    for p in data:
        rows_raw.append(indistinguishable(p, p.raw_keys))
        rows_vec.append(indistinguishable(p, vector_keys(p.features)))
    columns = {
        "failing test builds": [float(t) for _, t in rows_raw],
        "same cipulse feature vector as a passing build (fold)": [c / t for c, t in rows_vec],
        "same pre-test CSV values as a passing build (fold)": [c / t for c, t in rows_raw],
    }
    out.append("### Failing test builds indistinguishable from a passing build of the same fold\n")
    out.append(table(names, columns, goal_counts=False) + "\n")

    # What cipulse (global) skips at 30%.
    failing_skipped, passing_skipped, failing_kept, budget = [], [], [], []
    for p in data:
        mask = skipped_mask(p, ours[p.name][CIPULSE_GLOBAL])
        outcome = p.failed[p.test_rows]
        failing_skipped.append((p, p.test_rows[mask & (outcome == 1)]))
        passing_skipped.append((p, p.test_rows[mask & (outcome == 0)]))
        failing_kept.append((p, p.test_rows[~mask & (outcome == 1)]))
        allowed = np.floor((1 - GOAL) * outcome.sum())
        budget.append((p.name, int((mask & (outcome == 1)).sum()), int(outcome.sum()), int(allowed)))
    profiles = {
        "failing, skipped by cipulse": profile(failing_skipped),
        "passing, skipped by cipulse": profile(passing_skipped),
        "failing, run by cipulse": profile(failing_kept),
    }
    out.append("### Builds cipulse (global) skips at 30%, all projects pooled\n")
    out.append(profile_table(profiles) + "\n")
    lines = [
        "| project | failing | failing skipped | allowed at 0.90 | kept | "
        "A: same CSV values pass elsewhere | B: else isolated (previous and next passed) | "
        "C: else in a failing run | kept if all C caught | kept if all A+B caught |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    if_c, if_ab = [], []
    for (p, rows), (name, skipped, total, allowed) in zip(failing_skipped, budget, strict=True):
        context = outcome_context(p)
        prev_passed = np.nan_to_num(p.column("prev_failed_repo")[rows], nan=0.0) == 0
        a = context["passes_elsewhere"][rows]
        b = ~a & prev_passed & ~context["next_failed"][rows]
        c = ~a & ~b
        now = 1 - skipped / total
        if_c.append(now + int(c.sum()) / total)
        if_ab.append(now + int((a | b).sum()) / total)
        lines.append(
            f"| {name} | {total} | {skipped} | {allowed} | {fmt(now)} | {int(a.sum())} | {int(b.sum())} | "
            f"{int(c.sum())} | {fmt(if_c[-1])} | {fmt(if_ab[-1])} |"
        )
    lines.append(
        f"| **mean** | | | | {fmt(float(np.mean([1 - s / t for _, s, t, _ in budget])))} | | | | "
        f"{fmt(float(np.mean(if_c)))} | {fmt(float(np.mean(if_ab)))} |"
    )
    out.append("### Per project: the failing builds cipulse (global) skips at 30%, by kind\n")
    out.append("\n".join(lines) + "\n")

    # How separable are skipped failures from skipped passes, feature by feature, within one fold?
    from sklearn.metrics import roc_auc_score

    separations = []
    for name in FEATURE_NAMES:
        per_project_auc = []
        for (p, fail_rows), (_, pass_rows) in zip(failing_skipped, passing_skipped, strict=True):
            fold_of_row = np.full(len(p.failed), -1)
            fold_of_row[p.test_rows] = p.fold_of
            aucs, weights = [], []
            for fold in np.unique(p.fold_of):
                fails = fail_rows[fold_of_row[fail_rows] == fold]
                passes = pass_rows[fold_of_row[pass_rows] == fold]
                values = np.nan_to_num(p.column(name)[np.concatenate([fails, passes])], nan=-1.0)
                truth = np.concatenate([np.ones(len(fails)), np.zeros(len(passes))])
                if len(fails) and len(passes) and len(np.unique(values)) > 1:
                    aucs.append(abs(roc_auc_score(truth, values) - 0.5) + 0.5)
                    weights.append(len(fails))
            if aucs:
                per_project_auc.append(float(np.average(aucs, weights=weights)))
        if per_project_auc:
            separations.append((float(np.mean(per_project_auc)), name))
    separations.sort(reverse=True)
    out.append(
        "### Within the builds cipulse skips: best single features, failing vs passing "
        "(ROC-AUC within each test fold, direction-free, mean over projects)\n"
    )
    out.append("| feature | ROC-AUC |\n|---|---|")
    out.append("\n".join(f"| {name} | {auc:.3f} |" for auc, name in separations[:8]) + "\n")

    log("done")
    out.append(f"Runtime: {time.monotonic() - started:.0f} s.\n")
    args.out.write_text("\n".join(out))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
