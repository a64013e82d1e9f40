"""Which job indices may hold a job id (`JobIdRanges`), on real Elasticsearch and OpenSearch: the moved-job
lookup searches only the indices it names, so an index holding an id in the range must never be left out."""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from cipulse.records import Job
from cipulse.store.search import SearchStore
from cipulse.store.search_client import SearchRequestError
from cipulse.store.search_id_ranges import RANGES_TTL_S, JobIdRanges

pytestmark = pytest.mark.integration

_prefixes = itertools.count()
JANUARY = datetime(2026, 1, 10, tzinfo=UTC)
FEBRUARY = datetime(2026, 2, 10, tzinfo=UTC)


@pytest.fixture(params=["elasticsearch", "opensearch"])
def url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(f"{request.param}_url"))


@pytest.fixture
def store(url: str) -> Iterator[SearchStore]:
    with SearchStore(url, index_prefix=f"ranges-{next(_prefixes)}") as opened:
        yield opened


def job(job_id: int, created_at: datetime | None, **changes: object) -> Job:
    base = Job(
        repository="octo/a",
        run_id=job_id // 10,
        run_attempt=1,
        job_id=job_id,
        name=f"job {job_id}",
        workflow_name="CI",
        head_sha="c" * 40,
        head_branch="main",
        status="completed",
        conclusion="success",
        created_at=created_at,
        started_at=None if created_at is None else created_at + timedelta(minutes=1),
        completed_at=None if created_at is None else created_at + timedelta(minutes=4),
        queue_estimated=True,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_names_exactly_the_indices_whose_id_range_overlaps(store: SearchStore) -> None:
    january, february = (f"{store.layout.prefix}-jobs-2026.{month}" for month in ("01", "02"))
    undated = f"{store.layout.prefix}-jobs-undated"
    store.upsert([], [job(n, JANUARY) for n in range(1, 11)])
    store.upsert([], [job(n, FEBRUARY) for n in range(100, 111)])
    store.upsert([], [job(500, None, status="queued", conclusion=None)])
    store.count_jobs()  # refreshes: the ranges are read from what search sees
    ranges = JobIdRanges(store._client, store.layout.jobs_pattern)
    everywhere = [store.layout.jobs_pattern]
    assert ranges.holding(everywhere, 50, 60) == []  # between two indices' ranges
    assert ranges.holding(everywhere, 111, 499) == []
    assert ranges.holding(everywhere, 5, 105) == [january, february]
    assert ranges.holding(everywhere, 10, 10) == [january]  # the bounds themselves are inside
    assert ranges.holding(everywhere, 100, 100) == [february]
    assert ranges.holding(everywhere, 0, 2**63 - 1) == [january, february, undated]
    assert ranges.holding([january, undated], 5, 600) == [january, undated]  # only among the candidates
    assert ranges.holding([f"{store.layout.prefix}-jobs-2025.*"], 0, 1000) == []


def test_no_job_index_names_none(store: SearchStore) -> None:
    assert JobIdRanges(store._client, store.layout.jobs_pattern).holding(["*"], 0, 10) == []


def test_kept_for_one_refresh_interval_and_dropped_by_forget(store: SearchStore) -> None:
    """Ranges read once stand for `RANGES_TTL_S` (another writer's refreshed copy shows up that much later
    than a search per batch would show it), and `forget` drops them at once."""
    now = [0.0]
    ranges = JobIdRanges(store._client, store.layout.jobs_pattern, clock=lambda: now[0])
    store.upsert([], [job(n, JANUARY) for n in range(1, 11)])
    store.count_jobs()
    assert ranges.holding(["*"], 20, 30) == []
    store.upsert([], [job(25, JANUARY)])
    store.count_jobs()
    now[0] += RANGES_TTL_S / 2
    assert ranges.holding(["*"], 20, 30) == []  # read before job 25 was refreshed
    now[0] += RANGES_TTL_S / 2
    assert ranges.holding(["*"], 20, 30) == [f"{store.layout.prefix}-jobs-2026.01"]
    store.upsert([], [job(40, FEBRUARY)])
    store.count_jobs()
    ranges.forget()
    assert ranges.holding(["*"], 40, 40) == [f"{store.layout.prefix}-jobs-2026.02"]


def test_a_copy_written_by_another_store_is_moved_once_the_ranges_are_read_again(url: str) -> None:
    """Two writers of the same indices (say the operator and a backfill): a job one of them stored in
    January and the other now re-dates to February ends up in February only."""
    prefix = f"ranges-{next(_prefixes)}"
    with SearchStore(url, index_prefix=prefix) as ours, SearchStore(url, index_prefix=prefix) as theirs:
        ours.upsert([], [job(n, FEBRUARY) for n in range(1, 6)])  # our writer has read the ranges
        theirs.upsert([], [job(7, JANUARY)])
        assert theirs.count_jobs() == 6  # refreshed: search sees the January copy
        time.sleep(RANGES_TTL_S)
        ours.upsert([], [job(7, FEBRUARY, queue_estimated=False)])
        assert ours.count_jobs() == 6
        [moved] = [stored for stored in ours.iter_jobs() if stored.job_id == 7]
        assert moved.created_at == FEBRUARY and not moved.queue_estimated


def test_a_failing_search_in_msearch_raises(store: SearchStore) -> None:
    store.upsert([], [job(1, JANUARY)])
    index = f"{store.layout.prefix}-jobs-2026.01"
    wrong = {"size": 0, "query": {"term": {"job_id": "abc"}}}  # not a number: every shard fails
    with pytest.raises(SearchRequestError, match=index):
        store._client.msearch([(index, wrong)])
