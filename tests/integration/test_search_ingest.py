"""The search store's write path on real Elasticsearch and OpenSearch: moves inside mixed batches, and the
pipelined stream of batches (`SearchStore.upsert_batches`)."""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cipulse.records import Job, WorkflowRun
from cipulse.store import search_ingest
from cipulse.store.base import StoreUnavailable
from cipulse.store.search import BulkItemsFailed, SearchStore
from cipulse.store.search_client import BULK_ANSWER_FIELDS, CLEAN_BULK_ANSWER, BulkAction, bulk_body
from cipulse.store.sqlite import SqliteStore
from cipulse.store.synthetic import generate
from tests.integration.test_search_store import interrupt_bulk_request, run_keys_of_jobs

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


def test_only_answers_without_a_failed_item_begin_as_a_clean_one(store: SearchStore) -> None:
    """`SearchClient.bulk` skips decoding the items of an answer that begins as `CLEAN_BULK_ANSWER`: both
    engines begin a clean answer so, and an answer naming a rejected document never does."""
    index = f"answers-{store.layout.prefix}"  # outside the store's templates: dynamic mapping, n is a long

    def answer(*documents: dict[str, Any]) -> bytes:
        body = bulk_body(
            [BulkAction("index", index, str(n), document) for n, document in enumerate(documents)]
        )
        params = {"refresh": "false", "filter_path": BULK_ANSWER_FIELDS}
        return store._client._send("POST", "/_bulk", content=body, params=params)

    try:
        assert answer({"n": 1}, {"n": 2}).startswith(CLEAN_BULK_ANSWER)
        failed = answer({"n": 3}, {"n": "not a number"})
        assert not failed.startswith(CLEAN_BULK_ANSWER)
        assert b'"errors":true' in failed
    finally:
        store._client.delete_index(index)


# -- the pipelined stream (`upsert_batches`) ------------------------------------------------------------


def slow_requests(store: SearchStore, seconds: float = 0.3) -> list[list[BulkAction]]:
    """Every _bulk request waits before it is sent, so each one is still in flight while the next batch
    is prepared; returns the list the requests' actions are recorded in."""
    send = store._client.bulk
    sent: list[list[BulkAction]] = []

    def bulk(actions: Sequence[BulkAction], *, refresh: bool = False, body: bytes | None = None) -> None:
        sent.append(list(actions))
        time.sleep(seconds)
        send(actions, refresh=refresh, body=body)

    store._client.bulk = bulk  # type: ignore[method-assign]
    return sent


def test_stream_moves_a_job_written_by_the_request_in_flight(store: SearchStore) -> None:
    """Batch 1 re-dates a job that batch 0 writes in the request still in flight (invisible to search and
    not yet acknowledged); batch 2 re-dates one written two batches before."""
    run = next(generate(seed=3, jobs=5, start=JANUARY_END, days=1, batch_jobs=5)).runs[0]
    first_of_one = job(1, "octo/a", JANUARY_END)
    last_of_one = job(1, "octo/a", JANUARY_END + timedelta(hours=2), queue_estimated=False)
    first_of_two = job(2, "octo/a", None, status="queued", conclusion=None)
    last_of_two = job(2, "octo/a", JANUARY_END - timedelta(days=2))
    sent = slow_requests(store)
    stored: list[int] = []
    store.upsert_batches(
        [([], [first_of_one, first_of_two]), ([], [last_of_one]), ([run], [last_of_two])], stored.append
    )
    assert stored == [0, 1, 2]
    assert len(sent) == 4  # one request per batch, and the last batch's runs
    assert BulkAction("delete", f"{store.layout.prefix}-jobs-2026.01", first_of_one.key) in sent[1]
    assert sorted(store.iter_jobs(), key=lambda j: j.key) == [last_of_one, last_of_two]
    assert list(store.iter_runs()) == [run]
    window = store.window_facts(None, datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC))
    assert window.overall.total == 2


def history(jobs: int, batch_jobs: int) -> list[tuple[list[WorkflowRun], list[Job]]]:
    return [
        (b.runs, b.jobs)
        for b in generate(seed=7, jobs=jobs, start=JANUARY_END, days=9, batch_jobs=batch_jobs)
    ]


def test_stream_equals_upserts_one_by_one(store: SearchStore) -> None:
    batches = history(jobs=1500, batch_jobs=150)
    series = [*batches[:4], batches[1], *batches[4:], batches[-2]]  # replays inside the stream
    truth = SqliteStore(":memory:")
    for runs, jobs in series:
        truth.upsert(runs, jobs)
    stored: list[int] = []
    store.upsert_batches(series, stored.append)
    assert stored == list(range(len(series)))
    assert store.count_jobs() == truth.count_jobs() and store.count_runs() == truth.count_runs()
    assert sorted(store.iter_jobs(), key=lambda j: j.key) == sorted(truth.iter_jobs(), key=lambda j: j.key)
    assert sorted(store.iter_runs(), key=lambda r: r.key) == sorted(truth.iter_runs(), key=lambda r: r.key)
    window = (JANUARY_END - timedelta(days=1), JANUARY_END + timedelta(days=10))
    assert store.window_facts(None, *window) == truth.window_facts(None, *window)


@pytest.mark.parametrize("failing_request", [1, 2, 3, 5])
def test_interrupted_stream_reports_only_complete_batches(store: SearchStore, failing_request: int) -> None:
    """An outage from the n-th request on: every batch reported stored is complete, every stored run has
    all its jobs, and replaying the stream completes it exactly once."""
    batches = history(jobs=1200, batch_jobs=200)
    expected_jobs = run_keys_of_jobs(job for _, jobs in batches for job in jobs)
    interrupt_bulk_request(store, failing_request)
    stored: list[int] = []
    with pytest.raises(StoreUnavailable):
        store.upsert_batches(batches, stored.append)
    assert stored == list(range(failing_request - 2 if failing_request > 1 else 0))
    present_jobs = run_keys_of_jobs(store.iter_jobs())
    present_runs = {run.key for run in store.iter_runs()}
    for run_key in present_runs:
        assert present_jobs.get(run_key, set()) == expected_jobs[run_key], f"{run_key} before its jobs"
    for number in stored:
        assert {run.key for run in batches[number][0]} <= present_runs
    del store._client.bulk  # the outage ends
    store.upsert_batches(batches)
    assert store.count_jobs() == sum(len(jobs) for _, jobs in batches)
    assert store.count_runs() == sum(len(runs) for runs, _ in batches)


def test_rejected_document_stops_the_stream_after_its_batch(store: SearchStore) -> None:
    batches = history(jobs=900, batch_jobs=300)
    bad = job(2**64, "octo/a", JANUARY_END)  # beyond a 64-bit long: the engine refuses it
    runs, jobs = batches[1]
    batches[1] = (runs, [*jobs, bad])
    stored: list[int] = []
    with pytest.raises(BulkItemsFailed) as raised:
        store.upsert_batches(batches, stored.append)
    assert list(raised.value.failures) == [bad.key]
    assert stored == []  # batch 0's runs travelled in the request that was refused in part
    assert store.count_jobs() == len(batches[0][1]) + len(jobs)  # the rest of batch 1 is written
    assert {run.key for run in store.iter_runs()} == {run.key for run in batches[0][0]}


def test_run_requests_stay_within_the_bulk_size(store: SearchStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs held for the next request are sent alone when they would make it too big, split like jobs."""
    monkeypatch.setattr(search_ingest, "MAX_BULK_BYTES", 40_000)
    batches = history(jobs=600, batch_jobs=100)
    runs_only = [(runs, []) for runs, _ in batches]  # runs after their jobs, as the collector writes
    jobs_only = [([], jobs) for _, jobs in batches]
    sent = slow_requests(store, seconds=0)
    stored: list[int] = []
    store.upsert_batches([*jobs_only, *runs_only], stored.append)
    assert stored == list(range(2 * len(batches)))
    largest_document = max(len(action.document or b"") for request in sent for action in request)
    for request in sent:
        assert sum(len(a.document or b"") + search_ingest.ACTION_BYTES for a in request) < (
            40_000 + largest_document + search_ingest.ACTION_BYTES
        )
    assert store.count_runs() == sum(len(runs) for runs, _ in batches)
    assert store.count_jobs() == sum(len(jobs) for _, jobs in batches)
