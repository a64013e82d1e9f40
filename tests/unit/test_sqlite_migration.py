"""Upgrading a database written by the previous schema (version 1) with data in it: nothing is lost, the
backfilled job facts equal the reference, and upserts, watermarks and retention keep working after it."""

from __future__ import annotations

import dataclasses
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cipulse.metrics.derive import job_window_time
from cipulse.metrics.facts import facts_from_jobs
from cipulse.records import Job, WorkflowRun
from cipulse.store.base import Watermark
from cipulse.store.migrations import MIGRATIONS, migrate
from cipulse.store.sqlite import SqliteStore, configure
from cipulse.store.sqlite_rows import (
    INSERT_JOB,
    INSERT_RUN,
    INSERT_STEP,
    job_row,
    run_row,
    step_rows,
    to_micros,
)
from cipulse.store.synthetic import generate
from tests.unit.metrics_helpers import job

START = datetime(2026, 1, 1, tzinfo=UTC)
WINDOW = (START + timedelta(days=5), START + timedelta(days=25))


def history() -> tuple[list[WorkflowRun], list[Job]]:
    runs: list[WorkflowRun] = []
    jobs: list[Job] = []
    for batch in generate(seed=3, jobs=2500, start=START, days=30, batch_jobs=500):
        runs += batch.runs
        jobs += batch.jobs
    # the hand-built oddities too: no timestamps at all, no created_at, a branchless job
    jobs += [
        job(job_id=1, queued=None, started=None, completed=None, status="queued", conclusion=None),
        job(job_id=2, queued=None, started=100, completed=200),
        job(job_id=3, head_branch=None),
    ]
    return runs, jobs


def write_version_1(path: Path, runs: list[WorkflowRun], jobs: list[Job]) -> list[Job]:
    """A version-1 database as the previous cipulse left it: overwritten and deleted jobs (tombstones)
    included. Returns the jobs it holds."""
    conn = sqlite3.connect(path, isolation_level=None)
    configure(conn, 30_000)
    assert migrate(conn, MIGRATIONS[:1]) == [1]
    changed = [dataclasses.replace(j, conclusion="failure", status="completed") for j in jobs[:100]]
    for batch_runs, batch_jobs in ((runs, jobs), ([], changed)):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(INSERT_RUN, [run_row(r) for r in batch_runs])
        conn.executemany(INSERT_JOB, [job_row(j) for j in batch_jobs])
        conn.executemany(INSERT_STEP, [row for j in batch_jobs for row in step_rows(j)])
        conn.execute("COMMIT")
    cutoff = START + timedelta(days=2)
    conn.execute("DELETE FROM jobs WHERE window_at < ?", (to_micros(cutoff),))
    conn.execute(
        "INSERT INTO watermarks (monitor, newest_created_at, updated_at) VALUES ('m', ?, ?)",
        (to_micros(START), to_micros(START)),
    )
    assert conn.execute("SELECT COUNT(*) FROM job_tombstones").fetchone()[0] > 100
    conn.close()
    return [j for j in changed + jobs[100:] if (job_window_time(j) or cutoff) >= cutoff]


@pytest.mark.parametrize("columnar", [True, False])
def test_upgrade_from_version_1_with_data(tmp_path: Path, columnar: bool) -> None:
    path = tmp_path / "old.db"
    runs, jobs = history()
    held = write_version_1(path, runs, jobs)
    store = SqliteStore(path, columnar=columnar)
    conn = sqlite3.connect(path)
    assert [row[0] for row in conn.execute("SELECT version FROM schema_migrations ORDER BY 1")] == [1, 2]
    assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'job_tombstones'").fetchall() == []
    windowed = sum(1 for j in held if job_window_time(j) is not None)
    assert conn.execute("SELECT COUNT(*) FROM job_facts").fetchone()[0] == windowed < len(held)
    # nothing lost or changed
    assert sorted(store.iter_jobs(), key=lambda j: j.key) == sorted(held, key=lambda j: j.key)
    assert store.count_runs() == len(runs)
    assert store.get_watermark("m") == Watermark("m", START, START)
    for repository in (None, "octo/beta", "octo/app"):
        assert store.window_facts(repository, *WINDOW) == facts_from_jobs(held, repository, *WINDOW)
    # idempotent upserts after the upgrade: same rows, same facts
    store.upsert(runs, held)
    assert store.count_jobs() == len(held)
    assert conn.execute("SELECT COUNT(*) FROM job_facts").fetchone()[0] == windowed
    assert store.window_facts(None, *WINDOW) == facts_from_jobs(held, None, *WINDOW)
    # overwrites and retention keep the job facts in step
    cancelled = [dataclasses.replace(j, conclusion="cancelled", status="completed") for j in held[500:700]]
    current = held[:500] + cancelled + held[700:]
    store.upsert([], cancelled)
    assert store.window_facts(None, *WINDOW) == facts_from_jobs(current, None, *WINDOW)
    cutoff = START + timedelta(days=10)
    store.delete_older_than(cutoff)
    kept = [j for j in current if (job_window_time(j) or cutoff) >= cutoff]
    assert store.window_facts(None, *WINDOW) == facts_from_jobs(kept, None, *WINDOW)
    assert conn.execute(
        "SELECT COUNT(*) FROM job_facts WHERE window_at < ?", (to_micros(cutoff),)
    ).fetchone() == (0,)
    conn.close()
    store.close()
    # reopening applies nothing new
    reopened = sqlite3.connect(path, isolation_level=None)
    assert migrate(reopened) == []
    reopened.close()


def test_a_version_1_reader_is_refused_after_the_upgrade(tmp_path: Path) -> None:
    """An older cipulse must not write jobs without their facts: it stops with a clear error instead."""
    path = tmp_path / "new.db"
    SqliteStore(path).close()
    conn = sqlite3.connect(path, isolation_level=None)
    with pytest.raises(RuntimeError, match="newer than this cipulse"):
        migrate(conn, MIGRATIONS[:1])
    conn.close()


def test_opening_a_current_database_does_not_wait_for_writers(tmp_path: Path) -> None:
    """Readers (CLI commands, the dashboard) open the store while the collector holds the write lock."""
    path = tmp_path / "busy.db"
    writer = SqliteStore(path)
    writer.upsert([], [job(job_id=7)])
    lock = sqlite3.connect(path, isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")
    try:
        reader = SqliteStore(path, busy_timeout_ms=50)
        assert reader.count_jobs() == 1
        reader.close()
    finally:
        lock.execute("ROLLBACK")
        lock.close()
        writer.close()
