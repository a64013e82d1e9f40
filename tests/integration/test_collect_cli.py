"""`cipulse collect` against the emulator: it collects with a progress bar, and the token never shows up
in its output or in any log record, even at DEBUG level and even when the token is rejected."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cipulse.cli import app
from cipulse.emulator import Emulator
from cipulse.store.sqlite import SqliteStore

pytestmark = pytest.mark.integration

REPO = "octo-org/payments-api"


@pytest.fixture(scope="module")
def emulator(github_assets: Any) -> Iterator[Emulator]:
    with Emulator(seed=31, repos={REPO: 600}) as running:
        yield running


def test_collect_command_collects_without_revealing_the_token(
    emulator: Emulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    store_url = f"sqlite:///{tmp_path}/cli.db"
    args = ["collect", REPO, "--api-url", emulator.api_url, "--store", store_url, "--since", "2020-01-01"]
    env = {"GITHUB_TOKEN": emulator.token, "CIPULSE_CACHE_DIR": str(tmp_path)}
    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    assert f"{REPO}: " in result.output and " jobs written" in result.output
    assert emulator.token not in result.output
    assert caplog.records  # httpx logged its requests at DEBUG ...
    assert emulator.token not in caplog.text  # ... without the token
    with SqliteStore(tmp_path / "cli.db") as store:
        assert store.count_jobs(REPO) == len(emulator.truth.jobs(REPO))


def test_rejected_token_fails_clearly_without_revealing_it(
    emulator: Emulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "ghp_this_token_is_wrong_0123456789abcdef"
    args = ["collect", REPO, "--api-url", emulator.api_url, "--store", f"sqlite:///{tmp_path}/bad.db"]
    result = CliRunner().invoke(app, args, env={"GITHUB_TOKEN": secret, "CIPULSE_CACHE_DIR": str(tmp_path)})
    assert result.exit_code == 2
    assert "rejected the token" in result.output
    assert secret not in result.output and secret not in caplog.text


def test_collect_as_a_process_prints_no_token(emulator: Emulator, tmp_path: Path) -> None:
    env = {**os.environ, "GITHUB_TOKEN": emulator.token, "CIPULSE_CACHE_DIR": str(tmp_path / "cache")}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "cipulse",
            "collect",
            REPO,
            "--api-url",
            emulator.api_url,
            "--since",
            "2020-01-01",
            "--store",
            f"sqlite:///{tmp_path}/proc.db",
            "--mode",
            "graphql",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "jobs written" in done.stdout
    assert emulator.token not in done.stdout + done.stderr
    # A second process: nothing new, and the workflow list comes back 304 thanks to the kept ETag.
    again = subprocess.run(done.args, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert again.returncode == 0, again.stderr
    assert "0 runs, 0 jobs written" in again.stdout
    assert "spent 1 GraphQL points and 0 REST requests (1 answered 304)" in again.stdout
    assert emulator.token not in again.stdout + again.stderr
    cached = list((tmp_path / "cache" / "github-etags").iterdir())
    assert cached and all(emulator.token not in path.read_text() + path.name for path in cached)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.mark.parametrize(
    "store_url",
    [
        "mysql://admin:hunter2-store-password@db.example/cipulse",
        "sqlite://relative-without-third-slash.db",
        "http://admin:hunter2-store-password@127.0.0.1:{port}",
    ],
    ids=["unsupported-scheme", "malformed-sqlite", "unreachable-search-store"],
)
def test_a_bad_or_unreachable_store_is_one_clear_line_without_its_password(
    store_url: str, tmp_path: Path
) -> None:
    env = {**os.environ, "GITHUB_TOKEN": "unused", "CIPULSE_CACHE_DIR": str(tmp_path), "COLUMNS": "400"}
    url = store_url.format(port=_closed_port())
    done = subprocess.run(
        [sys.executable, "-m", "cipulse", "collect", REPO, "--store", url],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert "Traceback" not in output
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), output
    assert "store" in lines[0]
    assert "hunter2" not in output
