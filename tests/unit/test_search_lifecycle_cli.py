"""`cipulse retention`: exit codes and messages for bad input, and the deletion job on SQLite (embedded)."""

from __future__ import annotations

import re
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cipulse.cli import app
from cipulse.metrics.derive import job_window_time
from cipulse.store.sqlite import SqliteStore
from cipulse.store.synthetic import generate

START = datetime(2026, 1, 5, tzinfo=UTC)


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["retention", *args], env=env)
    return result.exit_code, result.stdout, result.stderr


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def database(tmp_path: Path) -> Path:
    path = tmp_path / "history.db"
    store = SqliteStore(str(path))
    for batch in generate(seed=3, jobs=900, start=START, days=70, batch_jobs=300):
        store.upsert(batch.runs, batch.jobs)
    store.close()
    return path


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "exactly one of --keep-days N or --before DATE"),
        (("--keep-days", "30", "--before", "2026-01-01"), "exactly one of"),
        (("--keep-days", "0"), "--keep-days must be at least 1, got 0"),
        (("--keep-days", "-3"), "at least 1"),
        (("--before", "last tuesday"), "--before expects a date like"),
        (("--before", "2999-01-01"), "is in the future"),
        (("--keep-days", "800000"), "--keep-days 800000 reaches back before the year 1"),
        (("--keep-days", "1000000000"), "--keep-days 1000000000 reaches back before the year 1"),
    ],
)
def test_bad_cutoffs_exit_2_with_a_reason(args: tuple[str, ...], message: str, database: Path) -> None:
    code, out, err = run("--store", f"sqlite:///{database}", *args)
    assert code == 2 and message in err and out == ""
    assert SqliteStore(str(database)).count_jobs() == 900  # nothing was touched


def test_keep_days_must_be_a_number() -> None:
    code, _, err = run("--store", "sqlite:///x.db", "--keep-days", "ninety")
    assert code == 2 and "--keep-days" in err


def test_store_is_required() -> None:
    code, _, err = run("--keep-days", "30", env={"CIPULSE_STORE_URL": ""})
    assert code == 2 and "--store" in err


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://admin:hunter2@files:21", "bad --store ftp://***@files:21: use sqlite:///path.db or http(s)"),
        ("https://admin:hunter2@search:notaport", "bad --store https://***@search:notaport: not a valid URL"),
        ("http://admin:hunter2@", "no host"),
        ("http://[::1", "not a valid URL"),
        ("sqlite://relative.db", "expected sqlite:///relative.db"),
        ("sqlite:///:memory:", "expected sqlite:///relative.db"),
    ],
)
def test_bad_urls_are_refused_without_showing_credentials(url: str, message: str) -> None:
    code, out, err = run("--store", url, "--keep-days", "30")
    assert code == 2 and message in err and out == ""
    assert "hunter2" not in err + out


def test_bad_index_prefix_is_refused_before_anything_is_opened() -> None:
    url = f"http://127.0.0.1:{closed_port()}"  # nothing listens: the prefix check must come first
    code, out, err = run("--store", url, "--index-prefix", "Bad Prefix", "--keep-days", "30")
    assert code == 2 and "bad --index-prefix: index prefix must be" in err and out == ""


def test_a_missing_sqlite_file_is_an_error_not_a_new_database(tmp_path: Path) -> None:
    missing = tmp_path / "typo.db"
    code, _, err = run("--store", f"sqlite:///{missing}", "--keep-days", "30")
    assert code == 2 and f"no SQLite database at {missing}" in err
    assert not missing.exists()


def test_unreachable_search_store_is_one_line_exit_2_redacted() -> None:
    url = f"http://admin:hunter2@127.0.0.1:{closed_port()}"
    code, out, err = run("--store", url, "--keep-days", "30")
    assert code == 2
    assert err.startswith("error: cannot open the store http://***@127.0.0.1:") and "unreachable" in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "hunter2" not in err + out


def test_store_url_from_the_environment(database: Path) -> None:
    code, out, _ = run("--keep-days", "3650", env={"CIPULSE_STORE_URL": f"sqlite:///{database}"})
    assert code == 0 and "deleted 0 runs and job attempts" in out


def test_sqlite_deletes_exactly_what_is_older_and_dry_run_agrees(database: Path) -> None:
    cutoff = START + timedelta(days=31, hours=7, seconds=13)
    store = SqliteStore(str(database))
    runs, jobs = list(store.iter_runs()), list(store.iter_jobs())
    store.close()
    old_runs = [r for r in runs if r.created_at < cutoff]
    old_jobs = [j for j in jobs if (t := job_window_time(j)) is not None and t < cutoff]
    assert 0 < len(old_runs) < len(runs) and 0 < len(old_jobs) < len(jobs)

    code, out, _ = run("--store", f"sqlite:///{database}", "--before", cutoff.isoformat(), "--dry-run")
    assert code == 0 and f"would delete {len(old_runs)} runs and {len(old_jobs)} job attempts" in out
    assert SqliteStore(str(database)).count_jobs() == len(jobs)  # a dry run deletes nothing

    code, out, _ = run("--store", f"sqlite:///{database}", "--before", cutoff.isoformat())
    assert code == 0 and f"deleted {len(old_runs) + len(old_jobs)} runs and job attempts" in out
    after = SqliteStore(str(database))
    assert sorted(r.key for r in after.iter_runs()) == sorted(r.key for r in runs if r not in old_runs)
    assert sorted(j.key for j in after.iter_jobs()) == sorted(j.key for j in jobs if j not in old_jobs)
    after.close()

    code, out, _ = run("--store", f"sqlite:///{database}", "--before", cutoff.isoformat())
    assert code == 0 and "deleted 0 runs and job attempts" in out  # repeating it is harmless


def test_keep_days_counts_back_from_now(database: Path) -> None:
    code, out, _ = run("--store", f"sqlite:///{database}", "--keep-days", "7", "--dry-run")
    assert code == 0
    match = re.search(r"cutoff (\S+) ", out)
    assert match is not None
    cutoff = datetime.fromisoformat(match.group(1))
    assert timedelta(days=7) <= datetime.now(UTC) - cutoff < timedelta(days=7, minutes=5)
