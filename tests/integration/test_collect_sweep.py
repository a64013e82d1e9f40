"""A sweep over many repositories where nothing is new: concurrent syncs sharing a token batch their
listings, so the whole sweep costs a few GraphQL points and free 304s, not one request per repository."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cipulse.emulator import Emulator
from cipulse.github.budget import RateBudget
from cipulse.github.etag_cache import EtagCache
from cipulse.github.sync import SyncTarget, sync_once
from cipulse.store.sqlite import SqliteStore

pytestmark = pytest.mark.integration

REPOS = [f"sweep-org/service-{i:02d}" for i in range(40)]


@pytest.fixture(scope="module")
def emulator(github_assets: Any) -> Iterator[Emulator]:
    with Emulator(seed=41, repos=dict.fromkeys(REPOS, 30)) as running:
        yield running


def sweep(emulator: Emulator, store: SqliteStore, mode: str, budget: RateBudget) -> None:
    async def all_repos() -> None:
        await asyncio.gather(
            *(
                sync_once(
                    SyncTarget(
                        repo, api_url=emulator.api_url, token=emulator.token, mode=mode, backfill_days=400
                    ),
                    store,
                    monitor=repo,
                    budget=budget,
                )
                for repo in REPOS
            )
        )

    asyncio.run(all_repos())


@pytest.mark.parametrize("mode", ["graphql", "graphql+rest", "webhooks"])
def test_nothing_new_sweep_costs_a_few_points(emulator: Emulator, mode: str, tmp_path: Path) -> None:
    etags = tmp_path / "etags.json"
    with SqliteStore(tmp_path / "sweep.db") as store:
        sweep(emulator, store, mode, RateBudget(etags=EtagCache(etags)))
        jobs = store.count_jobs()
        assert jobs == sum(len(emulator.truth.jobs(repo)) for repo in REPOS)
        # A new process: only the ETag file carries over.
        before = emulator.usage.snapshot()
        sweep(emulator, store, mode, RateBudget(etags=EtagCache(etags)))
        spent = emulator.usage.snapshot() - before
        assert store.count_jobs() == jobs
        workflows = 4 * len(REPOS)
        listing_points = math.ceil(workflows / 149)
        allowed = listing_points + (1 if mode == "webhooks" else 0)  # webhooks: one batched job-count check
        assert spent.rest_requests == 0 and spent.rest_not_modified == len(REPOS)
        assert 1 <= spent.graphql_points <= allowed
        # A REST-only collector asks each repository's run list once: len(REPOS) units, >= 10x more.
        assert spent.units * 10 <= len(REPOS)
