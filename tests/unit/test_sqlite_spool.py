"""SpoolingStore over a real SqliteStore made unwritable by another connection holding the write lock."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cipulse.records import Job, WorkflowRun
from cipulse.store.base import Store, StoreUnavailable, Watermark
from cipulse.store.spool import SpoolFull, SpoolingStore
from cipulse.store.sqlite import SqliteStore
from cipulse.store.synthetic import generate
from tests.unit.metrics_helpers import at, job

START = datetime(2026, 2, 1, tzinfo=UTC)


class Outage:
    """Holds SQLite's write lock from a second connection: the store's writers time out (a real outage)."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.active = False

    def begin(self) -> None:
        self.conn.execute("BEGIN EXCLUSIVE")
        self.active = True

    def end(self) -> None:
        if self.active:
            self.conn.execute("ROLLBACK")
            self.active = False


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[SqliteStore, SpoolingStore, Outage]]:
    inner = SqliteStore(tmp_path / "store.db", busy_timeout_ms=50)
    spooled = SpoolingStore(inner, tmp_path / "spool" / "spool.db", max_records=3000)
    outage = Outage(tmp_path / "store.db")
    yield inner, spooled, outage
    outage.end()
    spooled.close()


def batches(jobs: int = 2000) -> list[tuple[list[WorkflowRun], list[Job]]]:
    return [(b.runs, b.jobs) for b in generate(seed=11, jobs=jobs, start=START, days=10, batch_jobs=200)]


def test_is_a_store(setup: tuple[SqliteStore, SpoolingStore, Outage]) -> None:
    assert isinstance(setup[1], Store)


def test_outage_spools_holds_watermark_and_drains_exactly_once(
    setup: tuple[SqliteStore, SpoolingStore, Outage],
) -> None:
    inner, spooled, outage = setup
    parts = batches()
    before = Watermark("m", START, START)
    spooled.set_watermark(before)
    spooled.upsert(*parts[0])

    outage.begin()
    with pytest.raises(StoreUnavailable):
        inner.upsert(*parts[1])  # the store really is unavailable
    for runs, jobs in parts[1:5]:
        spooled.upsert(runs, jobs)  # durable in the spool: returns normally
        spooled.set_watermark(Watermark("m", jobs[-1].created_at, at(0)))
    status = spooled.status()
    assert not status.store_available and status.pending_watermarks == 1
    assert status.pending_records == sum(len(r) + len(j) for r, j in parts[1:5])
    assert "store unavailable" in status.message
    # the watermark did not advance, neither in the store nor as answered to the collector
    assert inner.get_watermark("m") == before
    assert spooled.get_watermark("m") == before
    # collecting the same records again during the outage overwrites spool entries instead of growing it
    spooled.upsert(*parts[2])
    assert spooled.status().pending_records == status.pending_records

    outage.end()
    for runs, jobs in parts[5:]:
        spooled.upsert(runs, jobs)  # drains first, then writes: order preserved
    assert spooled.status().pending_records == 0 and spooled.status().store_available
    all_runs = [r for rs, _ in parts for r in rs]
    all_jobs = [j for _, js in parts for j in js]
    assert inner.count_jobs() == len(all_jobs) and inner.count_runs() == len(all_runs)
    assert sorted(inner.iter_jobs(), key=lambda j: j.key) == sorted(all_jobs, key=lambda j: j.key)
    held = inner.get_watermark("m")
    assert held is not None and held.newest_created_at == parts[4][1][-1].created_at


def test_spool_survives_restart(tmp_path: Path) -> None:
    parts = batches(600)
    inner = SqliteStore(tmp_path / "store.db", busy_timeout_ms=50)
    outage = Outage(tmp_path / "store.db")
    spooled = SpoolingStore(inner, tmp_path / "spool.db")
    outage.begin()
    for runs, jobs in parts:
        spooled.upsert(runs, jobs)
    spooled.close()  # the collector process dies
    outage.end()
    reopened = SpoolingStore(SqliteStore(tmp_path / "store.db"), tmp_path / "spool.db")
    assert reopened.status().pending_records == sum(len(r) + len(j) for r, j in parts)
    assert reopened.drain() == reopened.store.count_jobs() + reopened.store.count_runs()
    assert reopened.drain() == 0
    assert reopened.count_jobs() == sum(len(j) for _, j in parts)
    reopened.close()


def test_newer_version_of_a_record_wins_after_drain(setup: tuple[SqliteStore, SpoolingStore, Outage]) -> None:
    inner, spooled, outage = setup
    outage.begin()
    spooled.upsert([], [job(job_id=77, status="in_progress", conclusion=None, completed=None)])
    outage.end()
    final = job(job_id=77, conclusion="success")
    spooled.upsert([], [final])
    assert list(inner.iter_jobs()) == [final]


def test_full_spool_pauses_without_dropping(setup: tuple[SqliteStore, SpoolingStore, Outage]) -> None:
    inner, spooled, outage = setup
    parts = batches(6000)
    outage.begin()
    accepted = []
    with pytest.raises(SpoolFull, match="collection paused"):
        for runs, jobs in parts:
            spooled.upsert(runs, jobs)
            accepted.append((runs, jobs))
    refused = parts[len(accepted)]
    status = spooled.status()
    assert status.pending_records <= status.capacity
    assert status.pending_records == sum(len(r) + len(j) for r, j in accepted)
    assert isinstance(SpoolFull("x"), StoreUnavailable)
    outage.end()
    spooled.upsert(*refused)  # the collector retries the refused batch after recovery
    assert inner.count_jobs() == sum(len(j) for _, j in [*accepted, refused])
