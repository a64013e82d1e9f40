"""`cipulse up` as a user runs it: a real subprocess, the built-in emulator or a monitors file, SQLite."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cipulse.emulator import Emulator
from cipulse.store import open_store

pytestmark = pytest.mark.integration


def _run(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {
        k: v for k, v in os.environ.items() if k not in ("GITHUB_TOKEN", "CIPULSE_STORE_URL", "XDG_DATA_HOME")
    }
    base.update({"HOME": str(cwd), "COLUMNS": "160", **(env or {})})
    argv = [sys.executable, "-m", "cipulse", "up", "--rounds", "1", *args]
    return subprocess.run(argv, cwd=cwd, env=base, capture_output=True, text=True, timeout=240, check=False)


def _job_ids(db: Path, repository: str) -> set[int]:
    store = open_store(f"sqlite:///{db}")
    try:
        return {job.job_id for job in store.iter_jobs(repository)}
    finally:
        store.close()


def test_fresh_start_watches_the_emulator_and_says_so(tmp_path: Path) -> None:
    result = _run(tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "No GITHUB_TOKEN" in out and "built-in GitHub emulator" in out
    db = tmp_path / ".local/share/cipulse/cipulse.db"
    assert f"sqlite:///{db}" in out.replace("\n", "")
    assert "metrics   http://127.0.0.1:" in out
    with Emulator(seed=0) as reference:
        for repository in reference.repositories:
            truth = {job.job_id for job in reference.truth.jobs(repository)}
            assert _job_ids(db, repository) == truth
            name = repository.rsplit("/", 1)[-1]
            assert f"emulator/{name}" in out
            row = next(
                line
                for line in out.splitlines()
                if (f"emulator/{name} " in line and "Healthy" in line)
                or (f"emulator/{name} " in line and ("Degraded" in line or "Failing" in line))
            )
            assert str(len(truth)) in row.split()


def test_inside_a_checkout_the_store_is_local(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    result = _run(tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / ".cipulse/cipulse.db").exists()


def test_monitors_file_with_secrets_from_the_environment(tmp_path: Path) -> None:
    with Emulator(seed=5, jobs_per_repo=200) as emulator:
        repository = emulator.repositories[0]
        monitor = {
            "apiVersion": "cipulse.io/v1alpha1",
            "kind": "CiCdMonitor",
            "metadata": {"name": "mine"},
            "spec": {
                "repository": repository,
                "apiUrl": emulator.api_url,
                "tokenSecretRef": {"name": "emu", "key": "token"},
                "pollInterval": "30s",
            },
        }
        path = tmp_path / "monitors.yaml"
        path.write_text(json.dumps(monitor))
        db = tmp_path / "mine.db"
        result = _run(
            tmp_path, "-f", str(path), "--store", f"sqlite:///{db}", env={"EMU_TOKEN": emulator.token}
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        assert "default/mine" in result.stdout
        assert _job_ids(db, repository) == {job.job_id for job in emulator.truth.jobs(repository)}


def test_wrong_token_is_reported_not_crashed(tmp_path: Path) -> None:
    with Emulator(seed=5, jobs_per_repo=50) as emulator:
        monitor = {
            "apiVersion": "cipulse.io/v1alpha1",
            "kind": "CiCdMonitor",
            "metadata": {"name": "denied"},
            "spec": {"repository": emulator.repositories[0], "apiUrl": emulator.api_url},
        }
        path = tmp_path / "monitors.yaml"
        path.write_text(json.dumps(monitor))
        result = _run(
            tmp_path,
            "-f",
            str(path),
            "--store",
            f"sqlite:///{tmp_path / 'x.db'}",
            env={"GITHUB_TOKEN": "wrong"},
        )
        assert result.returncode == 1
        assert "AuthenticationFailed" in result.stdout
        assert "wrong" not in result.stdout.replace("wrong_token", "")


def test_invalid_monitors_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "monitors.yaml"
    path.write_text(
        "apiVersion: cipulse.io/v1alpha1\nkind: CiCdMonitor\nmetadata: {name: bad}\n"
        "spec: {repository: not-a-repo, pollInterval: 5s}\n"
    )
    result = _run(tmp_path, "-f", str(path))
    assert result.returncode == 2
    assert "spec.repository" in result.stderr and "pollInterval" in result.stderr


def test_plain_http_to_another_host_is_refused_before_any_token_is_sent(tmp_path: Path) -> None:
    """The operator's URL rule holds here too: a token from the environment never travels in clear text."""
    path = tmp_path / "monitors.yaml"
    path.write_text(
        "apiVersion: cipulse.io/v1alpha1\nkind: CiCdMonitor\nmetadata: {name: ghe}\n"
        "spec: {repository: a/b, apiUrl: 'http://ghe.example.com/api/v3', tokenSecretRef: {name: ghe}}\n"
    )
    result = _run(tmp_path, "-f", str(path), env={"GHE_TOKEN": "ghp_secret-value"})
    assert result.returncode == 2
    assert "spec.apiUrl: apiUrl must use https:// because the GitHub token is sent there" in result.stderr
    assert "ghp_secret-value" not in result.stdout + result.stderr
