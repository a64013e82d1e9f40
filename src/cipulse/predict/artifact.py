"""The model artifact: one versioned JSON file, no pickle, with a content hash.

Layout: the first line is a small JSON header `{"format": "cipulse-model", "format_version": 2,
"sha256": ...}`; the rest is the JSON payload and `sha256` is the hash of exactly those bytes. Loading
checks the header, the hash, the format version and that the feature definition matches this cipulse, so a
tampered, truncated or incompatible model fails with a clear message instead of predicting nonsense.
The hash detects corruption and edits; to pin one exact model (authenticity), pass its hash to the gate
(`--model-sha256`). Standard library only: the gate loads it.

Version 2 added the code-lineage state to the history snapshot and one calibration and threshold per
project; version 1 files are refused with a request to retrain.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cipulse.predict.calibration import Platt
from cipulse.predict.features import FEATURE_NAMES, History
from cipulse.predict.treemodel import ModelFormatError, TreeEnsemble

FORMAT = "cipulse-model"
FORMAT_VERSION = 2


class ArtifactError(RuntimeError):
    """The model file is missing, corrupt, tampered with or made for another feature definition."""


@dataclass(frozen=True)
class ProjectDecision:
    """How one project's raw scores become a probability and a decision."""

    calibration: Platt
    threshold: float
    f1_threshold: float

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ProjectDecision:
        thresholds = data["thresholds"]
        return cls(
            Platt.from_json(data["calibration"]), float(thresholds["decision"]), float(thresholds["f1"])
        )


@dataclass(frozen=True)
class Predictor:
    """Everything the gate needs: trees, calibration, decision threshold and the history snapshot."""

    model_version: str
    ensemble: TreeEnsemble
    calibration: Platt
    threshold: float
    f1_threshold: float
    target_recall: float
    histories: dict[str, dict[str, Any]]
    decisions: dict[str, ProjectDecision]
    metrics: dict[str, Any]
    fingerprint: dict[str, Any]
    created_at: str
    sha256: str

    def history(self, project: str | None) -> tuple[str, History]:
        """The snapshot for `project` (None: the only project the model was trained on)."""
        if project is None:
            if len(self.histories) != 1:
                raise ArtifactError(
                    f"the model was trained on {len(self.histories)} projects; choose one with --project "
                    f"({', '.join(sorted(self.histories))})"
                )
            project = next(iter(self.histories))
        if project not in self.histories:
            raise ArtifactError(f"the model has no history for project {project!r}")
        return project, History.from_json(self.histories[project])

    def decision(self, project: str) -> ProjectDecision:
        """The project's own calibration and threshold (a global model has one per project)."""
        if project in self.decisions:
            return self.decisions[project]
        return ProjectDecision(self.calibration, self.threshold, self.f1_threshold)


def save(path: Path, payload: dict[str, Any]) -> str:
    """Write atomically (temp file + rename) and return the content hash."""
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    digest = hashlib.sha256(body).hexdigest()
    header = json.dumps({"format": FORMAT, "format_version": FORMAT_VERSION, "sha256": digest}).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_bytes(header + b"\n" + body)
    temporary.replace(path)
    return digest


def read_payload(path: Path, expected_sha256: str | None = None) -> tuple[dict[str, Any], str]:
    """The verified payload and its hash."""
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise ArtifactError(f"cannot read model {path}: {error.strerror or error}") from None
    header_bytes, newline, body = raw.partition(b"\n")
    try:
        header = json.loads(header_bytes)
    except ValueError:
        raise ArtifactError(f"{path} is not a cipulse model (unreadable header)") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT or not newline:
        raise ArtifactError(f"{path} is not a cipulse model")
    if header.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(
            f"{path} has model format version {header.get('format_version')!r}; this cipulse reads version "
            f"{FORMAT_VERSION}: retrain with `cipulse train`"
        )
    digest = hashlib.sha256(body).hexdigest()
    if digest != header.get("sha256"):
        raise ArtifactError(f"{path} is corrupt or was modified: content hash does not match its header")
    if expected_sha256 is not None and digest != expected_sha256.lower():
        raise ArtifactError(f"{path} is not the pinned model: sha256 {digest} != expected {expected_sha256}")
    try:
        payload = json.loads(body)
    except ValueError:
        raise ArtifactError(f"{path} is corrupt: the payload is not JSON") from None
    if not isinstance(payload, dict):
        raise ArtifactError(f"{path} is corrupt: the payload is not an object")
    return payload, digest


def load(path: Path, expected_sha256: str | None = None) -> Predictor:
    """Load and verify a model for the gate."""
    payload, digest = read_payload(path, expected_sha256)
    names = tuple(payload.get("feature_names", ()))
    if names != FEATURE_NAMES:
        raise ArtifactError(
            f"{path} was trained with a different feature definition ({len(names)} features, "
            f"this cipulse has "
            f"{len(FEATURE_NAMES)}): retrain with `cipulse train`"
        )
    try:
        ensemble = TreeEnsemble.from_json(payload["trees"])
        if ensemble.feature_names != FEATURE_NAMES:
            raise ModelFormatError("tree features differ from the declared features")
        thresholds = payload["thresholds"]
        return Predictor(
            model_version=str(payload["model_version"]),
            ensemble=ensemble,
            calibration=Platt.from_json(payload["calibration"]),
            threshold=float(thresholds["decision"]),
            f1_threshold=float(thresholds["f1"]),
            target_recall=float(thresholds["target_recall"]),
            histories=dict(payload["histories"]),
            decisions={
                str(name): ProjectDecision.from_json(data) for name, data in dict(payload["projects"]).items()
            },
            metrics=dict(payload.get("metrics", {})),
            fingerprint=dict(payload["fingerprint"]),
            created_at=str(payload["created_at"]),
            sha256=digest,
        )
    except (KeyError, TypeError, ValueError) as error:
        raise ArtifactError(f"{path} is incomplete or malformed: {error}") from None
