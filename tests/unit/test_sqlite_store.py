"""SqliteStore: idempotent upserts, round trips, watermarks, facts, retention, migrations, processes."""

from __future__ import annotations

import dataclasses
import multiprocessing
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cipulse.metrics.derive import job_window_time
from cipulse.metrics.facts import facts_from_jobs
from cipulse.records import Job, WorkflowRun
from cipulse.store import Store, open_store
from cipulse.store.base import Watermark
from cipulse.store.migrations import MIGRATIONS, Migration, migrate
from cipulse.store.sqlite import SqliteStore
from cipulse.store.synthetic import generate
from tests.unit.metrics_helpers import at, job, run

START = datetime(2026, 1, 1, tzinfo=UTC)


def history(jobs: int = 3000, seed: int = 7) -> tuple[list[WorkflowRun], list[Job]]:
    runs: list[WorkflowRun] = []
    all_jobs: list[Job] = []
    for batch in generate(seed=seed, jobs=jobs, start=START, days=40, batch_jobs=500):
        runs += batch.runs
        all_jobs += batch.jobs
    return runs, all_jobs


@pytest.fixture(params=["columnar", "sql"])
def store(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[SqliteStore]:
    opened = SqliteStore(tmp_path / "cipulse.db", columnar=request.param == "columnar")
    yield opened
    opened.close()


def test_is_a_store(store: SqliteStore) -> None:
    assert isinstance(store, Store)


def test_round_trip_is_exact(store: SqliteStore) -> None:
    runs, jobs = history(800)
    store.upsert(runs, jobs)
    assert sorted(store.iter_jobs(), key=lambda j: j.key) == sorted(jobs, key=lambda j: j.key)
    assert sorted(store.iter_runs(), key=lambda r: r.key) == sorted(runs, key=lambda r: r.key)
    assert any(j.steps for j in jobs)


def test_upsert_is_idempotent_and_overwrites(store: SqliteStore) -> None:
    runs, jobs = history(1000)
    store.upsert(runs, jobs)
    store.upsert(runs, jobs)
    store.upsert(runs[:10], jobs[:10])
    assert store.count_jobs() == len(jobs) and store.count_runs() == len(runs)
    queued = job(job_id=5, status="queued", conclusion=None, started=None, completed=None)
    store.upsert([], [queued])
    done = job(job_id=5, conclusion="failure")
    store.upsert([], [done])
    (stored,) = [j for j in store.iter_jobs("octo/app")]
    assert stored == done


def test_counts_per_repository(store: SqliteStore) -> None:
    runs, jobs = history(1500)
    store.upsert(runs, jobs)
    for repository in ("octo/alpha", "octo/beta", "octo/gamma"):
        assert store.count_jobs(repository) == sum(1 for j in jobs if j.repository == repository)
        assert store.count_runs(repository) == sum(1 for r in runs if r.repository == repository)
    assert store.count_jobs("nobody/none") == 0


def test_watermarks(store: SqliteStore) -> None:
    assert store.get_watermark("m1") is None
    first = Watermark("m1", at(10), at(20))
    store.set_watermark(first)
    store.set_watermark(Watermark("m2", None, at(30)))
    assert store.get_watermark("m1") == first
    second = Watermark("m1", at(50), at(60))
    store.set_watermark(second)
    assert store.get_watermark("m1") == second
    assert store.get_watermark("m2") == Watermark("m2", None, at(30))


@pytest.mark.parametrize("repository", [None, "octo/beta"])
def test_window_facts_equal_reference(store: SqliteStore, repository: str | None) -> None:
    runs, jobs = history(4000)
    store.upsert(runs, jobs)
    start, end = START + timedelta(days=5), START + timedelta(days=35)
    assert store.window_facts(repository, start, end) == facts_from_jobs(jobs, repository, start, end)


def test_window_facts_follow_overwrites_and_deletes(store: SqliteStore) -> None:
    """The columnar projection refreshes incrementally: new, overwritten and deleted jobs all show."""
    runs, jobs = history(3000)
    start, end = START + timedelta(days=5), START + timedelta(days=35)
    store.upsert(runs, jobs[:2000])
    assert store.window_facts(None, start, end) == facts_from_jobs(jobs[:2000], None, start, end)
    changed = [dataclasses.replace(j, conclusion="failure", status="completed") for j in jobs[:300]]
    current = changed + jobs[300:]
    store.upsert([], changed + jobs[2000:])
    assert store.window_facts(None, start, end) == facts_from_jobs(current, None, start, end)
    cutoff = START + timedelta(days=15)
    store.delete_older_than(cutoff)
    kept = [j for j in current if (job_window_time(j) or cutoff) >= cutoff]
    assert store.window_facts(None, start, end) == facts_from_jobs(kept, None, start, end)
    # another process-like reader that opens the file fresh sees the same
    other = SqliteStore(store.path)
    assert other.window_facts("octo/alpha", start, end) == facts_from_jobs(kept, "octo/alpha", start, end)
    other.close()


def _overwrite_and_delete_in_other_process(path: str, jobs: list[Job], cutoff: datetime) -> None:
    other = SqliteStore(path)
    other.upsert([], [dataclasses.replace(j, conclusion="cancelled", status="completed") for j in jobs])
    other.delete_older_than(cutoff)
    other.close()


def _facts_in_other_process(path: str, start: datetime, end: datetime, queue: Any) -> None:
    other = SqliteStore(path)
    queue.put(other.window_facts(None, start, end))
    other.close()


def test_readers_in_other_processes_see_every_change(store: SqliteStore) -> None:
    """WAL: a reader that already answered sees another process's overwrites and deletes at once, and a
    fresh process reads the same facts."""
    runs, jobs = history(1500)
    start, end = START, START + timedelta(days=40)
    store.upsert(runs, jobs)
    assert store.window_facts(None, start, end) == facts_from_jobs(jobs, None, start, end)
    context = multiprocessing.get_context("spawn")
    cutoff = START + timedelta(days=3)
    writer = context.Process(
        target=_overwrite_and_delete_in_other_process, args=(store.path, jobs[:200], cutoff)
    )
    writer.start()
    writer.join()
    assert writer.exitcode == 0
    changed = [dataclasses.replace(j, conclusion="cancelled", status="completed") for j in jobs[:200]]
    current = [j for j in changed + jobs[200:] if (job_window_time(j) or cutoff) >= cutoff]
    expected = facts_from_jobs(current, None, start, end)
    assert store.window_facts(None, start, end) == expected
    results = context.Queue()
    reader = context.Process(target=_facts_in_other_process, args=(store.path, start, end, results))
    reader.start()
    assert results.get(timeout=120) == expected
    reader.join()
    assert reader.exitcode == 0


def test_replacing_a_job_replaces_its_steps(store: SqliteStore) -> None:
    _, jobs = history(50)
    with_steps = next(j for j in jobs if len(j.steps) == 2)
    store.upsert([], [with_steps])
    fewer = dataclasses.replace(with_steps, steps=with_steps.steps[:1])
    store.upsert([], [fewer])
    assert list(store.iter_jobs()) == [fewer]


def test_window_facts_edge_cases(store: SqliteStore) -> None:
    jobs = [
        job(queued=0, started=10, completed=70),
        job(queued=3600, started=3601, completed=3700),  # end is exclusive
        job(queued=None, started=None, completed=None, status="queued", conclusion=None),
        job(queued=5, started=100, completed=50, conclusion="failure"),  # skew
    ]
    store.upsert([], jobs)
    facts = store.window_facts(None, at(0), at(3600))
    assert facts == facts_from_jobs(jobs, None, at(0), at(3600))
    assert facts.overall.total == 2 and facts.overall.clock_skew_count == 1
    empty = store.window_facts("octo/app", at(10_000), at(20_000))
    assert empty.is_empty and empty.overall.duration_p50 is None


def test_training_rows_in_time_order(store: SqliteStore) -> None:
    runs, jobs = history(1200)
    store.upsert(runs, jobs)
    rows = store.training_rows()
    assert len(rows) == len(runs)
    keys = [(r.created_at, r.repository, r.run_id, r.run_attempt) for r in rows]
    assert keys == sorted(keys)
    beta = store.training_rows("octo/beta")
    assert {r.repository for r in beta} == {"octo/beta"}
    attempts = [r for r in rows if r.run_attempt > 1]
    assert attempts, "re-run attempts must be separate rows"
    by_key = {r.key: r for r in runs}
    for row in rows[:50]:
        original = by_key[f"{row.repository}:run:{row.run_id}:{row.run_attempt}"]
        assert (row.head_sha, row.branch, row.event, row.actor, row.conclusion) == (
            original.head_sha,
            original.head_branch,
            original.event,
            original.actor,
            original.conclusion,
        )


def test_retention(store: SqliteStore) -> None:
    runs, jobs = history(2000)
    store.upsert(runs, jobs)
    store.set_watermark(Watermark("m", START, START))
    cutoff = START + timedelta(days=20)
    expected_runs = sum(1 for r in runs if r.created_at < cutoff)
    expected_jobs = sum(1 for j in jobs if (job_window_time(j) or cutoff) < cutoff)
    assert store.delete_older_than(cutoff) == expected_runs + expected_jobs
    assert store.count_runs() == len(runs) - expected_runs
    assert store.count_jobs() == len(jobs) - expected_jobs
    assert all(r.created_at >= cutoff for r in store.iter_runs())
    assert store.get_watermark("m") is not None
    assert store.delete_older_than(cutoff) == 0


def test_migrations_recorded_and_not_reapplied(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    SqliteStore(path).close()
    SqliteStore(path).close()
    conn = sqlite3.connect(path)
    assert [row[0] for row in conn.execute("SELECT version FROM schema_migrations")] == [
        m.version for m in MIGRATIONS
    ]
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.isolation_level = None
    extra = Migration(MIGRATIONS[-1].version + 1, "add a column", "ALTER TABLE runs ADD COLUMN note TEXT")
    assert migrate(conn, (*MIGRATIONS, extra)) == [extra.version]
    assert migrate(conn, (*MIGRATIONS, extra)) == []
    conn.close()
    with pytest.raises(RuntimeError, match="newer than this cipulse"):
        SqliteStore(path)


def test_failed_migration_leaves_nothing(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "f.db", isolation_level=None)
    broken = Migration(1, "broken", "CREATE TABLE a (x INTEGER);\nCREATE TABLE a (y INTEGER);")
    with pytest.raises(sqlite3.OperationalError):
        migrate(conn, (broken,))
    assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'a'").fetchall() == []


def _write_in_other_process(path: str, offset: int) -> None:
    other = SqliteStore(path)
    for index in range(20):
        other.upsert([], [job(job_id=offset + index, run_id=offset + index)])
    other.close()


def test_separate_processes_write_and_read(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.db")
    reader = SqliteStore(path)
    context = multiprocessing.get_context("spawn")
    writers = [context.Process(target=_write_in_other_process, args=(path, 1000 * (i + 1))) for i in range(2)]
    for process in writers:
        process.start()
    seen = 0
    while any(p.is_alive() for p in writers):
        now = reader.count_jobs()
        assert now >= seen  # readers see committed prefixes only, never a shrinking table
        seen = now
    for process in writers:
        process.join()
        assert process.exitcode == 0
    assert reader.count_jobs() == 40
    reader.close()


def test_open_store_urls(tmp_path: Path) -> None:
    opened = open_store(f"sqlite:///{tmp_path}/x.db")
    assert isinstance(opened, SqliteStore) and opened.path == f"{tmp_path}/x.db"
    opened.close()
    memory = open_store("sqlite:///:memory:")
    memory.upsert([run()], [])
    assert memory.count_runs() == 1
    with pytest.raises(ValueError, match="unsupported store URL"):
        open_store("mysql://x")
    with pytest.raises(ValueError):
        open_store("sqlite://")


@pytest.mark.parametrize("cached_jobs", [0, 40, 1_000_000])
def test_cached_days_follow_every_kind_of_change(tmp_path: Path, cached_jobs: int) -> None:
    """Whole days are kept between calls (none, a few with eviction, all): sliding windows that cut days
    in the middle, then inserts, overwrites, manual updates and retention in cached days, all stay exact."""
    store = SqliteStore(tmp_path / "days.db", cached_jobs=cached_jobs)
    runs, jobs = history(2500)
    store.upsert(runs, jobs[:2000])
    current = jobs[:2000]

    def check() -> None:
        for shift in (0, 5.5, 6.25):  # aligned to days, and cutting the first and last day
            start = START + timedelta(days=3 + shift)
            end = start + timedelta(days=20)
            assert store.window_facts(None, start, end) == facts_from_jobs(current, None, start, end)
        start, end = START + timedelta(days=10, hours=3), START + timedelta(days=31, hours=1)
        assert store.window_facts("octo/beta", start, end) == facts_from_jobs(
            current, "octo/beta", start, end
        )

    check()
    store.upsert([], jobs[2000:])
    current = current + jobs[2000:]
    check()
    failed = [dataclasses.replace(j, conclusion="failure", status="completed") for j in current[::7]]
    current = [j for index, j in enumerate(current) if index % 7] + failed
    store.upsert([], failed)
    check()
    conn = sqlite3.connect(store.path, isolation_level=None)
    conn.execute("UPDATE jobs SET created_at = created_at + 86400000000 WHERE conclusion = 'cancelled'")
    conn.close()
    current = [
        dataclasses.replace(j, created_at=j.created_at + timedelta(days=1))
        if j.conclusion == "cancelled" and j.created_at
        else j
        for j in current
    ]
    check()
    cutoff = START + timedelta(days=12, hours=5)
    store.delete_older_than(cutoff)
    current = [j for j in current if (job_window_time(j) or cutoff) >= cutoff]
    check()
    store.close()
