"""action.yml's gate step, run with bash the way the composite action runs it (python -m cipulse.predict)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cipulse.predict.dataset import load_csv_projects
from cipulse.predict.synthetic import write_csv
from cipulse.predict.trainjob import train_artifact

ACTION = Path(__file__).resolve().parents[2] / "action.yml"


def _step(name: str) -> dict[str, object]:
    action = yaml.safe_load(ACTION.read_text())
    assert action["runs"]["using"] == "composite"
    (step,) = [s for s in action["runs"]["steps"] if s.get("name") == name]
    return step


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("workspace")
    train_artifact(load_csv_projects(write_csv(root / "demo.csv", builds=600, seed=7)), root / "model.json")
    for args in (
        ["init", "-q", "-b", "main"],
        ["config", "user.email", "a@example.com"],
        ["config", "user.name", "A"],
    ):
        subprocess.run(["git", "-C", str(root), *args], check=True)
    (root / "lib.py").write_text("X = 1\n")
    subprocess.run(["git", "-C", str(root), "add", "lib.py"], check=True)
    subprocess.run(["git", "-C", str(root), "commit", "-qm", "one"], check=True)
    (root / "lib.py").write_text("X = 2\n")
    subprocess.run(["git", "-C", str(root), "commit", "-qam", "two"], check=True)
    return root


def run_gate_step(workspace: Path, tmp_path: Path, **inputs: str) -> tuple[int, dict[str, str]]:
    step = _step("Predict")
    runner_temp = tmp_path / "runner"
    (runner_temp / "cipulse-gate" / "bin").mkdir(parents=True)
    python = runner_temp / "cipulse-gate" / "bin" / "python"  # stands in for the venv the install step makes
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    outputs = tmp_path / "github_output"
    outputs.touch()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")}
    defaults = {
        "MODEL": "model.json",
        "MODEL_SHA256": "",
        "PROJECT": "",
        "THRESHOLD": "",
        "ADVISORY": "false",
    }
    env.update({**defaults, "FAIL_CLOSED": "false", **inputs})
    env.update(GITHUB_WORKSPACE=str(workspace), GITHUB_OUTPUT=str(outputs), RUNNER_TEMP=str(runner_temp))
    done = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", str(step["run"])],
        cwd=workspace,
        env=env,
        capture_output=True,
        text=True,
    )
    values = dict(line.split("=", 1) for line in outputs.read_text().splitlines() if "=" in line)
    return done.returncode, values


def test_action_step_sets_outputs_and_exit_code(workspace: Path, tmp_path: Path) -> None:
    code, outputs = run_gate_step(workspace, tmp_path, THRESHOLD="0")
    assert code == 1
    assert outputs["decision"] == "likely-failure"
    assert 0.0 < float(outputs["probability"]) < 1.0


def test_action_advisory_and_fail_closed_inputs(workspace: Path, tmp_path: Path) -> None:
    assert run_gate_step(workspace, tmp_path / "a", THRESHOLD="0", ADVISORY="true")[0] == 0
    assert run_gate_step(workspace, tmp_path / "b", MODEL="missing.json")[0] == 0
    assert run_gate_step(workspace, tmp_path / "c", MODEL="missing.json", FAIL_CLOSED="true")[0] == 2
    assert run_gate_step(workspace, tmp_path / "d", MODEL_SHA256="0" * 64, FAIL_CLOSED="true")[0] == 2
