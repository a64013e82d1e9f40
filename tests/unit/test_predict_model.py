"""The pure-Python tree evaluator scores exactly like LightGBM; artifacts reject tampering and mismatches."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import numpy as np
import pytest

from cipulse.predict import artifact
from cipulse.predict.dataset import load_csv_projects
from cipulse.predict.features import FEATURE_NAMES
from cipulse.predict.synthetic import write_csv
from cipulse.predict.trainjob import train_artifact
from cipulse.predict.treemodel import from_lightgbm_dump


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("model")
    projects = load_csv_projects(write_csv(directory / "demo.csv", builds=800, seed=3))
    path = directory / "model.json"
    train_artifact(projects, path)
    return path


def test_exported_trees_match_lightgbm_including_missing_values() -> None:
    import lightgbm

    rng = np.random.default_rng(1)
    features = rng.normal(size=(600, 4))
    features[rng.random(features.shape) < 0.2] = np.nan
    features[rng.random(features.shape) < 0.1] = 0.0
    labels = ((np.nan_to_num(features[:, 0]) + rng.normal(scale=0.5, size=600)) > 0).astype(int)
    booster = lightgbm.train(
        {
            "objective": "binary",
            "num_leaves": 7,
            "verbose": -1,
            "min_data_in_leaf": 5,
            "zero_as_missing": False,
        },
        lightgbm.Dataset(features, labels, feature_name=["a", "b", "c", "d"]),
        num_boost_round=30,
    )
    ensemble = from_lightgbm_dump(booster.dump_model())
    expected = booster.predict(features, raw_score=True)
    for row, want in zip(features.tolist(), expected.tolist(), strict=True):
        as_gate_row = [None if math.isnan(v) else v for v in row]
        assert ensemble.raw_score(as_gate_row) == pytest.approx(want, abs=1e-9)
        bias, parts = ensemble.contributions(as_gate_row)
        assert bias + sum(parts.values()) == pytest.approx(want, abs=1e-9)


def test_saved_model_loads_and_predicts_a_probability(model_file: Path) -> None:
    predictor = artifact.load(model_file)
    project, _ = predictor.history(None)
    assert project == "demo"
    assert 0.0 < predictor.threshold < 1.0
    assert len(predictor.sha256) == 64
    assert predictor.ensemble.feature_names == FEATURE_NAMES


def test_tampered_model_is_rejected(model_file: Path, tmp_path: Path) -> None:
    raw = bytearray(model_file.read_bytes())
    header_end = raw.index(b"\n")
    position = random.Random(0).randrange(header_end + 10, len(raw) - 10)
    raw[position] = ord("7") if raw[position] != ord("7") else ord("3")
    tampered = tmp_path / "tampered.json"
    tampered.write_bytes(bytes(raw))
    with pytest.raises(artifact.ArtifactError, match="corrupt or was modified"):
        artifact.load(tampered)


def test_truncated_and_foreign_files_are_rejected(model_file: Path, tmp_path: Path) -> None:
    truncated = tmp_path / "truncated.json"
    truncated.write_bytes(model_file.read_bytes()[:-100])
    with pytest.raises(artifact.ArtifactError, match="corrupt"):
        artifact.load(truncated)
    foreign = tmp_path / "foreign.json"
    foreign.write_text('{"hello": "world"}\n{}')
    with pytest.raises(artifact.ArtifactError, match="not a cipulse model"):
        artifact.load(foreign)
    with pytest.raises(artifact.ArtifactError, match="cannot read"):
        artifact.load(tmp_path / "missing.json")


def test_model_for_another_feature_definition_is_rejected(model_file: Path, tmp_path: Path) -> None:
    payload, _ = artifact.read_payload(model_file)
    payload["feature_names"] = [*payload["feature_names"], "a_feature_this_version_lacks"]
    other = tmp_path / "other.json"
    artifact.save(other, payload)  # correctly hashed, but made for other features
    with pytest.raises(artifact.ArtifactError, match="different feature definition"):
        artifact.load(other)


def test_newer_format_version_and_pinned_hash_are_enforced(model_file: Path, tmp_path: Path) -> None:
    header, _, body = model_file.read_bytes().partition(b"\n")
    newer = json.loads(header)
    newer["format_version"] = 99
    future = tmp_path / "future.json"
    future.write_bytes(json.dumps(newer).encode() + b"\n" + body)
    with pytest.raises(artifact.ArtifactError, match="format version 99"):
        artifact.load(future)
    with pytest.raises(artifact.ArtifactError, match="not the pinned model"):
        artifact.load(model_file, expected_sha256="0" * 64)
    assert (
        artifact.load(model_file, expected_sha256=json.loads(header)["sha256"]).sha256
        == json.loads(header)["sha256"]
    )


def test_version_one_models_are_refused_with_a_request_to_retrain(model_file: Path, tmp_path: Path) -> None:
    header, _, body = model_file.read_bytes().partition(b"\n")
    older = json.loads(header)
    older["format_version"] = 1
    old = tmp_path / "old.json"
    old.write_bytes(json.dumps(older).encode() + b"\n" + body)
    with pytest.raises(artifact.ArtifactError, match=r"format version 1.*retrain"):
        artifact.load(old)


def test_global_model_keeps_one_calibration_and_threshold_per_project(tmp_path: Path) -> None:
    projects = [
        *load_csv_projects(write_csv(tmp_path / "calm.csv", builds=900, seed=6)),
        *load_csv_projects(write_csv(tmp_path / "busy.csv", builds=900, seed=7)),
    ]
    path = tmp_path / "global.json"
    train_artifact(projects, path)
    predictor = artifact.load(path)
    assert set(predictor.decisions) == {"calm", "busy"}
    calm, busy = predictor.decision("calm"), predictor.decision("busy")
    assert (calm.calibration, calm.threshold) != (busy.calibration, busy.threshold)
    unknown = predictor.decision("elsewhere")
    assert (unknown.calibration, unknown.threshold) == (predictor.calibration, predictor.threshold)
