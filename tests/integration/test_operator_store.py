"""The store the operator and `cipulse up` open: a search store comes wrapped in the on-disk spool."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from cipulse.operator.monitor_store import open_monitor_store
from cipulse.store.spool import SpoolingStore
from cipulse.store.synthetic import generate

pytestmark = pytest.mark.integration


def test_a_search_store_is_spooled_and_writes_land(
    opensearch_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool_path = tmp_path / "spool.db"
    monkeypatch.setenv("CIPULSE_SPOOL_PATH", str(spool_path))
    store = open_monitor_store(opensearch_url)
    try:
        assert isinstance(store, SpoolingStore)
        assert spool_path.exists()
        before = store.count_jobs()  # the session's engine is shared: count what this test adds
        (batch,) = list(
            generate(seed=3, jobs=40, start=datetime(2019, 5, 1, tzinfo=UTC), days=2, batch_jobs=1000)
        )
        store.upsert(batch.runs, batch.jobs)
        store.upsert(batch.runs, batch.jobs)  # a replay overwrites
        assert store.count_jobs() - before == len({job.key for job in batch.jobs})
        assert store.pending_records() == 0
    finally:
        store.close()
