"""A sync interrupted at random points (cancelled mid-request, or the store failing mid-write) and then
resumed ends with exactly the emulator's records: nothing lost, nothing duplicated, watermark safe."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from cipulse.emulator import Emulator
from cipulse.github.sync import SyncTarget, sync_once
from cipulse.records import Job, WorkflowRun
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

REPO = "octo-org/payments-api"


class CrashingStore:
    """The real store, except that the n-th upsert fails like a crash half-way through a sync."""

    def __init__(self, store: SqliteStore, fail_at: int) -> None:
        self._store = store
        self._left = fail_at

    def upsert(self, runs: Sequence[WorkflowRun], jobs: Sequence[Job]) -> None:
        self._left -= 1
        if self._left <= 0:
            raise RuntimeError("simulated crash while writing")
        self._store.upsert(runs, jobs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


@pytest.fixture(scope="module")
def emulator(github_assets: Any) -> Iterator[Emulator]:
    with Emulator(seed=17, repos={REPO: 2500}) as running:
        yield running


@pytest.mark.parametrize("mode", ["graphql+rest", "graphql", "webhooks"])
@pytest.mark.parametrize("seed", [1, 2])
def test_interrupted_sync_resumes_to_the_same_set(
    emulator: Emulator, mode: str, seed: int, tmp_path: Path
) -> None:
    rng = random.Random(seed)
    target = SyncTarget(REPO, api_url=emulator.api_url, token=emulator.token, mode=mode, backfill_days=400)
    interruptions = 0
    with SqliteStore(tmp_path / "resume.db") as store:
        for round_number in range(4):
            budget = fast_budget()  # a restarted process starts with an empty budget and ETag cache
            before = store.get_watermark("m")
            interrupted = False
            if round_number % 2 == 0:
                sync = sync_once(target, store, monitor="m", budget=budget)
                try:
                    asyncio.run(asyncio.wait_for(sync, rng.uniform(0.05, 0.8)))
                except TimeoutError:
                    interrupted = True
            else:
                crashing: Any = CrashingStore(store, fail_at=rng.randint(1, 4))
                try:
                    asyncio.run(sync_once(target, crashing, monitor="m", budget=budget))
                except RuntimeError as error:
                    assert "simulated crash" in str(error)
                    interrupted = True
            if interrupted:
                interruptions += 1
                assert store.get_watermark("m") == before  # only a finished sync moves the watermark
            assert store.count_jobs(REPO) <= len(emulator.truth.jobs(REPO))
        assert interruptions >= 2
        asyncio.run(sync_once(target, store, monitor="m", budget=fast_budget()))
        job_gaps = GRAPHQL_JOB_GAPS if mode == "graphql" else frozenset()
        run_gaps = GRAPHQL_RUN_GAPS if mode == "graphql" else frozenset()
        truth_jobs = documents(emulator.truth.jobs(REPO), job_gaps)
        assert store.count_jobs(REPO) == len(truth_jobs)
        assert store.count_runs(REPO) == len(emulator.truth.runs(REPO))
        assert_same(truth_jobs, documents(store.iter_jobs(REPO), job_gaps))
        if mode == "graphql":
            assert_same(
                documents(emulator.truth.runs(REPO), run_gaps), documents(store.iter_runs(REPO), run_gaps)
            )
        else:
            assert_same_runs(documents(emulator.truth.runs(REPO)), documents(store.iter_runs(REPO)))
        assert store.get_watermark("m") is not None


@pytest.mark.parametrize("mode", ["graphql+rest", "graphql"])
def test_interrupted_incremental_sync_with_many_new_runs(
    mode: str, github_assets: Any, tmp_path: Path
) -> None:
    """More new runs than one listing page, the newest of them written before a crash: the resumed sync
    must not take "the first page is all known" for "nothing new" and must fetch the older new runs."""
    repo = "octo-org/busy"
    with Emulator(seed=19, repos={repo: 300}) as emulator, SqliteStore(tmp_path / "busy.db") as store:
        # One workflow, so the newest runs written before the crash fill the whole first listing page.
        target = SyncTarget(
            repo,
            api_url=emulator.api_url,
            token=emulator.token,
            mode=mode,
            backfill_days=400,
            workflows=("CI",),
        )
        asyncio.run(sync_once(target, store, monitor="m", budget=fast_budget()))
        emulator.add_activity(repo, runs=260)
        before = store.get_watermark("m")
        crashing: Any = CrashingStore(store, fail_at=130 if mode == "graphql+rest" else 10)
        with pytest.raises(RuntimeError, match="simulated crash"):
            asyncio.run(sync_once(target, crashing, monitor="m", budget=fast_budget()))
        assert store.get_watermark("m") == before
        asyncio.run(sync_once(target, store, monitor="m", budget=fast_budget()))
        job_gaps = GRAPHQL_JOB_GAPS if mode == "graphql" else frozenset()
        truth = [job for job in emulator.truth.jobs(repo) if job.workflow_name == "CI"]
        assert len({job.run_id for job in truth}) > 200
        assert_same(documents(truth, job_gaps), documents(store.iter_jobs(repo), job_gaps))
