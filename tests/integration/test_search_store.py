"""SearchStore against real Elasticsearch 8 and OpenSearch 2 and 3, checked against SqliteStore on the same
data."""

from __future__ import annotations

import base64
import dataclasses
import http.server
import itertools
import threading
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from cipulse.metrics.cost import RunnerRates
from cipulse.records import Job, WorkflowRun
from cipulse.store import search_ingest
from cipulse.store.base import StoreUnavailable, Watermark
from cipulse.store.search import BulkItemsFailed, SearchStore
from cipulse.store.search_client import BulkAction, SearchClient
from cipulse.store.sqlite import SqliteStore
from cipulse.store.synthetic import generate
from tests.services.search import free_port

pytestmark = pytest.mark.integration

START = datetime(2026, 1, 20, tzinfo=UTC)
_prefixes = itertools.count()


# test service (the prefix of its `NAME_url` fixture) -> what `GET /` must reveal: engine and major version
SERVICES = {
    "elasticsearch": ("elasticsearch", 8),
    "opensearch": ("opensearch", 2),
    "opensearch3": ("opensearch", 3),
}


@pytest.fixture(params=list(SERVICES))
def engine(request: pytest.FixtureRequest) -> tuple[str, str]:
    """(service, base URL) of a running engine."""
    return request.param, str(request.getfixturevalue(f"{request.param}_url"))


@pytest.fixture
def store(engine: tuple[str, str], request: pytest.FixtureRequest) -> Iterator[SearchStore]:
    prefix = f"t{next(_prefixes)}-{request.node.name.split('[')[0].replace('_', '-')[:40]}"
    with SearchStore(engine[1], index_prefix=prefix) as opened:
        yield opened


def history(jobs: int = 2500, batch_jobs: int = 400) -> list[tuple[list[WorkflowRun], list[Job]]]:
    return [
        (b.runs, b.jobs) for b in generate(seed=11, jobs=jobs, start=START, days=45, batch_jobs=batch_jobs)
    ]


def by_key(records: Iterator[Job] | Iterator[WorkflowRun]) -> list[Job | WorkflowRun]:
    return sorted(records, key=lambda record: record.key)


def windows() -> list[tuple[str | None, datetime, datetime]]:
    return [
        (None, START, START + timedelta(days=30)),
        (None, START + timedelta(days=3, hours=7), START + timedelta(days=11, minutes=13)),
        ("octo/beta", START + timedelta(days=10), START + timedelta(days=40)),
        ("octo/gamma", START - timedelta(days=1), START + timedelta(days=60)),
        (None, START + timedelta(days=100), START + timedelta(days=130)),  # empty window
        ("no/such-repo", START, START + timedelta(days=30)),
    ]


def test_engine_is_detected(engine: tuple[str, str], store: SearchStore) -> None:
    assert (store.engine, store.info.major) == SERVICES[engine[0]]
    # the minimal integ-test distributions have no ILM/ISM: retention runs as cipulse's deletion job
    assert store.lifecycle_available is False


def test_same_results_as_sqlite(store: SearchStore) -> None:
    sqlite = SqliteStore(":memory:")
    batches = history()
    for runs, jobs in batches:
        store.upsert(runs, jobs)
        sqlite.upsert(runs, jobs)
    store.upsert(*batches[1])  # replaying a batch overwrites, never duplicates

    assert store.count_jobs() == sqlite.count_jobs() == sum(len(jobs) for _, jobs in batches)
    assert store.count_runs() == sqlite.count_runs()
    assert store.count_jobs("octo/alpha") == sqlite.count_jobs("octo/alpha") > 0
    assert by_key(store.iter_jobs()) == by_key(sqlite.iter_jobs())
    assert by_key(store.iter_runs("octo/beta")) == by_key(sqlite.iter_runs("octo/beta"))
    assert store.training_rows() == sqlite.training_rows()
    assert store.training_rows("octo/gamma") == sqlite.training_rows("octo/gamma")

    old_prices = RunnerRates(per_minute_usd={"linux": 0.008, "windows": 0.016, "macos": 0.08})
    for repository, start, end in windows():
        expected = sqlite.window_facts(repository, start, end)
        assert store.window_facts(repository, start, end) == expected
        priced = store.window_facts(repository, start, end, rates=old_prices)
        assert priced == sqlite.window_facts(repository, start, end, rates=old_prices)
    full = store.window_facts(None, START, START + timedelta(days=30))
    assert full.overall.total > 1000 and full.overall.duration_p95 is not None
    assert full.overall.queue_estimated_count > 0 and full.overall.clock_skew_count > 0

    cutoff = START + timedelta(days=20, hours=5, seconds=17)
    assert store.delete_older_than(cutoff) == sqlite.delete_older_than(cutoff) > 0
    assert store.count_jobs() == sqlite.count_jobs()
    assert store.count_runs() == sqlite.count_runs()
    assert by_key(store.iter_jobs()) == by_key(sqlite.iter_jobs())
    for repository, start, end in windows():
        assert store.window_facts(repository, start, end) == sqlite.window_facts(repository, start, end)


def test_retention_drops_whole_old_months(engine: tuple[str, str], store: SearchStore) -> None:
    for runs, jobs in history(jobs=600, batch_jobs=600):
        store.upsert(runs, jobs)
    undated = undated_job()
    store.upsert([], [undated])
    cutoff = datetime(2026, 2, 10, tzinfo=UTC)
    deleted = store.delete_older_than(cutoff)
    assert deleted > 0
    indices = httpx.get(f"{engine[1]}/_cat/indices/{store.layout.prefix}-*", params={"format": "json"}).json()
    names = {row["index"] for row in indices}
    assert f"{store.layout.prefix}-jobs-2026.01" not in names  # the whole month was older than the cutoff
    assert f"{store.layout.prefix}-runs-2026.01" not in names
    assert f"{store.layout.prefix}-jobs-2026.02" in names  # the boundary month keeps its newer documents
    remaining = list(store.iter_jobs())
    assert undated in remaining  # a job that cannot be dated is never expired
    assert all(job.created_at is None or job.created_at >= cutoff for job in remaining if job != undated)
    assert all(run.created_at >= cutoff for run in store.iter_runs())


def undated_job(**changes: object) -> Job:
    job = Job(
        repository="octo/alpha",
        run_id=1,
        run_attempt=1,
        job_id=99,
        name="build",
        workflow_name="CI",
        head_sha="a" * 40,
        head_branch="main",
        status="queued",
        conclusion=None,
        created_at=None,
        started_at=None,
        completed_at=None,
    )
    return dataclasses.replace(job, **changes)


@pytest.mark.parametrize("read_between", [False, True], ids=["unrefreshed", "refreshed"])
def test_record_changing_month_is_moved_not_duplicated(store: SearchStore, read_between: bool) -> None:
    """A job seen without timestamps (undated index), then queued in January, then re-dated to February."""
    versions = [
        undated_job(),
        undated_job(created_at=datetime(2026, 1, 31, 23, 59, 59, tzinfo=UTC), queue_estimated=True),
        undated_job(
            status="completed",
            conclusion="success",
            created_at=datetime(2026, 2, 1, 0, 0, 1, tzinfo=UTC),
            started_at=datetime(2026, 2, 1, 0, 0, 9, tzinfo=UTC),
            completed_at=datetime(2026, 2, 1, 0, 5, 9, tzinfo=UTC),
        ),
    ]
    for version in versions:
        store.upsert([], [version])
        if read_between:
            assert store.count_jobs() == 1
    assert store.count_jobs() == 1
    store.upsert([], [versions[1], versions[0], versions[2]])  # several versions in one batch: the last wins
    assert store.count_jobs() == 1
    assert list(store.iter_jobs()) == [versions[-1]]
    february = store.window_facts(None, datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC))
    assert february.overall.success == 1 and february.overall.duration_p50 == 300
    january = store.window_facts(None, datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC))
    assert january.is_empty


def interrupt_bulk_request(store: SearchStore, number: int) -> None:
    """From the `number`-th _bulk request on, the engine is unreachable (as in an outage mid-batch)."""
    send = store._client.bulk
    calls = itertools.count(1)

    def bulk(actions: Sequence[BulkAction], *, refresh: bool = False, body: bytes | None = None) -> None:
        if next(calls) >= number:
            raise StoreUnavailable("search engine at test unreachable: interrupted")
        send(actions, refresh=refresh, body=body)

    store._client.bulk = bulk  # type: ignore[method-assign]


def run_keys_of_jobs(jobs: Iterable[Job]) -> dict[str, set[str]]:
    grouped: dict[str, set[str]] = {}
    for job in jobs:
        grouped.setdefault(f"{job.repository}:run:{job.run_id}:{job.run_attempt}", set()).add(job.key)
    return grouped


def test_interrupted_upsert_never_stores_a_run_without_its_jobs(
    engine: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(search_ingest, "MAX_BULK_BYTES", 500_000)  # jobs of ~1 kB: 500 per request
    runs, jobs = history(jobs=1300, batch_jobs=1300)[0]  # three job chunks and a run chunk
    expected = run_keys_of_jobs(jobs)
    for number in range(1, 5):
        with SearchStore(engine[1], index_prefix=f"t{next(_prefixes)}-interrupted-{number}") as store:
            interrupt_bulk_request(store, number)
            with pytest.raises(StoreUnavailable):
                store.upsert(runs, jobs)
            stored = run_keys_of_jobs(store.iter_jobs())
            for run in store.iter_runs():
                assert stored.get(run.key, set()) == expected[run.key], f"{run.key} stored before its jobs"
            assert store.count_runs() == 0  # the run chunk comes last and was never sent
            del store._client.bulk  # the outage ends: replaying the batch completes it
            store.upsert(runs, jobs)
            assert store.count_jobs() == len(jobs) and store.count_runs() == len(runs)


@pytest.mark.parametrize("read_between", [False, True], ids=["unrefreshed", "refreshed"])
def test_interrupted_move_leaves_one_copy(store: SearchStore, read_between: bool) -> None:
    """A job re-dated from January to February, interrupted right after the request writing it: the stale
    January copy went away in that same request, so the job is never counted twice."""
    january = undated_job(created_at=datetime(2026, 1, 31, 23, 59, 59, tzinfo=UTC), queue_estimated=True)
    february = undated_job(created_at=datetime(2026, 2, 1, 0, 0, 1, tzinfo=UTC), status="in_progress")
    run = history(jobs=10, batch_jobs=10)[0][0][0]
    store.upsert([], [january])
    if read_between:
        assert store.count_jobs() == 1
    interrupt_bulk_request(store, 2)
    with pytest.raises(StoreUnavailable):
        store.upsert([run], [february])
    assert store.count_jobs() == 1
    assert list(store.iter_jobs()) == [february]
    window = store.window_facts(None, datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC))
    assert window.overall.total == 1


def test_rejected_documents_are_named_and_the_rest_is_written(store: SearchStore) -> None:
    good = [undated_job(job_id=i, created_at=START + timedelta(hours=i)) for i in range(1, 4)]
    bad = undated_job(job_id=2**64, created_at=START)  # beyond a 64-bit long: the engine refuses it
    with pytest.raises(BulkItemsFailed) as raised:
        store.upsert([], [*good, bad])
    assert list(raised.value.failures) == [bad.key]
    assert "long" in raised.value.failures[bad.key] or "range" in raised.value.failures[bad.key]
    assert sorted(store.iter_jobs(), key=lambda job: job.job_id) == good


def test_watermarks_round_trip(store: SearchStore) -> None:
    assert store.get_watermark("octo/alpha CI") is None
    first = Watermark("team/monitor-1", None, datetime(2026, 2, 1, 12, 0, 0, 123456, tzinfo=UTC))
    store.set_watermark(first)
    assert store.get_watermark("team/monitor-1") == first
    second = Watermark("team/monitor-1", START, datetime(2026, 2, 2, tzinfo=UTC))
    store.set_watermark(second)
    assert store.get_watermark("team/monitor-1") == second
    assert store.count_runs() == 0  # watermarks are not records


def test_mappings_are_strict_and_typed(engine: tuple[str, str], store: SearchStore) -> None:
    store.upsert([], [undated_job(created_at=START)])
    index = f"{store.layout.prefix}-jobs-2026.01"
    mapping = httpx.get(f"{engine[1]}/{index}/_mapping").json()[index]["mappings"]
    assert mapping["dynamic"] == "strict"
    assert mapping["properties"]["repository"]["type"] == "keyword"
    assert mapping["properties"]["name"]["fields"]["text"]["type"] == "text"
    assert mapping["properties"]["window_at"]["type"] == "date_nanos"
    assert mapping["properties"]["duration_s"]["type"] == "long"
    unknown = httpx.post(f"{engine[1]}/{index}/_doc", json={"repository": "x", "surprise": 1})
    assert unknown.status_code == 400 and "strict" in unknown.text


def test_unreachable_engine_raises_store_unavailable() -> None:
    with pytest.raises(StoreUnavailable, match="unreachable"):
        SearchStore(f"http://127.0.0.1:{free_port()}")


def test_credentials_in_the_url_never_reach_messages() -> None:
    url = f"http://elastic:S3CRET@127.0.0.1:{free_port()}"
    with pytest.raises(StoreUnavailable, match="unreachable") as raised:
        SearchStore(url)
    assert "S3CRET" not in str(raised.value) and "S3CRET" not in repr(raised.value)
    assert "127.0.0.1" in str(raised.value)


def test_credentials_in_the_url_authenticate_requests() -> None:
    """A real HTTP server that answers "not ready" records what arrived: the credentials, as Basic auth."""
    seen: list[str | None] = []

    class NotReady(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("Authorization"))
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotReady) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            url = f"http://elastic:S3CR%40ET@127.0.0.1:{server.server_address[1]}"
            with pytest.raises(StoreUnavailable) as raised:
                SearchStore(url)
        finally:
            server.shutdown()
    assert seen == ["Basic " + base64.b64encode(b"elastic:S3CR@ET").decode()]
    assert "S3CR" not in str(raised.value) and "***@127.0.0.1" in str(raised.value)
    client = SearchClient(url)
    try:
        assert "S3CR" not in repr(client) and "S3CR" not in client.url
    finally:
        client.close()


def test_reopening_an_existing_store_keeps_data(engine: tuple[str, str], store: SearchStore) -> None:
    """A second process (or a restart) opening the same indices re-applies templates and mappings."""
    runs, jobs = history(jobs=300, batch_jobs=300)[0]
    store.upsert(runs, jobs)
    assert store.count_jobs() == 300
    with SearchStore(engine[1], index_prefix=store.layout.prefix) as reopened:
        assert reopened.count_jobs() == 300
        assert by_key(reopened.iter_runs()) == by_key(iter(runs))
        reopened.upsert(runs, jobs)
        assert reopened.count_jobs() == 300
