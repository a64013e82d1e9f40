"""Which job indices may hold a job id (`JobIdRanges`), on real Elasticsearch and OpenSearch: the moved-job
lookup searches only the indices it names, so an index holding an id in the range must never be left out."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from cipulse.store.search import SearchStore
from cipulse.store.search_client import incomplete
from cipulse.store.search_id_ranges import ID_BOUNDS, RANGES_TTL_S, JobIdRanges, named_by
from tests.integration.test_search_ingest import job

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


def test_names_exactly_the_indices_whose_id_range_overlaps(store: SearchStore) -> None:
    january, february = (f"{store.layout.prefix}-jobs-2026.{month}" for month in ("01", "02"))
    undated = f"{store.layout.prefix}-jobs-undated"
    store.upsert([], [job(n, "octo/a", JANUARY) for n in range(1, 11)])
    store.upsert([], [job(n, "octo/a", FEBRUARY) for n in range(100, 111)])
    store.upsert([], [job(500, "octo/a", None, status="queued", conclusion=None)])
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
    store.upsert([], [job(n, "octo/a", JANUARY) for n in range(1, 11)])
    store.count_jobs()
    assert ranges.holding(["*"], 20, 30) == []
    store.upsert([], [job(25, "octo/a", JANUARY)])
    store.count_jobs()
    now[0] += RANGES_TTL_S / 2
    assert ranges.holding(["*"], 20, 30) == []  # read before job 25 was refreshed
    now[0] += RANGES_TTL_S / 2
    assert ranges.holding(["*"], 20, 30) == [f"{store.layout.prefix}-jobs-2026.01"]
    store.upsert([], [job(40, "octo/a", FEBRUARY)])
    store.count_jobs()
    ranges.forget()
    assert ranges.holding(["*"], 40, 40) == [f"{store.layout.prefix}-jobs-2026.02"]


def test_a_copy_written_by_another_store_is_moved_once_the_ranges_are_read_again(url: str) -> None:
    """Two writers of the same indices (say the operator and a backfill): a job one of them stored in
    January and the other now re-dates to February ends up in February only."""
    prefix = f"ranges-{next(_prefixes)}"
    with SearchStore(url, index_prefix=prefix) as ours, SearchStore(url, index_prefix=prefix) as theirs:
        ours.upsert([], [job(n, "octo/a", FEBRUARY) for n in range(1, 6)])  # our writer has read the ranges
        theirs.upsert([], [job(7, "octo/a", JANUARY)])
        assert theirs.count_jobs() == 6  # refreshed: search sees the January copy
        time.sleep(RANGES_TTL_S)
        ours.upsert([], [job(7, "octo/a", FEBRUARY, queue_estimated=False)])
        assert ours.count_jobs() == 6
        [moved] = [stored for stored in ours.iter_jobs() if stored.job_id == 7]
        assert moved.created_at == FEBRUARY and not moved.queue_estimated


def test_an_index_whose_range_cannot_be_read_may_hold_any_id(url: str, store: SearchStore) -> None:
    """An index whose min/max search fails is named for every range (its lookup then decides), while the
    others keep their exact ranges; `incomplete` says why the answer was refused."""
    readable, unreadable = (f"{store.layout.prefix}-other-{name}" for name in ("a", "b"))
    client = store._client
    client.put_document(readable, "1", {"job_id": 5})  # dynamic mapping: a long
    client.put_document(unreadable, "1", {"job_id": "abc"})  # dynamic mapping: text, which min refuses
    client.refresh(f"{store.layout.prefix}-other-*")
    try:
        answers = client.msearch([(readable, ID_BOUNDS), (unreadable, ID_BOUNDS)])
        assert incomplete(answers[0]) is None
        assert "job_id" in (incomplete(answers[1]) or "")
        ranges = JobIdRanges(client, f"{store.layout.prefix}-other-*")
        assert ranges.holding(["*"], 100, 200) == [unreadable]
        assert ranges.holding(["*"], 5, 5) == [readable, unreadable]
    finally:
        client.delete_index(readable)
        client.delete_index(unreadable)


def test_candidates_are_names_or_prefixes_and_nothing_else_is_a_wildcard() -> None:
    chosen = named_by(["ci[1]-jobs-2026.01", "ci[1]-jobs-undated", "ci[2]-jobs-*"])
    assert chosen("ci[1]-jobs-2026.01") and chosen("ci[1]-jobs-undated")
    assert chosen("ci[2]-jobs-2026.03") and chosen("ci[2]-jobs-")
    assert not chosen("ci1-jobs-2026.01")  # "[1]" is not a character class
    assert not chosen("ci[1]-jobs-2026.02") and not chosen("ci[1]-jobs-2026.01x")
