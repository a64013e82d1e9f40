"""Scans and window facts of the search store at scale, on real Elasticsearch, OpenSearch 2 and 3.

- `iter_jobs` reads one snapshot (point in time) even while another writer adds and changes jobs;
- a scan stopped early, or broken by its consumer, closes its point in time (the engine's own count of
  open search contexts goes back down);
- without a point in time (an engine that has no PIT endpoint answers "no handler") the scan still
  returns everything once;
- a window with more than 10,000 distinct job names and thousands of branches gives the same facts as
  SqliteStore (terms aggregations stop at 10,000 groups and 65,535 buckets; composite pages do not).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from cipulse.records import Job, WorkflowRun
from cipulse.store.search import JOB_SORT, SearchStore
from cipulse.store.search_client import EngineInfo
from cipulse.store.search_scan import scan
from cipulse.store.sqlite import SqliteStore
from cipulse.store.synthetic import generate

pytestmark = pytest.mark.integration

START = datetime(2026, 3, 1, tzinfo=UTC)
_prefixes = itertools.count()


@pytest.fixture(params=["elasticsearch", "opensearch", "opensearch3"])
def engine_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(f"{request.param}_url"))


@pytest.fixture
def prefix(request: pytest.FixtureRequest) -> str:
    return f"scan{next(_prefixes)}-{request.node.name.split('[')[0].replace('_', '-')[5:40]}"


@pytest.fixture
def store(engine_url: str, prefix: str) -> Iterator[SearchStore]:
    with SearchStore(engine_url, index_prefix=prefix) as opened:
        yield opened


def history(jobs: int, seed: int = 3, with_steps: bool = True) -> tuple[list[WorkflowRun], list[Job]]:
    runs: list[WorkflowRun] = []
    found: list[Job] = []
    for batch in generate(seed=seed, jobs=jobs, start=START, days=20, batch_jobs=1000, with_steps=with_steps):
        runs += batch.runs
        found += batch.jobs
    return runs, found


def open_contexts(url: str) -> int:
    """Search contexts the engine holds open (a PIT holds one per shard until closed or expired)."""
    answer = httpx.get(
        f"{url}/_nodes/stats/indices/search", params={"filter_path": "nodes.*.indices.search.open_contexts"}
    ).json()
    return sum(node["indices"]["search"]["open_contexts"] for node in answer["nodes"].values())


def test_iteration_reads_one_snapshot_while_another_writer_works(engine_url: str, prefix: str) -> None:
    runs, jobs = history(5000)  # several scan pages
    with (
        SearchStore(engine_url, index_prefix=prefix) as writer,
        SearchStore(engine_url, index_prefix=prefix) as reader,
    ):
        writer.upsert(runs, jobs)
        assert writer.count_jobs() == len(jobs)  # refreshed: everything is visible to searches

        walk = reader.iter_jobs()
        seen = [next(walk)]  # the first page is read and the snapshot taken
        # meanwhile: new jobs that sort after the first page, and changed versions of stored ones
        added = [dataclasses.replace(job, job_id=job.job_id + 5_000_000) for job in jobs[:1500]]
        changed = [dataclasses.replace(job, conclusion="cancelled", steps=()) for job in jobs[-1500:]]
        writer.upsert([], added + changed)
        assert writer.count_jobs() == len(jobs) + len(added)  # refreshed again, visible to new searches
        seen += list(walk)

        assert len(seen) == len(jobs)
        assert {job.key: job for job in seen} == {job.key: job for job in jobs}
        # a new walk is a new snapshot: it sees the writes
        after = {job.key: job for job in reader.iter_jobs()}
        assert len(after) == len(jobs) + len(added)
        assert all(after[job.key] == job for job in changed)


def test_runs_are_read_from_one_snapshot_too(engine_url: str, prefix: str) -> None:
    runs, jobs = history(9000)
    assert len(runs) > 2000  # more than one page
    with (
        SearchStore(engine_url, index_prefix=prefix) as writer,
        SearchStore(engine_url, index_prefix=prefix) as reader,
    ):
        writer.upsert(runs, jobs)
        assert writer.count_runs() == len(runs)
        walk = reader.iter_runs()
        seen = [next(walk)]
        later = [dataclasses.replace(run, run_id=run.run_id + 9_000_000) for run in runs[:500]]
        writer.upsert(later, [])
        assert writer.count_runs() == len(runs) + len(later)
        seen += list(walk)
        assert sorted(run.key for run in seen) == sorted(run.key for run in runs)


def test_a_scan_stopped_early_closes_its_point_in_time(engine_url: str, store: SearchStore) -> None:
    runs, jobs = history(4500, with_steps=False)
    store.upsert(runs, jobs)
    assert store.count_jobs() == len(jobs)
    idle = open_contexts(engine_url)

    walk = store.iter_jobs()
    next(walk)
    assert open_contexts(engine_url) > idle  # the point in time is held while the walk is open
    walk.close()
    assert open_contexts(engine_url) == idle

    def first_of_repository(repository: str) -> Job:
        for job in store.iter_jobs():  # abandoned for-loop: the generator is collected, then closed
            if job.repository == repository:
                return job
        raise AssertionError(repository)

    assert first_of_repository("octo/beta").repository == "octo/beta"
    assert open_contexts(engine_url) == idle

    held: list[int] = []
    with pytest.raises(ZeroDivisionError):
        for count, _ in enumerate(store.iter_runs()):
            if count == 50:
                held.append(open_contexts(engine_url))
            _ = 1 / (100 - count)  # the consumer fails in the middle of the walk
    assert held[0] > idle
    assert open_contexts(engine_url) == idle

    assert len(list(store.iter_jobs())) == len(jobs)  # a full walk closes it too
    assert open_contexts(engine_url) == idle


def test_without_point_in_time_the_scan_still_returns_everything_once(store: SearchStore) -> None:
    """The other engine's PIT endpoint does not exist here: the engine answers "no handler found", as an
    engine without PIT support does, and the scan falls back to search_after on the unique sort."""
    runs, jobs = history(4500, with_steps=False)
    store.upsert(runs, jobs)
    assert store.count_jobs() == len(jobs)
    other = "opensearch" if store.engine == "elasticsearch" else "elasticsearch"
    foreign = EngineInfo(engine=other, version="2.19.0", modules=frozenset())
    contexts = open_contexts(store._client.url)
    fields = ["repository", "job_id"]
    hits = list(
        scan(store._client, foreign, store.layout.jobs_pattern, None, JOB_SORT, source=fields, page=700)
    )
    assert open_contexts(store._client.url) == contexts
    keys = [(hit["_source"]["repository"], hit["_source"]["job_id"]) for hit in hits]
    assert keys == sorted((job.repository, job.job_id) for job in jobs)  # all, once, in sort order


def many_groups(count: int) -> tuple[list[WorkflowRun], list[Job]]:
    """`count` jobs with about count * 7 / 8 distinct job names and count / 4 branches."""
    runs, jobs = history(count, seed=17, with_steps=False)
    renamed = [
        dataclasses.replace(
            job,
            name=f"{job.name} shard {index % (count * 7 // 8)}",
            head_branch=None if job.head_branch is None else f"{job.head_branch}-{index % (count // 4)}",
        )
        for index, job in enumerate(jobs)
    ]
    return runs, renamed


def test_window_with_more_than_ten_thousand_jobs_equals_sqlite(store: SearchStore, tmp_path: Path) -> None:
    runs, jobs = many_groups(13_000)
    end = START + timedelta(days=20)
    assert len({(job.workflow_name, job.name) for job in jobs}) > 10_000
    with SqliteStore(tmp_path / "reference.db") as sqlite:
        sqlite.upsert(runs, jobs)
        expected = sqlite.window_facts(None, START, end)
        expected_part = sqlite.window_facts("octo/beta", START + timedelta(days=2), end - timedelta(days=3))
    store.upsert(runs, jobs)

    facts = store.window_facts(None, START, end)
    assert len(facts.jobs) > 10_000 and len(facts.branches) > 3_000
    assert facts.overall.total > 12_000
    assert facts == expected
    assert (
        store.window_facts("octo/beta", START + timedelta(days=2), end - timedelta(days=3)) == expected_part
    )


def test_a_cluster_with_fewer_max_buckets_still_gives_the_facts(
    engine_url: str, store: SearchStore, tmp_path: Path
) -> None:
    """`search.max_buckets` set far below the default refuses the first composite pages (OpenSearch with a
    503, which must not read as an outage); the pages shrink until they fit, and the facts equal SQLite's."""
    runs, jobs = many_groups(2_400)
    end = START + timedelta(days=20)
    with SqliteStore(tmp_path / "reference.db") as sqlite:
        sqlite.upsert(runs, jobs)
        expected = sqlite.window_facts(None, START, end)
    store.upsert(runs, jobs)
    settings = f"{engine_url}/_cluster/settings"
    httpx.put(settings, json={"persistent": {"search.max_buckets": 1_000}}).raise_for_status()
    try:
        facts = store.window_facts(None, START, end)
    finally:
        httpx.put(settings, json={"persistent": {"search.max_buckets": None}}).raise_for_status()
    assert len(facts.jobs) > 1_000
    assert facts == expected
