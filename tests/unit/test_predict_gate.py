"""`cipulse predict` as a real process on a temporary git repo: exit codes, --advisory, fail-open."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cipulse.predict.dataset import load_csv_projects
from cipulse.predict.synthetic import write_csv
from cipulse.predict.trainjob import train_artifact

HEAVY = ("numpy", "pandas", "sklearn", "lightgbm", "scipy")


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("gate-model")
    path = directory / "model.json"
    train_artifact(load_csv_projects(write_csv(directory / "demo.csv", builds=800, seed=5)), path)
    return path


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("repo")

    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)

    git("init", "-q", "-b", "main")
    git("config", "user.email", "dev@example.com")
    git("config", "user.name", "Dev")
    (root / "app.py").write_text("print('hello')\n")
    git("add", ".")
    git("commit", "-qm", "initial")
    (root / "app.py").write_text("print('hello')\nprint('more')\n")
    (root / "tests").mkdir()
    (root / "tests" / "test_app.py").write_text("def test_app():\n    assert True\n")
    (root / "requirements.txt").write_text("requests==2.0\n")
    git("add", ".")
    git("commit", "-qm", "fix output and add a test")
    return root


def gate(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The real CLI in a fresh process; also reports which heavy modules the process imported."""
    script = (
        "import atexit, sys\n"
        f"heavy = {HEAVY!r}\n"
        "loaded = lambda: [m for m in heavy if m in sys.modules]\n"
        "atexit.register(lambda: print('IMPORTED', loaded(), file=sys.stderr))\n"
        "from cipulse.cli import app\n"
        "app(['predict', *sys.argv[1:]])\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")}
    return subprocess.run(
        [sys.executable, "-c", script, "--repo", str(repo), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_likely_failure_exits_1_and_go_on_exits_0(model_file: Path, repo: Path) -> None:
    flagged = gate(repo, "--model", str(model_file), "--threshold", "0")
    assert flagged.returncode == 1, flagged.stderr
    assert "LIKELY FAILURE" in flagged.stdout
    go_on = gate(repo, "--model", str(model_file), "--threshold", "1.01")
    assert go_on.returncode == 0, go_on.stderr
    assert "go on" in go_on.stdout


def test_default_threshold_decision_matches_printed_probability(model_file: Path, repo: Path) -> None:
    done = gate(repo, "--model", str(model_file), "--json")
    verdict = json.loads(done.stdout)
    assert verdict["decision"] == (
        "likely-failure" if verdict["probability"] >= verdict["threshold"] else "go-on"
    )
    assert done.returncode == (1 if verdict["decision"] == "likely-failure" else 0)
    assert 0.0 < verdict["probability"] < 1.0
    assert verdict["factors"], "the gate explains its decision"
    assert {f["feature"] for f in verdict["factors"]} <= set(
        json.loads(model_file.read_text().split("\n", 1)[1])["feature_names"]
    )


def test_advisory_always_exits_0(model_file: Path, repo: Path) -> None:
    done = gate(repo, "--model", str(model_file), "--threshold", "0", "--advisory")
    assert done.returncode == 0
    assert "LIKELY FAILURE" in done.stdout
    broken = gate(repo, "--model", str(repo / "missing.json"), "--advisory", "--fail-closed")
    assert broken.returncode == 0
    assert "INTERNAL ERROR" in broken.stderr


def test_internal_errors_fail_open_by_default_and_closed_on_request(
    model_file: Path, repo: Path, tmp_path: Path
) -> None:
    tampered = tmp_path / "tampered.json"
    tampered.write_bytes(model_file.read_bytes().replace(b'"decision":', b'"decision":1e-9,"x":', 1))
    opened = gate(repo, "--model", str(tampered))
    assert opened.returncode == 0
    assert "INTERNAL ERROR (failing OPEN)" in opened.stderr
    assert "modified" in opened.stderr
    closed = gate(repo, "--model", str(tampered), "--fail-closed")
    assert closed.returncode == 2
    not_a_repo = gate(tmp_path, "--model", str(model_file), "--fail-closed")
    assert not_a_repo.returncode == 2
    assert "git" in not_a_repo.stderr


def test_gate_reads_git_and_needs_no_heavy_libraries(model_file: Path, repo: Path) -> None:
    done = gate(repo, "--model", str(model_file), "--json", "--advisory")
    assert done.returncode == 0, done.stderr
    assert "IMPORTED []" in done.stderr
    flags_only = gate(repo, "--model", str(model_file), "--json", "--no-git", "--advisory")
    assert flags_only.returncode == 0 and "probability" in json.loads(flags_only.stdout)


def test_commit_metadata_comes_from_git(repo: Path) -> None:
    from cipulse.predict.gitmeta import event_from_git

    event = event_from_git(repo)
    assert event.author == "Dev"
    assert event.message == "fix output and add a test"
    assert event.change.src_churn == 1 and event.change.test_churn == 2
    assert (event.change.files_added, event.change.files_modified) == (2, 1)
    assert (event.change.test_files, event.change.dependency_files, event.change.tests_added) == (1, 1, 1)
    assert event.change_id is not None and len(event.change_id) == 40


def test_global_model_decides_with_the_chosen_projects_threshold(repo: Path, tmp_path: Path) -> None:
    from cipulse.predict import artifact

    projects = [
        *load_csv_projects(write_csv(tmp_path / "first.csv", builds=700, seed=8)),
        *load_csv_projects(write_csv(tmp_path / "second.csv", builds=700, seed=9)),
    ]
    path = tmp_path / "global.json"
    train_artifact(projects, path)
    predictor = artifact.load(path)
    assert predictor.decision("first").threshold != predictor.decision("second").threshold
    for name in ("first", "second"):
        done = gate(repo, "--model", str(path), "--project", name, "--json", "--advisory")
        verdict = json.loads(done.stdout)
        assert verdict["project"] == name
        assert verdict["threshold"] == pytest.approx(predictor.decision(name).threshold)
    unnamed = gate(repo, "--model", str(path), "--fail-closed")
    assert unnamed.returncode == 2 and "--project" in unnamed.stderr
