"""Full and incremental syncs against the GitHub emulator (GHES URL layout), checked against its truth."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from cipulse.emulator import Emulator
from cipulse.github.backoff import RetryPolicy
from cipulse.github.budget import RateBudget
from cipulse.github.sync import SyncResult, SyncTarget, sync_once
from cipulse.records import Job, WorkflowRun, to_document
from cipulse.store.sqlite import SqliteStore

pytestmark = pytest.mark.integration

BIG_REPO = "octo-org/monorepo"
# Facts GraphQL does not have (REST/webhooks only): excluded when comparing GraphQL-only syncs.
GRAPHQL_JOB_GAPS = frozenset({"created_at", "queue_estimated", "runner_name", "runner_labels"})
GRAPHQL_RUN_GAPS = frozenset({"actor", "pull_request_numbers", "run_started_at"})


def documents(records: Iterable[Job | WorkflowRun], ignore: frozenset[str] = frozenset()) -> dict[str, Any]:
    return {
        record.key: {k: v for k, v in to_document(record).items() if k not in ignore} for record in records
    }


def assert_same(expected: dict[str, Any], actual: dict[str, Any]) -> None:
    assert len(actual) == len(expected)
    assert actual.keys() == expected.keys()
    differing = [key for key in expected if expected[key] != actual[key]]
    assert not differing, (differing[:3], [(expected[k], actual[k]) for k in differing[:1]])


# An earlier attempt first seen after its re-run has these unknown (None) in its run record: only a
# request per attempt would tell them (see parse_rest.earlier_attempt). Its jobs are exact.
UNKNOWN_IN_EARLIER_ATTEMPTS = frozenset({"conclusion", "run_started_at", "updated_at"})


def unknown_earlier_attempts(runs: dict[str, Any]) -> set[str]:
    """Keys of earlier attempts whose conclusion and times were left unknown."""
    latest: dict[Any, int] = {}
    for doc in runs.values():
        latest[doc["run_id"]] = max(latest.get(doc["run_id"], 0), doc["run_attempt"])
    return {
        key
        for key, doc in runs.items()
        if doc["run_attempt"] < latest[doc["run_id"]]
        and doc["status"] == "completed"
        and all(doc.get(f, None) is None for f in UNKNOWN_IN_EARLIER_ATTEMPTS)
    }


def assert_same_runs(expected: dict[str, Any], actual: dict[str, Any]) -> set[str]:
    """Runs equal to the truth, except that earlier attempts may have their conclusion and times unknown
    (None, never a wrong value); returns the keys of those."""
    unknown = unknown_earlier_attempts(actual)
    filled = {
        key: (
            {**doc, **{f: expected[key][f] for f in UNKNOWN_IN_EARLIER_ATTEMPTS if f in doc}}
            if key in unknown and key in expected
            else doc
        )
        for key, doc in actual.items()
    }
    assert_same(expected, filled)
    return unknown


def fast_budget() -> RateBudget:
    """A budget of its own (not shared with other tests) with short backoff for test speed."""
    return RateBudget(retry=RetryPolicy(base_delay=0.05, max_delay=0.5, request_timeout=2.0))


def run_sync(
    emulator: Emulator, store: SqliteStore, repo: str, mode: str, budget: RateBudget, monitor: str = "m"
) -> SyncResult:
    target = SyncTarget(repo, api_url=emulator.api_url, token=emulator.token, mode=mode, backfill_days=400)
    return asyncio.run(sync_once(target, store, monitor=monitor, budget=budget))


@pytest.fixture(scope="module")
def big_emulator(github_assets: Any) -> Iterator[Emulator]:
    with Emulator(seed=3, repos={BIG_REPO: 10_500}) as running:
        yield running


@pytest.fixture(scope="module")
def big_truth(big_emulator: Emulator) -> tuple[dict[str, Any], dict[str, Any]]:
    return documents(big_emulator.truth.jobs(BIG_REPO)), documents(big_emulator.truth.runs(BIG_REPO))


def test_full_sync_of_a_big_repository_is_exact(
    big_emulator: Emulator, big_truth: tuple[dict[str, Any], dict[str, Any]], tmp_path: Path
) -> None:
    truth_jobs, truth_runs = big_truth
    assert len(truth_jobs) >= 10_000
    with SqliteStore(tmp_path / "big.db") as store:
        budget = fast_budget()
        result = run_sync(big_emulator, store, BIG_REPO, "graphql+rest", budget)
        assert result.jobs == len(truth_jobs)
        assert store.count_jobs(BIG_REPO) == len(truth_jobs)
        assert_same(truth_jobs, documents(store.iter_jobs(BIG_REPO)))
        unknown = assert_same_runs(truth_runs, documents(store.iter_runs(BIG_REPO)))
        # A first sync sees re-run runs only after their re-runs: no request per earlier attempt.
        earlier = {key for key, doc in truth_runs.items() if doc["run_attempt"] > 1}
        assert earlier and len(unknown) == len(earlier)
        # Runs of 260+ jobs (two attempts of a 260-shard matrix) were paged, not cut at 100.
        per_run: dict[int, int] = {}
        for job in store.iter_jobs(BIG_REPO):
            per_run[job.run_id] = per_run.get(job.run_id, 0) + 1
        assert max(per_run.values()) >= 250
        assert any(job.run_attempt > 1 for job in store.iter_jobs(BIG_REPO))

        before = big_emulator.usage.snapshot()
        again = run_sync(big_emulator, store, BIG_REPO, "graphql+rest", budget)
        spent = big_emulator.usage.snapshot() - before
        assert (again.runs, again.jobs) == (0, 0)
        assert spent.graphql_points <= 1 and spent.rest_requests == 0
        assert spent.rest_not_modified >= 1
        assert (again.graphql_points, again.rest_requests) == (spent.graphql_points, 0)


def test_graphql_only_sync_has_every_job_with_estimated_queue_times(
    big_emulator: Emulator, big_truth: tuple[dict[str, Any], dict[str, Any]], tmp_path: Path
) -> None:
    truth_jobs, truth_runs = big_truth
    with SqliteStore(tmp_path / "graphql.db") as store:
        budget = fast_budget()
        result = run_sync(big_emulator, store, BIG_REPO, "graphql", budget)
        assert result.jobs == len(truth_jobs)
        assert_same(
            {k: {f: v for f, v in d.items() if f not in GRAPHQL_JOB_GAPS} for k, d in truth_jobs.items()},
            documents(store.iter_jobs(BIG_REPO), GRAPHQL_JOB_GAPS),
        )
        assert_same(
            {k: {f: v for f, v in d.items() if f not in GRAPHQL_RUN_GAPS} for k, d in truth_runs.items()},
            documents(store.iter_runs(BIG_REPO), GRAPHQL_RUN_GAPS),
        )
        jobs = list(store.iter_jobs(BIG_REPO))
        assert all(job.queue_estimated for job in jobs)
        started = [job for job in jobs if job.started_at is not None]
        assert all(job.created_at is not None and job.created_at <= job.started_at for job in started)
        before = big_emulator.usage.snapshot()
        again = run_sync(big_emulator, store, BIG_REPO, "graphql", budget)
        spent = big_emulator.usage.snapshot() - before
        assert again.jobs == 0 and spent.graphql_points <= 1 and spent.rest_requests == 0


@pytest.mark.parametrize("mode", ["graphql+rest", "webhooks", "graphql"])
def test_new_activity_is_picked_up_exactly(mode: str, github_assets: Any, tmp_path: Path) -> None:
    repo = "octo-org/service"
    with Emulator(seed=5, repos={repo: 800}) as emulator, SqliteStore(tmp_path / "s.db") as store:
        budget = fast_budget()
        run_sync(emulator, store, repo, mode, budget)
        new_ids = emulator.add_activity(repo, runs=7, failure_rate=0.5)
        result = run_sync(emulator, store, repo, mode, budget)
        assert {job.run_id for job in emulator.truth.jobs(repo) if job.run_id in new_ids}
        ignore_jobs = GRAPHQL_JOB_GAPS if mode == "graphql" else frozenset()
        ignore_runs = GRAPHQL_RUN_GAPS if mode == "graphql" else frozenset()
        assert_same(
            documents(emulator.truth.jobs(repo), ignore_jobs), documents(store.iter_jobs(repo), ignore_jobs)
        )
        if mode == "graphql":
            truth_runs = documents(emulator.truth.runs(repo), ignore_runs)
            assert_same(truth_runs, documents(store.iter_runs(repo), ignore_runs))
        else:
            assert_same_runs(documents(emulator.truth.runs(repo)), documents(store.iter_runs(repo)))
        # Only the new runs and the ones that were still running were fetched again.
        assert result.runs < 30


def test_unknown_repository_and_bad_token_fail_clearly(github_assets: Any, tmp_path: Path) -> None:
    from cipulse.github.errors import AuthenticationFailed, RepositoryNotFound

    with Emulator(seed=6, repos={"octo-org/tiny": 50}) as emulator, SqliteStore(tmp_path / "e.db") as store:
        with pytest.raises(RepositoryNotFound, match="octo-org/missing"):
            run_sync(emulator, store, "octo-org/missing", "graphql+rest", fast_budget())
        target = SyncTarget("octo-org/tiny", api_url=emulator.api_url, token="ghp_wrong_token_value")
        with pytest.raises(AuthenticationFailed) as raised:
            asyncio.run(sync_once(target, store, monitor="bad", budget=fast_budget()))
        assert "ghp_wrong_token_value" not in str(raised.value)
        assert store.get_watermark("bad") is None


def test_earlier_attempts_already_stored_are_kept_or_completed_exactly(
    github_assets: Any, tmp_path: Path
) -> None:
    """An earlier attempt stored finished (seen while it was the latest, or delivered by a webhook) keeps
    its exact record at no cost; one stored unfinished is fetched; one never seen is left partly unknown."""
    repo = "octo-org/service"
    with Emulator(seed=5, repos={repo: 800}) as emulator:
        truth = documents(emulator.truth.runs(repo))
        latest: dict[int, int] = {}
        for run in emulator.truth.runs(repo):
            latest[run.run_id] = max(latest.get(run.run_id, 0), run.run_attempt)
        earlier = sorted(
            (run for run in emulator.truth.runs(repo) if run.run_attempt < latest[run.run_id]),
            key=lambda run: run.key,
        )
        assert len(earlier) >= 6
        finished, unfinished = earlier[: len(earlier) // 3], earlier[len(earlier) // 3 : len(earlier) // 2]
        stale = [replace(run, status="in_progress", conclusion=None) for run in unfinished]

        costs = []
        for name, stored in (("control", []), ("prestored", [*finished, *stale])):
            with SqliteStore(tmp_path / f"{name}.db") as store:
                store.upsert(stored, [])
                before = emulator.usage.snapshot()
                run_sync(emulator, store, repo, "graphql+rest", fast_budget())
                costs.append((emulator.usage.snapshot() - before).rest_requests)
                unknown = assert_same_runs(truth, documents(store.iter_runs(repo)))
        assert unknown == {run.key for run in earlier} - {run.key for run in [*finished, *unfinished]}
        assert costs[1] - costs[0] == len(unfinished)  # one request per attempt stored unfinished, no more
