"""The search store's write path on real Elasticsearch and OpenSearch: moves inside mixed batches."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cipulse.records import Job
from cipulse.store.search import SearchStore

pytestmark = pytest.mark.integration

_prefixes = itertools.count()
JANUARY_END = datetime(2026, 1, 31, 23, 0, tzinfo=UTC)


@pytest.fixture(params=["elasticsearch", "opensearch"])
def store(request: pytest.FixtureRequest) -> Iterator[SearchStore]:
    url = str(request.getfixturevalue(f"{request.param}_url"))
    with SearchStore(url, index_prefix=f"ingest-{next(_prefixes)}-{request.param}") as opened:
        yield opened


def job(job_id: int, repository: str, created_at: datetime | None, **changes: Any) -> Job:
    base = Job(
        repository=repository,
        run_id=job_id // 10,
        run_attempt=1,
        job_id=job_id,
        name=f"job {job_id}",
        workflow_name="CI",
        head_sha="b" * 40,
        head_branch="main",
        status="completed",
        conclusion="success",
        created_at=created_at,
        started_at=None if created_at is None else created_at + timedelta(minutes=2),
        completed_at=None if created_at is None else created_at + timedelta(minutes=7),
        queue_estimated=True,
    )
    return dataclasses.replace(base, **changes)


@pytest.mark.parametrize("read_between", [False, True], ids=["unrefreshed", "refreshed"])
def test_moves_in_a_batch_spanning_months_and_repositories(store: SearchStore, read_between: bool) -> None:
    """Jobs of two repositories sharing job ids, over January, February and the undated index; then one
    batch moves some of them (both directions, out of the undated index) next to unmoved ones."""
    first = [
        job(1, "octo/a", JANUARY_END),
        job(1, "octo/b", JANUARY_END + timedelta(hours=2)),  # same id, other repository, February
        job(2, "octo/a", JANUARY_END + timedelta(hours=3)),
        job(3, "octo/a", None, status="queued", conclusion=None),
        job(4, "octo/b", JANUARY_END - timedelta(days=3)),
    ]
    store.upsert([], first)
    if read_between:
        assert store.count_jobs() == len(first)
    second = [
        job(1, "octo/a", JANUARY_END + timedelta(hours=1), queue_estimated=False),  # January -> February
        job(1, "octo/b", JANUARY_END + timedelta(hours=2), queue_estimated=False),  # stays in February
        job(2, "octo/a", JANUARY_END - timedelta(hours=1), queue_estimated=False),  # February -> January
        job(3, "octo/a", JANUARY_END + timedelta(days=1)),  # undated -> February
        job(4, "octo/b", JANUARY_END - timedelta(days=3), queue_estimated=False),  # stays in January
    ]
    store.upsert([], second)
    store.upsert([], second)  # a replay finds only its own copies
    assert store.count_jobs() == len(second)
    assert sorted(store.iter_jobs(), key=lambda j: j.key) == sorted(second, key=lambda j: j.key)
    january = store.window_facts(None, datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC))
    february = store.window_facts(None, datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC))
    assert (january.overall.total, february.overall.total) == (2, 3)
