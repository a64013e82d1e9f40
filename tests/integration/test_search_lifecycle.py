"""Retention on real Elasticsearch and OpenSearch (and SQLite): lifecycle detection on the integ-test
distributions (which have neither ILM nor ISM) and the `cipulse retention` deletion job, checked index by
index and record by record against the generated history."""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from cipulse.cli import app
from cipulse.metrics.derive import job_window_time
from cipulse.records import Job, WorkflowRun
from cipulse.store.base import Store, Watermark
from cipulse.store.search import SearchStore
from cipulse.store.search_mappings import month_suffix
from cipulse.store.sqlite import SqliteStore
from cipulse.store.synthetic import generate

pytestmark = pytest.mark.integration

START = datetime(2025, 11, 10, tzinfo=UTC)
CUTOFF = datetime(2026, 1, 14, 9, 30, 17, tzinfo=UTC)  # inside January: Nov/Dec go whole, Jan is trimmed
_prefixes = itertools.count()


def undated_job(job_id: int = 99, created_at: datetime | None = None) -> Job:
    """A job GitHub gave no timestamp for: it cannot be dated, so retention never removes it."""
    return Job(
        repository="octo/alpha",
        run_id=1,
        run_attempt=1,
        job_id=job_id,
        name="build",
        workflow_name="CI",
        head_sha="a" * 40,
        head_branch="main",
        status="queued",
        conclusion=None,
        created_at=created_at,
        started_at=None,
        completed_at=None,
    )


def history() -> tuple[list[WorkflowRun], list[Job]]:
    runs: list[WorkflowRun] = []
    jobs: list[Job] = []
    for batch in generate(seed=5, jobs=1500, start=START, days=110, batch_jobs=500):
        runs.extend(batch.runs)
        jobs.extend(batch.jobs)
    return runs, jobs


@pytest.fixture(params=["elasticsearch", "opensearch"])
def engine(request: pytest.FixtureRequest) -> tuple[str, str]:
    return request.param, str(request.getfixturevalue(f"{request.param}_url"))


@pytest.fixture
def search(engine: tuple[str, str], request: pytest.FixtureRequest) -> Iterator[SearchStore]:
    prefix = f"lc{next(_prefixes)}-{request.node.name.split('[')[0].replace('_', '-')[:30]}"
    with SearchStore(engine[1], index_prefix=prefix) as opened:
        yield opened


def indices(url: str, prefix: str) -> dict[str, int]:
    answer = httpx.get(f"{url}/_cat/indices/{prefix}-*", params={"format": "json", "h": "index,docs.count"})
    answer.raise_for_status()
    # runs and jobs only: the watermarks index is not refreshed by the store, so its count lags
    return {
        row["index"]: int(row["docs.count"]) for row in answer.json() if "-watermarks" not in row["index"]
    }


def retention(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["retention", *args])
    return result.exit_code, result.stdout, result.stderr


def fill(store: Store) -> tuple[list[WorkflowRun], list[Job]]:
    runs, jobs = history()
    store.upsert(runs, [*jobs, undated_job()])
    store.set_watermark(Watermark("m", START, START))
    store.count_jobs()  # a search store refreshes before reading: index statistics are current from here
    return runs, [*jobs, undated_job()]


def younger(runs: list[WorkflowRun], jobs: list[Job], cutoff: datetime) -> tuple[set[str], set[str]]:
    kept_jobs = {j.key for j in jobs if (t := job_window_time(j)) is None or t >= cutoff}
    return {r.key for r in runs if r.created_at >= cutoff}, kept_jobs


def test_detection_reports_no_ilm_or_ism_on_our_engines(engine: tuple[str, str], search: SearchStore) -> None:
    name, url = engine
    assert search.retention.mode == "deletion-job"
    assert search.retention.engine_capable is False and search.lifecycle_available is False
    assert search.retention.reason.startswith("no ILM" if name == "elasticsearch" else "no ISM")
    # installing a policy is a no-op where the engine cannot run one: nothing is attached anywhere
    assert search.install_lifecycle(30) == search.retention
    search.upsert([], [undated_job(), undated_job(job_id=100, created_at=START)])
    templates = httpx.get(f"{url}/_index_template/{search.layout.prefix}-*").json()["index_templates"]
    by_name = {t["name"]: t["index_template"] for t in templates}
    assert by_name[f"{search.layout.prefix}-jobs-dated"]["priority"] == 201
    for index in (
        f"{search.layout.prefix}-jobs-undated",
        f"{search.layout.prefix}-jobs-{month_suffix(START)}",
    ):
        settings = httpx.get(f"{url}/{index}/_settings", params={"flat_settings": "true"}).json()
        assert not any("lifecycle" in key or "index_state" in key for key in settings[index]["settings"])


def test_startup_log_names_the_mode_without_credentials(
    engine: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    name, url = engine
    with_credentials = url.replace("http://", "http://cipulse:hunter2@")  # security is off: accepted
    with caplog.at_level(logging.INFO, logger="cipulse.store.search"):
        SearchStore(with_credentials, index_prefix=f"lc{next(_prefixes)}-log").close()
    (line,) = [r.getMessage() for r in caplog.records if r.name == "cipulse.store.search"]
    assert f"{name} " in line and "retention by cipulse's deletion job" in line
    assert "http://***@127.0.0.1:" in line and "hunter2" not in line


def test_dated_template_follows_new_fields(engine: tuple[str, str], search: SearchStore) -> None:
    """The dated templates outrank the base ones, so they must carry the same, current mappings."""
    url = engine[1]
    templates = httpx.get(f"{url}/_index_template/{search.layout.prefix}-*").json()["index_templates"]
    by_name = {t["name"]: t["index_template"]["template"]["mappings"] for t in templates}
    prefix = search.layout.prefix
    assert by_name[f"{prefix}-jobs-dated"] == by_name[f"{prefix}-jobs"]
    assert by_name[f"{prefix}-runs-dated"] == by_name[f"{prefix}-runs"]


def test_retention_command_removes_exactly_the_old_history(
    engine: tuple[str, str], search: SearchStore
) -> None:
    url, prefix = engine[1], search.layout.prefix
    runs, jobs = fill(search)
    before = indices(url, prefix)
    month = month_suffix
    assert {f"{prefix}-jobs-{m}" for m in ("2025.11", "2025.12", "2026.01", "2026.02")} <= set(before)

    code, dry, _ = retention(
        "--store", url, "--index-prefix", prefix, "--before", CUTOFF.isoformat(), "--dry-run"
    )
    assert code == 0 and indices(url, prefix) == before  # a dry run deletes nothing
    assert "retention by cipulse's deletion job (no I" in dry

    code, out, err = retention("--store", url, "--index-prefix", prefix, "--before", CUTOFF.isoformat())
    assert code == 0, err
    after = indices(url, prefix)
    old_months = {name for name in before if month(START) <= name.rsplit("-", 1)[-1] < "2026.01"}
    assert old_months and not old_months & set(after)  # months wholly older than the cutoff: dropped
    for name in old_months:
        assert f"dropped index {name} ({before[name]} documents, all older)" in out
    for name, count in before.items():  # later months and the undated index: untouched
        if name.rsplit("-", 1)[-1] > "2026.01" or name.endswith("-undated"):
            assert after[name] == count
    kept_runs, kept_jobs = younger(runs, jobs, CUTOFF)
    assert {r.key for r in search.iter_runs()} == kept_runs
    assert {j.key for j in search.iter_jobs()} == kept_jobs
    assert search.get_watermark("m") is not None
    removed = len(runs) + len(jobs) - len(kept_runs) - len(kept_jobs)
    assert f"removed {removed} documents ({len(old_months)} whole monthly indices)" in out
    # the dry run announced the same removals
    assert re.findall(r"\d+ documents", dry) == re.findall(r"\d+ documents", out)

    code, out, _ = retention("--store", url, "--index-prefix", prefix, "--before", CUTOFF.isoformat())
    assert code == 0 and "removed 0 documents (0 whole monthly indices)" in out  # idempotent
    assert indices(url, prefix) == after


def test_keep_days_is_relative_to_now(engine: tuple[str, str], search: SearchStore) -> None:
    url, prefix = engine[1], search.layout.prefix
    now = datetime.now(UTC)
    runs: list[WorkflowRun] = []
    jobs: list[Job] = []
    for batch in generate(seed=9, jobs=600, start=now - timedelta(days=95), days=90, batch_jobs=600):
        runs.extend(batch.runs)
        jobs.extend(batch.jobs)
    search.upsert(runs, jobs)
    code, out, err = retention("--store", url, "--index-prefix", prefix, "--keep-days", "40")
    assert code == 0, err
    match = re.search(r"cutoff (\S+) ", out)
    assert match is not None
    cutoff = datetime.fromisoformat(match.group(1))
    assert timedelta(days=40) <= now + timedelta(minutes=5) - cutoff
    kept_runs, kept_jobs = younger(runs, jobs, cutoff)
    assert 0 < len(kept_runs) < len(runs)
    assert {r.key for r in search.iter_runs()} == kept_runs
    assert {j.key for j in search.iter_jobs()} == kept_jobs


def test_sqlite_and_search_agree(engine: tuple[str, str], search: SearchStore, tmp_path: Path) -> None:
    """The same command on the same history leaves the same records in SQLite and the search store."""
    database = tmp_path / "same.db"
    sqlite = SqliteStore(str(database))
    fill(sqlite)
    sqlite.close()
    fill(search)
    for store_url, extra in (
        (f"sqlite:///{database}", ()),
        (engine[1], ("--index-prefix", search.layout.prefix)),
    ):
        code, _, err = retention("--store", store_url, *extra, "--before", CUTOFF.isoformat())
        assert code == 0, err
    reopened = SqliteStore(str(database))
    assert sorted(r.key for r in reopened.iter_runs()) == sorted(r.key for r in search.iter_runs())
    assert sorted(j.key for j in reopened.iter_jobs()) == sorted(j.key for j in search.iter_jobs())
    reopened.close()


def test_read_only_store_installs_nothing_and_refuses_writes(engine: tuple[str, str]) -> None:
    """A dry run needs no write rights: opened read-only, the store creates no template or index, every
    write is refused before a request is sent, and reads and the dry-run count still work."""
    url = engine[1]
    prefix = f"lc{next(_prefixes)}-read-only"
    templates = f"{url}/_index_template/{prefix}-*"
    with SearchStore(url, index_prefix=prefix, read_only=True) as reader:
        assert httpx.get(templates).json().get("index_templates", []) == []
        with pytest.raises(PermissionError, match="read-only"):
            reader.upsert([], [undated_job(created_at=START)])
        with pytest.raises(PermissionError, match="read-only"):
            reader.set_watermark(Watermark("m", START, START))
        with pytest.raises(PermissionError, match="read-only"):
            reader.remove_older_than(CUTOFF)
        assert reader.count_jobs() == 0 and indices(url, prefix) == {}
    code, out, err = retention(
        "--store", url, "--index-prefix", prefix, "--before", CUTOFF.isoformat(), "--dry-run"
    )
    assert code == 0 and "dry run: nothing is deleted" in out, err
    assert httpx.get(templates).json().get("index_templates", []) == []  # the dry run installed nothing
    with SearchStore(url, index_prefix=prefix) as writer:  # a writable store installs them
        runs, jobs = fill(writer)
    assert len(httpx.get(templates).json()["index_templates"]) > 0
    with SearchStore(url, index_prefix=prefix, read_only=True) as reader:
        assert reader.count_jobs() == len(jobs) and reader.count_runs() == len(runs)
        removals = reader.remove_older_than(CUTOFF, dry_run=True)
        kept_runs, kept_jobs = younger(runs, jobs, CUTOFF)
        assert sum(r.documents for r in removals) == len(runs) + len(jobs) - len(kept_runs) - len(kept_jobs)
