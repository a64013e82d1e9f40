"""Training from a real SQLite store through `training_rows()`, and the gate replaying store history."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from cipulse.predict.dataset import load_store_projects
from cipulse.predict.features import FEATURE_NAMES
from cipulse.records import WorkflowRun
from cipulse.store.sqlite import SqliteStore

REPO = "octo/app"


def _runs(count: int, seed: int = 0) -> list[WorkflowRun]:
    rng = random.Random(seed)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    broken = False
    runs = []
    for number in range(1, count + 1):
        broken = rng.random() < (0.6 if broken else 0.15)
        conclusion = (
            rng.choice(["cancelled", "failure" if broken else "success"]) if number % 25 == 0 else None
        )
        runs.append(
            WorkflowRun(
                repository=REPO,
                run_id=1000 + number,
                run_attempt=1,
                run_number=number,
                workflow_id=7,
                workflow_name="CI",
                event=rng.choice(["push", "pull_request"]),
                head_sha=f"{number:040x}",
                head_branch=rng.choice(["main", "feature"]),
                status="completed",
                conclusion=conclusion or ("failure" if broken else "success"),
                created_at=start + timedelta(minutes=30 * number),
                run_started_at=None,
                updated_at=None,
                actor=rng.choice(["ann", "bob", "cy"]),
            )
        )
    return runs


@pytest.fixture()
def store_url(tmp_path: Path) -> str:
    store = SqliteStore(tmp_path / "cipulse.db")
    store.upsert(_runs(400), [])
    store.close()
    return f"sqlite:///{tmp_path / 'cipulse.db'}"


def test_store_history_becomes_labelled_builds_in_time_order(store_url: str) -> None:
    (project,) = load_store_projects(store_url, REPO)
    runs = [r for r in _runs(400) if r.conclusion in ("success", "failure")]
    assert project.name == REPO
    assert project.labels == [int(r.conclusion == "failure") for r in runs]  # cancelled runs carry no label
    author = FEATURE_NAMES.index("author_builds")
    assert project.rows[0][author] == 0.0 and max(row[author] or 0 for row in project.rows) > 50


def test_train_from_store_then_gate_with_store_history(store_url: str, tmp_path: Path) -> None:
    model = tmp_path / "model.json"
    cli = [str(Path(sys.executable).with_name("cipulse"))]
    trained = subprocess.run(
        [*cli, "train", "--store", store_url, "--out", str(model)], capture_output=True, text=True
    )
    assert trained.returncode == 0, trained.stderr
    done = subprocess.run(
        [
            *cli,
            "predict",
            "--model",
            str(model),
            "--no-git",
            "--store",
            store_url,
            "--project",
            REPO,
            "--branch",
            "main",
            "--json",
            "--advisory",
        ],
        capture_output=True,
        text=True,
    )
    verdict = json.loads(done.stdout)
    assert done.returncode == 0, done.stderr
    assert verdict["history_source"].startswith("store (")
    assert verdict["project"] == REPO


def test_gate_store_history_knows_code_states_like_training_with_git(tmp_path: Path) -> None:
    """Trained with `--git-dir`, the history records each build's tree (state_id); the gate's history
    from `--store` must too, or the same-code-state features differ between training and serving (a
    commit whose tree was built before, e.g. an empty or re-signed commit, would look never built)."""
    from cipulse.predict.dataset import _git_enricher, builds_from_training_rows
    from cipulse.predict.features import History
    from cipulse.predict.gate import GateOptions, _event_from_options, _history

    repo = tmp_path / "repo"
    repo.mkdir()

    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True)
        return done.stdout.strip()

    git("init", "-q", "-b", "main")
    git("config", "user.email", "dev@example.com")
    git("config", "user.name", "Dev")
    (repo / "app.py").write_text("print('broken'\n")
    git("add", ".")
    git("commit", "-qm", "break it")
    broken = git("rev-parse", "HEAD")
    git("commit", "-q", "--allow-empty", "-m", "retry")  # a new commit, the same tree
    start = datetime(2025, 1, 1, tzinfo=UTC)
    runs = [
        WorkflowRun(
            repository=REPO,
            run_id=500 + number,
            run_attempt=1,
            run_number=number,
            workflow_id=7,
            workflow_name="CI",
            event="push",
            head_sha=sha,
            head_branch="main",
            status="completed",
            conclusion="failure" if sha == broken else "success",
            created_at=start + timedelta(hours=number),
            run_started_at=None,
            updated_at=None,
            actor="ann",
        )
        for number, sha in enumerate(["f" * 40, broken, broken], start=1)
    ]
    store = SqliteStore(tmp_path / "gate.db")
    store.upsert(runs, [])
    rows = store.training_rows(REPO)
    store.close()

    options = GateOptions(
        model=tmp_path / "unused.json", repo=repo, store=f"sqlite:///{tmp_path / 'gate.db'}"
    )
    event = _event_from_options(replace(options, branch="main"))
    same_state = FEATURE_NAMES.index("same_state_builds")
    for enrich in (_git_enricher(repo), None):  # trained with --git-dir, and without
        trained = History()
        for build, failed in builds_from_training_rows(rows, enrich)[REPO]:
            trained.observe(build, failed)
        model = SimpleNamespace(histories={REPO: trained.to_json()})  # all `_history` reads of the model
        _, served, _ = _history(model, options)  # type: ignore[arg-type]
        assert trained.features(event)[same_state] == (2.0 if enrich else 0.0)
        assert served.features(event) == trained.features(event)
