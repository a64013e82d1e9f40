"""The generated CI history: deterministic, internally consistent, and rich in the cases collectors miss."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from cipulse.emulator.state import World
from cipulse.emulator.truth import Truth
from cipulse.records import Job, WorkflowRun

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
REPO = "octo-org/payments-api"


def make_world(seed: int = 0, jobs: int = 1500) -> World:
    sizes = {REPO: jobs, "octo-org/infra-tools": 300}
    return World(seed=seed, repos=sizes, days=10, failure_rate=0.1, now=NOW)


@pytest.fixture(scope="module")
def truth_jobs() -> list[Job]:
    return Truth(make_world(), "http://emulator").jobs(REPO)


@pytest.fixture(scope="module")
def truth_runs() -> list[WorkflowRun]:
    return Truth(make_world(), "http://emulator").runs(REPO)


def test_same_seed_same_history_and_other_seed_differs() -> None:
    first = Truth(make_world(seed=5, jobs=400), "x").jobs(REPO)
    again = Truth(make_world(seed=5, jobs=400), "x").jobs(REPO)
    other = Truth(make_world(seed=6, jobs=400), "x").jobs(REPO)
    assert first == again
    assert [job.name for job in first] != [job.name for job in other]


def test_size_is_close_to_the_requested_number_of_jobs(truth_jobs: list[Job]) -> None:
    assert 1500 <= len(truth_jobs) <= 1500 + 300


def test_ids_are_unique(truth_jobs: list[Job], truth_runs: list[WorkflowRun]) -> None:
    assert len({job.job_id for job in truth_jobs}) == len(truth_jobs)
    assert len({(run.run_id, run.run_attempt) for run in truth_runs}) == len(truth_runs)


def test_times_are_ordered_and_queue_time_is_real(truth_jobs: list[Job]) -> None:
    waited = 0
    for job in truth_jobs:
        assert job.created_at is not None and job.created_at <= NOW
        assert not job.queue_estimated
        if job.started_at is not None:
            assert job.created_at <= job.started_at <= NOW
            waited += job.started_at > job.created_at
        if job.completed_at is not None:
            assert job.started_at is not None and job.started_at <= job.completed_at
        for step in job.steps:
            if step.started_at is not None:
                assert job.started_at is not None and job.started_at <= step.started_at
            if step.completed_at is not None and job.completed_at is not None:
                assert step.completed_at <= job.completed_at
    assert waited > len(truth_jobs) // 2


def test_history_has_every_state_collectors_get_wrong(truth_jobs: list[Job]) -> None:
    statuses = {job.status for job in truth_jobs}
    conclusions = {job.conclusion for job in truth_jobs}
    assert {"queued", "in_progress", "completed"} <= statuses
    assert {"success", "failure", "cancelled", "skipped"} <= conclusions
    running = [job for job in truth_jobs if job.status == "in_progress"]
    assert any(step.status == "queued" for job in running for step in job.steps)
    assert all(not job.steps for job in truth_jobs if job.status == "queued")


def test_flaky_jobs_fail_then_pass_on_the_same_commit(truth_jobs: list[Job]) -> None:
    by_run: dict[int, list[Job]] = defaultdict(list)
    for job in truth_jobs:
        by_run[job.run_id].append(job)
    flaky = 0
    for jobs in by_run.values():
        attempts = {job.run_attempt for job in jobs}
        if len(attempts) < 2:
            continue
        assert len({job.head_sha for job in jobs}) == 1
        first = {job.name: job.conclusion for job in jobs if job.run_attempt == 1}
        last = {job.name: job.conclusion for job in jobs if job.run_attempt == max(attempts)}
        flaky += any(first[name] == "failure" and last.get(name) == "success" for name in first)
    assert flaky >= 1


def test_a_run_has_more_jobs_than_one_page(truth_jobs: list[Job]) -> None:
    per_attempt: dict[tuple[int, int], int] = defaultdict(int)
    for job in truth_jobs:
        per_attempt[(job.run_id, job.run_attempt)] += 1
    assert max(per_attempt.values()) >= 250


def test_runs_match_their_jobs(truth_runs: list[WorkflowRun], truth_jobs: list[Job]) -> None:
    jobs: dict[tuple[int, int], list[Job]] = defaultdict(list)
    for job in truth_jobs:
        jobs[(job.run_id, job.run_attempt)].append(job)
    for run in truth_runs:
        mine = jobs[(run.run_id, run.run_attempt)]
        if run.status == "completed":
            assert all(job.status == "completed" for job in mine)
            failed = any(job.conclusion in ("failure", "timed_out") for job in mine)
            cancelled = any(job.conclusion == "cancelled" for job in mine)
            assert (run.conclusion == "failure") == (failed and not cancelled)
        else:
            assert run.conclusion is None
        assert run.run_started_at is not None and run.created_at <= run.run_started_at


def test_time_moves_runs_forward() -> None:
    world = make_world(jobs=300)
    truth = Truth(world, "x")
    before = {job.job_id: job for job in truth.jobs(REPO)}
    unfinished = [job for job in before.values() if job.status != "completed"]
    assert unfinished
    world.advance(timedelta(hours=3).total_seconds())
    after = {job.job_id: job for job in truth.jobs(REPO)}
    assert all(after[job.job_id].status == "completed" for job in unfinished)
    assert set(before) <= set(after)


def test_new_activity_appends_runs_after_the_old_ones() -> None:
    world = make_world(jobs=300)
    truth = Truth(world, "x")
    old_runs = truth.runs(REPO)
    newest = max(run.created_at for run in old_runs)
    added = world.add_activity(REPO, runs=5, failure_rate=1.0)
    assert len(added) == 5
    runs = truth.runs(REPO)
    new = [run for run in runs if run.run_id in {plan.run_id for plan in added}]
    assert len({run.run_id for run in new}) == 5
    assert all(run.created_at > newest and run.status == "completed" for run in new)
    assert any(run.conclusion == "failure" for run in new)


def test_failure_rate_is_validated_and_applied() -> None:
    world = make_world(jobs=300)
    with pytest.raises(ValueError, match="between 0 and 1"):
        world.set_failure_rate(REPO, 1.5)
    world.set_failure_rate(REPO, 0.0)
    runs = world.add_activity(REPO, runs=20, failure_rate=None)
    failed = {
        job.name for plan in runs for a in plan.attempts for job in a.jobs if job.conclusion == "failure"
    }
    assert failed <= {"integration"}  # only the flaky job fails when nothing is really broken
    world.set_failure_rate(REPO, 1.0)
    broken = world.add_activity(REPO, runs=10, failure_rate=None)
    assert all(plan.attempts[-1].conclusion in ("failure", "cancelled") for plan in broken)
    with pytest.raises(KeyError, match="no repository"):
        world.add_activity("nobody/nothing", runs=1, failure_rate=None)


def test_live_mode_follows_real_time_and_starts_new_runs() -> None:
    start = datetime.now(UTC) - timedelta(hours=6)
    world = World(seed=1, repos={REPO: 200}, days=2, failure_rate=0.1, now=start)
    truth = Truth(world, "x")
    before = truth.runs(REPO)
    assert any(run.status != "completed" for run in before)
    world.follow_real_time(new_run_every=1.0)
    assert world.clock > start + timedelta(hours=5)
    after = truth.runs(REPO)
    old = {(run.run_id, run.run_attempt) for run in before}
    assert any((run.run_id, run.run_attempt) not in old for run in after)
    assert all(
        r.status == "completed" for r in after if (r.run_id, r.run_attempt) in old and r.created_at < start
    )
