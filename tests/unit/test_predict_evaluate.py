"""`cipulse evaluate` end to end on synthetic histories (checks the plumbing, not model quality)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from cipulse.predict.synthetic import write_csv


def test_evaluate_writes_results_and_plots(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_csv(data / "alpha.csv", builds=500, seed=1)
    write_csv(data / "beta.csv", builds=500, seed=2)
    cipulse = str(Path(sys.executable).with_name("cipulse"))
    out, plots = tmp_path / "results.md", tmp_path / "plots"
    done = subprocess.run(
        [cipulse, "evaluate", "--data", str(data), "--out", str(out), "--plots", str(plots), "--no-forest"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    text = out.read_text()
    for expected in (
        "ROC-AUC",
        "F1(fail)",
        "previous outcome",
        "random skipping",
        "## Goals",
        "alpha",
        "beta",
    ):
        assert expected in text
    names = {p.name for p in plots.iterdir()}
    assert names == {
        "feature-importance.png",
        "confusion-matrix.png",
        "roc.png",
        "precision-recall.png",
        "tradeoff.png",
    }
    assert all((plots / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for name in names)


def test_train_writes_one_global_model_or_one_model_per_project(tmp_path: Path) -> None:
    from cipulse.predict import artifact

    data = tmp_path / "data"
    write_csv(data / "alpha.csv", builds=400, seed=3)
    write_csv(data / "beta.csv", builds=400, seed=4)
    cipulse = str(Path(sys.executable).with_name("cipulse"))
    per_project = subprocess.run(
        [cipulse, "train", "--csv", str(data), "--scope", "project", "--out", str(tmp_path / "m.json")],
        capture_output=True,
        text=True,
    )
    assert per_project.returncode == 0, per_project.stderr
    assert set(artifact.load(tmp_path / "m-alpha.json").histories) == {"alpha"}
    assert set(artifact.load(tmp_path / "m-beta.json").histories) == {"beta"}
    both = subprocess.run(
        [cipulse, "train", "--csv", str(data), "--out", str(tmp_path / "g.json")],
        capture_output=True,
        text=True,
    )
    assert both.returncode == 0, both.stderr
    assert set(artifact.load(tmp_path / "g.json").histories) == {"alpha", "beta"}
    bad = subprocess.run(
        [cipulse, "train", "--csv", str(tmp_path / "nowhere")], capture_output=True, text=True
    )
    assert bad.returncode == 2 and "does not exist" in bad.stderr


def test_development_protocol_uses_only_the_first_half_of_each_project(tmp_path: Path) -> None:
    from cipulse.predict.dataset import load_csv_projects
    from cipulse.predict.evaluation import development_projects

    data = tmp_path / "data"
    write_csv(data / "alpha.csv", builds=601, seed=5)
    (full,) = load_csv_projects(data)
    (half,) = development_projects([full])
    assert half.builds == full.builds[:300]
    assert half.rows == full.rows[:300]  # features only look back, so cutting changes none of them
    cipulse = str(Path(sys.executable).with_name("cipulse"))
    out = tmp_path / "dev.md"
    done = subprocess.run(
        [cipulse, "evaluate", "--data", str(data), "--out", str(out), "--no-forest", "--development"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    text = out.read_text()
    assert "(development protocol)" in text
    assert "| alpha | 300 |" in text
