"""One behaviour suite for every Store: SQLite, and SearchStore on real Elasticsearch 8 and real OpenSearch 2
and 3.

Every store must give the same answers for the same data: each is compared with the reference
implementation (`metrics.facts.facts_from_jobs` and the generated records themselves), which makes the
three equal to each other. Integers (counts, percentiles, minutes) must match exactly; floats (rates,
minutes, cost) to 1e-9 relative.
The outage tests stop a real engine process in the middle of collection through `SpoolingStore`.
"""

from __future__ import annotations

import dataclasses
import math
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cipulse.metrics.derive import job_window_time
from cipulse.metrics.durations import run_duration
from cipulse.metrics.facts import GroupFacts, WindowFacts, facts_from_jobs
from cipulse.records import Job, WorkflowRun
from cipulse.store.base import Store, StoreUnavailable, Watermark
from cipulse.store.spool import SpoolingStore
from cipulse.store.sqlite import SqliteStore
from cipulse.store.synthetic import generate

pytestmark = pytest.mark.integration

START = datetime(2026, 1, 1, tzinfo=UTC)
STORES = ["sqlite", "elasticsearch", "opensearch", "opensearch3"]


def open_search_store(url: str) -> Store:
    from cipulse.store.search import SearchStore

    store: Store = SearchStore(url, index_prefix=f"t{uuid.uuid4().hex[:12]}")
    return store


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        opened: Store = SqliteStore(tmp_path / "behaviour.db")
    else:
        opened = open_search_store(request.getfixturevalue(f"{request.param}_url"))
    yield opened
    opened.close()


def history(jobs: int = 1500, seed: int = 5) -> tuple[list[WorkflowRun], list[Job]]:
    runs: list[WorkflowRun] = []
    found: list[Job] = []
    for batch in generate(seed=seed, jobs=jobs, start=START, days=40, batch_jobs=300):
        runs += batch.runs
        found += batch.jobs
    return runs, found


def load(store: Store, runs: list[WorkflowRun], jobs: list[Job], batch: int = 400) -> None:
    for offset in range(0, max(len(runs), len(jobs)), batch):
        store.upsert(runs[offset : offset + batch], jobs[offset : offset + batch])


def assert_group_equal(actual: GroupFacts, expected: GroupFacts) -> None:
    for field in dataclasses.fields(GroupFacts):
        got, want = getattr(actual, field.name), getattr(expected, field.name)
        if isinstance(want, float) and got is not None:
            assert math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-9), (expected.sort_key(), field.name)
        else:
            assert got == want, (expected.level, expected.sort_key(), field.name, got, want)


def assert_facts_equal(actual: WindowFacts, expected: WindowFacts) -> None:
    assert (actual.repository, actual.start, actual.end) == (
        expected.repository,
        expected.start,
        expected.end,
    )
    for level in ("all", "repository", "workflow", "job", "branch"):
        got, want = actual.rows(level), expected.rows(level)  # type: ignore[arg-type]
        assert [g.sort_key() for g in got] == [w.sort_key() for w in want], level
        for g, w in zip(got, want, strict=True):
            assert_group_equal(g, w)


def test_upsert_is_idempotent(store: Store) -> None:
    runs, jobs = history()
    load(store, runs, jobs)
    load(store, runs, jobs, batch=700)
    store.upsert(runs[:25], jobs[:25])
    assert store.count_jobs() == len(jobs)
    assert store.count_runs() == len(runs)
    assert sorted(store.iter_jobs(), key=lambda j: j.key) == sorted(jobs, key=lambda j: j.key)
    assert sorted(store.iter_runs(), key=lambda r: r.key) == sorted(runs, key=lambda r: r.key)


def test_newer_version_overwrites(store: Store) -> None:
    runs, jobs = history(200)
    load(store, runs, jobs)
    running = jobs[0]
    finished = dataclasses.replace(running, status="completed", conclusion="failure")
    rerun = dataclasses.replace(runs[0], status="completed", conclusion="failure")
    store.upsert([rerun], [finished])
    stored = {j.key: j for j in store.iter_jobs(running.repository)}
    assert stored[finished.key] == finished
    assert {r.key: r for r in store.iter_runs(rerun.repository)}[rerun.key] == rerun
    assert store.count_jobs() == len(jobs)


def test_counts_per_repository(store: Store) -> None:
    runs, jobs = history()
    load(store, runs, jobs)
    for repository in ("octo/alpha", "octo/beta", "octo/gamma", "nobody/none"):
        assert store.count_jobs(repository) == sum(1 for j in jobs if j.repository == repository)
        assert store.count_runs(repository) == sum(1 for r in runs if r.repository == repository)


def test_watermarks(store: Store) -> None:
    assert store.get_watermark("monitor-a") is None
    first = Watermark("monitor-a", START + timedelta(hours=1), START + timedelta(hours=2))
    store.set_watermark(first)
    store.set_watermark(Watermark("monitor-b", None, START))
    assert store.get_watermark("monitor-a") == first
    second = Watermark("monitor-a", START + timedelta(days=1, microseconds=5), START + timedelta(days=1))
    store.set_watermark(second)
    assert store.get_watermark("monitor-a") == second
    assert store.get_watermark("monitor-b") == Watermark("monitor-b", None, START)


@pytest.mark.parametrize("repository", [None, "octo/beta"])
def test_window_facts_equal_reference(store: Store, repository: str | None) -> None:
    runs, jobs = history()
    load(store, runs, jobs)
    for days in ((5, 35), (0, 40), (38, 39)):
        start, end = START + timedelta(days=days[0]), START + timedelta(days=days[1])
        assert_facts_equal(
            store.window_facts(repository, start, end), facts_from_jobs(jobs, repository, start, end)
        )


def test_window_facts_empty_and_edges(store: Store) -> None:
    runs, jobs = history(300)
    load(store, runs, jobs)
    empty = store.window_facts(None, START - timedelta(days=10), START)
    assert empty.is_empty and empty.jobs == () and empty.overall.duration_p95 is None
    assert store.window_facts("nobody/none", START, START + timedelta(days=40)).is_empty
    edge = job_window_time(jobs[0])
    assert edge is not None
    # the window is half-open: a job exactly at `end` is out, exactly at `start` is in
    before = store.window_facts(None, edge - timedelta(days=1), edge)
    after = store.window_facts(None, edge, edge + timedelta(days=1))
    assert_facts_equal(before, facts_from_jobs(jobs, None, edge - timedelta(days=1), edge))
    assert_facts_equal(after, facts_from_jobs(jobs, None, edge, edge + timedelta(days=1)))


def test_training_rows(store: Store) -> None:
    runs, jobs = history(800)
    load(store, runs, jobs)
    rows = store.training_rows()
    expected = sorted(runs, key=lambda r: (r.created_at, r.repository, r.run_id, r.run_attempt))
    assert [(r.repository, r.run_id, r.run_attempt) for r in rows] == [
        (r.repository, r.run_id, r.run_attempt) for r in expected
    ]
    for row, run in zip(rows, expected, strict=True):
        assert (row.head_sha, row.branch, row.event, row.actor, row.conclusion, row.created_at) == (
            run.head_sha,
            run.head_branch,
            run.event,
            run.actor,
            run.conclusion,
            run.created_at,
        )
        assert row.duration_seconds == run_duration(run)
    assert {r.repository for r in store.training_rows("octo/gamma")} == {"octo/gamma"}


def test_retention(store: Store) -> None:
    runs, jobs = history()
    load(store, runs, jobs)
    store.set_watermark(Watermark("kept", START, START))
    cutoff = START + timedelta(days=20)
    old_runs = sum(1 for r in runs if r.created_at < cutoff)
    old_jobs = sum(1 for j in jobs if (job_window_time(j) or cutoff) < cutoff)
    assert store.delete_older_than(cutoff) == old_runs + old_jobs
    assert store.count_runs() == len(runs) - old_runs
    assert store.count_jobs() == len(jobs) - old_jobs
    kept = [j for j in jobs if (job_window_time(j) or cutoff) >= cutoff]
    window = (START, START + timedelta(days=40))
    assert_facts_equal(store.window_facts(None, *window), facts_from_jobs(kept, None, *window))
    assert store.get_watermark("kept") is not None
    assert store.delete_older_than(cutoff) == 0


# -- outage: stop a real engine in the middle of collection ------------------------------------------------


# OpenSearch 3 gets its crash/restart proof from test_search_store_outage (SIGKILL mid-upsert): one is enough.
@pytest.mark.parametrize("engine", ["elasticsearch", "opensearch"])
def test_engine_outage_loses_and_duplicates_nothing(engine: Any, tmp_path: Path) -> None:
    from tests.services.search import SearchServer

    server = SearchServer(engine)
    server.start()
    try:
        inner = open_search_store(server.url)
        spooled = SpoolingStore(inner, tmp_path / "spool.db", max_records=10_000)
        runs, jobs = history(1200, seed=9)
        batches = [(runs[i : i + 150], jobs[i : i + 150]) for i in range(0, max(len(runs), len(jobs)), 150)]
        before = Watermark("m", START, START)
        spooled.set_watermark(before)
        for part in batches[:3]:
            spooled.upsert(*part)
        server.stop()
        with pytest.raises(StoreUnavailable):
            inner.upsert(*batches[3])
        for index, part in enumerate(batches[3:6]):
            spooled.upsert(*part)
            spooled.set_watermark(Watermark("m", START + timedelta(days=index + 1), START))
        assert not spooled.status().store_available and spooled.status().pending_records > 0
        assert spooled.get_watermark("m") == before  # the watermark did not advance
        spooled.upsert(*batches[4])  # collected again during the outage: no duplicate in the spool
        server.start()
        for part in batches[6:]:
            spooled.upsert(*part)
        assert spooled.status().pending_records == 0
        assert inner.count_jobs() == len(jobs) and inner.count_runs() == len(runs)
        assert sorted(inner.iter_jobs(), key=lambda j: j.key) == sorted(jobs, key=lambda j: j.key)
        assert inner.get_watermark("m") == Watermark("m", START + timedelta(days=3), START)
        window = (START, START + timedelta(days=40))
        assert_facts_equal(inner.window_facts(None, *window), facts_from_jobs(jobs, None, *window))
        spooled.close()
    finally:
        server.stop()
