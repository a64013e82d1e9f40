"""Every kind of fault the emulator injects: the sync retries and ends with exactly the records it gets
without faults (the emulator's truth; for GraphQL-only mode, the truth minus the facts GraphQL lacks)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from cipulse.emulator import Emulator
from cipulse.emulator.faults import KINDS
from cipulse.github.sync import SyncTarget, sync_once
from cipulse.store.sqlite import SqliteStore
from tests.integration.test_collect_sync import (
    GRAPHQL_JOB_GAPS,
    GRAPHQL_RUN_GAPS,
    assert_same,
    assert_same_runs,
    documents,
    fast_budget,
)

pytestmark = pytest.mark.integration

REPO = "octo-org/flaky-infra"
MODES = ("graphql", "graphql+rest", "webhooks")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", KINDS)
def test_fault_kind_gives_the_same_result(kind: str, mode: str, github_assets: Any, tmp_path: Path) -> None:
    # The client gives up on a request after 2 s; a "timeout" fault hangs 3 s.
    with (
        Emulator(seed=11, repos={REPO: 1200}, hang_seconds=3.0) as emulator,
        SqliteStore(tmp_path / "f.db") as store,
    ):
        target = SyncTarget(
            REPO, api_url=emulator.api_url, token=emulator.token, mode=mode, backfill_days=400
        )
        budget = fast_budget()
        emulator.faults.inject(kind, count=2)  # the very first requests fail ...
        emulator.faults.random(0.08, seed=len(kind) * 7 + len(mode), kinds=(kind,))  # ... and some later ones
        asyncio.run(sync_once(target, store, monitor="faults", budget=budget))
        # An incremental sync too (it starts with GraphQL in every mode), again failing first.
        emulator.add_activity(REPO, runs=6)
        emulator.faults.inject(kind, count=2)
        asyncio.run(sync_once(target, store, monitor="faults", budget=budget))
        emulator.faults.clear()
        assert emulator.usage.faults[kind] >= 4
        job_gaps = GRAPHQL_JOB_GAPS if mode == "graphql" else frozenset()
        run_gaps = GRAPHQL_RUN_GAPS if mode == "graphql" else frozenset()
        truth_jobs = documents(emulator.truth.jobs(REPO), job_gaps)
        assert len(truth_jobs) >= 1000
        assert_same(truth_jobs, documents(store.iter_jobs(REPO), job_gaps))
        if mode == "graphql":
            assert_same(
                documents(emulator.truth.runs(REPO), run_gaps), documents(store.iter_runs(REPO), run_gaps)
            )
        else:
            assert_same_runs(documents(emulator.truth.runs(REPO)), documents(store.iter_runs(REPO)))
