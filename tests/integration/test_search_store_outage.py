"""Killing the search engine in the middle of a series of upserts, then starting it again, loses nothing and
duplicates nothing: SearchStore raises StoreUnavailable, the spool keeps the records, idempotent ids make
replays harmless. Each engine gets its own server here, since the test kills it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cipulse.records import Job, WorkflowRun
from cipulse.store.base import StoreUnavailable, Watermark
from cipulse.store.search import SearchStore
from cipulse.store.spool import SpoolingStore
from cipulse.store.sqlite import SqliteStore
from cipulse.store.synthetic import generate
from tests.services.search import SearchServer

pytestmark = [pytest.mark.integration, pytest.mark.slow]

START = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture(params=["elasticsearch", "opensearch", "opensearch3"])
def server(request: pytest.FixtureRequest) -> Iterator[SearchServer]:
    with SearchServer(request.param) as started:
        yield started


def test_engine_crash_mid_series_loses_and_duplicates_nothing(server: SearchServer, tmp_path: Path) -> None:
    batches = [(b.runs, b.jobs) for b in generate(seed=5, jobs=3000, start=START, days=20, batch_jobs=150)]
    # the collector re-sends overlapping pages after errors: replay earlier batches inside the series
    series: list[tuple[list[WorkflowRun], list[Job]]] = []
    for index, batch in enumerate(batches):
        series.append(batch)
        if index % 4 == 3:
            series.append(batches[index - 2])
    store = SearchStore(server.url, index_prefix="outage")
    spool = SpoolingStore(store, tmp_path / "spool.db", max_records=100_000)
    crash_after, restart_after = len(series) // 3, 2 * len(series) // 3
    crashed = threading.Event()

    def crash_soon() -> None:
        server.kill()  # SIGKILL to the whole engine process group, racing the upsert in flight
        crashed.set()

    spooled_while_down = 0
    for index, (runs, jobs) in enumerate(series):
        if index == crash_after:
            threading.Timer(0.05, crash_soon).start()
        if index == restart_after:
            assert crashed.wait(60)
            spooled_while_down = spool.pending_records()
            with pytest.raises(StoreUnavailable):
                store.count_jobs()
            server.start()
        spool.upsert(runs, jobs)
        newest = max(run.created_at for run in runs)
        spool.set_watermark(Watermark("outage-monitor", newest, newest + timedelta(seconds=1)))
    spool.drain()

    assert spooled_while_down > 0, "the engine was down for part of the series"
    assert spool.pending_records() == 0
    truth = SqliteStore(":memory:")
    for runs, jobs in batches:
        truth.upsert(runs, jobs)
    assert store.count_jobs() == truth.count_jobs() == 3000
    assert store.count_runs() == truth.count_runs()
    assert sorted(store.iter_jobs(), key=lambda j: j.key) == sorted(truth.iter_jobs(), key=lambda j: j.key)
    assert sorted(store.iter_runs(), key=lambda r: r.key) == sorted(truth.iter_runs(), key=lambda r: r.key)
    window = (START, START + timedelta(days=30))
    assert store.window_facts(None, *window) == truth.window_facts(None, *window)
    last_newest = max(run.created_at for run in series[-1][0])
    watermark = store.get_watermark("outage-monitor")
    assert watermark is not None and watermark.newest_created_at == last_newest
    spool.close()
