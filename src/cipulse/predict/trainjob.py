"""`cipulse train`: fit the LightGBM model on every build of the chosen projects and write the artifact."""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np

from cipulse import __version__
from cipulse.predict import artifact
from cipulse.predict.dataset import Project, as_matrix, start_times
from cipulse.predict.features import FEATURE_NAMES
from cipulse.predict.training import (
    GLOBAL_LIGHTGBM_PARAMS,
    HALF_LIFE_DAYS,
    INNER_BLOCKS,
    LIGHTGBM_PARAMS,
    VALIDATION_BLOCKS,
    Decision,
    train,
)
from cipulse.predict.treemodel import from_lightgbm_dump

Scope = Literal["project", "global"]


def fits_needed() -> int:
    return VALIDATION_BLOCKS + 1


def fingerprint(projects: Sequence[Project]) -> dict[str, Any]:
    """What the model was trained on: counts, time span and a hash of every feature row and label."""
    digest = hashlib.sha256()
    for project in projects:
        digest.update(project.name.encode())
        for row, label in zip(project.rows, project.labels, strict=True):
            digest.update(json.dumps([row, label], separators=(",", ":")).encode())
    return {
        "sha256": digest.hexdigest(),
        "projects": {
            project.name: {
                "builds": len(project.builds),
                "failure_rate": round(sum(project.labels) / len(project.labels), 6),
                "first_build": project.builds[0][0].started_at.isoformat(),
                "last_build": project.builds[-1][0].started_at.isoformat(),
            }
            for project in projects
        },
    }


def train_artifact(
    projects: Sequence[Project],
    out: Path,
    *,
    target_recall: float = 0.9,
    on_fit: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Train on all builds of `projects` (one project: per-project model; several: a global model).

    A global model still gets one calibration and threshold per project (when the project has enough
    held-out failing and passing builds), which the gate uses for that project.
    """
    if not projects:
        raise ValueError("no projects to train on")
    features = np.concatenate([np.asarray(as_matrix(p.rows), dtype=float) for p in projects])
    labels = np.concatenate([np.asarray(p.labels, dtype=int) for p in projects])
    if labels.min() == labels.max():
        raise ValueError("the history has only one outcome (all passed or all failed): nothing to learn")
    blocks = np.concatenate(
        [
            np.minimum((np.arange(len(p.rows)) * INNER_BLOCKS) // len(p.rows), INNER_BLOCKS - 1)
            for p in projects
        ]
    )
    params = GLOBAL_LIGHTGBM_PARAMS if len(projects) > 1 else LIGHTGBM_PARAMS
    model = train(
        "lightgbm",
        features,
        labels,
        target_recall=target_recall,
        block_ids=blocks,
        times=np.concatenate([np.asarray(start_times(p), dtype=float) for p in projects]),
        groups=np.concatenate([np.full(len(p.rows), i) for i, p in enumerate(projects)]),
        params=params,
        on_fit=on_fit,
    )
    booster = model.fitted.estimator.booster_
    ensemble = from_lightgbm_dump(booster.dump_model())
    _check_same_scores(ensemble, booster, features)
    created = datetime.now(UTC)
    fp = fingerprint(projects)
    payload: dict[str, Any] = {
        "model_version": f"{created:%Y%m%dT%H%M%SZ}-{fp['sha256'][:8]}",
        "created_at": created.isoformat(),
        "cipulse_version": __version__,
        "feature_names": list(FEATURE_NAMES),
        "trees": ensemble.to_json(),
        "lightgbm_model": booster.model_to_string(),
        "lightgbm_params": {k: v for k, v in params.items() if k != "n_jobs"},
        "recency_half_life_days": HALF_LIFE_DAYS,
        "calibration": model.pooled.calibration.to_json(),
        "thresholds": _thresholds(model.pooled, target_recall),
        "projects": {
            p.name: {
                "calibration": model.decision(index).calibration.to_json(),
                "thresholds": _thresholds(model.decision(index), target_recall),
            }
            for index, p in enumerate(projects)
        },
        "metrics": {**model.validation, "importance": model.fitted.importances()},
        "fingerprint": fp,
        "histories": {p.name: p.final_history.to_json() for p in projects},
    }
    payload["sha256"] = artifact.save(out, payload)
    return payload


def _thresholds(decision: Decision, target_recall: float) -> dict[str, Any]:
    return {
        "decision": decision.recall_threshold,
        "f1": decision.f1_threshold,
        "f1_by_previous_outcome": {
            "after_pass": decision.f1_thresholds_by_previous.get(0),
            "after_failure": decision.f1_thresholds_by_previous.get(1),
        },
        "target_recall": target_recall,
    }


def _check_same_scores(ensemble: Any, booster: Any, features: np.ndarray) -> None:
    """The exported trees must score exactly like LightGBM, or the gate would predict something else."""
    sample = features[random.Random(0).sample(range(len(features)), min(300, len(features)))]
    expected = booster.predict(sample, raw_score=True)
    for row, want in zip(sample.tolist(), expected.tolist(), strict=True):
        got = ensemble.raw_score(row)
        if abs(got - want) > 1e-6 * max(1.0, abs(want)):
            raise RuntimeError(
                f"exported trees disagree with LightGBM ({got} != {want}); not saving the model"
            )
