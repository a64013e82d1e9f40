"""Flaky jobs, stuck runs, week-over-week change and change points."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from cipulse.metrics.facts import facts_from_jobs
from cipulse.metrics.flaky import flaky_commits, flaky_jobs
from cipulse.metrics.stuck import StuckThresholds, stuck_jobs, stuck_runs
from cipulse.metrics.trends import change_points, week_over_week
from tests.unit.metrics_helpers import at, job, run


def test_rerun_recovery_is_flaky() -> None:
    jobs = [
        job(run_id=1, run_attempt=1, conclusion="failure"),
        job(run_id=1, run_attempt=2, conclusion="success"),
    ]
    (found,) = flaky_commits(jobs)
    assert (found.successes, found.failures, found.evidence) == (1, 1, "rerun_recovered")


def test_mixed_conclusions_across_runs_of_a_commit() -> None:
    jobs = [
        job(run_id=1, conclusion="success"),
        job(run_id=2, conclusion="timed_out"),
    ]
    assert [c.evidence for c in flaky_commits(jobs)] == ["mixed_on_commit"]


def test_not_flaky_cases() -> None:
    jobs = [
        # failing twice is a plain failure; cancelled is no verdict; different job names never mix;
        # a running attempt is no verdict
        job(run_id=1, run_attempt=1, conclusion="failure", head_sha="b" * 40),
        job(run_id=1, run_attempt=2, conclusion="failure", head_sha="b" * 40),
        job(run_id=2, conclusion="cancelled", head_sha="c" * 40),
        job(run_id=2, run_attempt=2, conclusion="success", head_sha="c" * 40),
        job(run_id=3, conclusion="failure", head_sha="d" * 40, name="lint"),
        job(run_id=3, conclusion="success", head_sha="d" * 40, name="test"),
        job(run_id=4, status="in_progress", conclusion=None, head_sha="e" * 40),
        job(run_id=4, run_attempt=2, conclusion="failure", head_sha="e" * 40),
    ]
    assert flaky_commits(jobs) == []


def test_flaky_job_summary() -> None:
    jobs = [
        job(run_id=1, run_attempt=1, conclusion="failure", head_sha="1" * 40),
        job(run_id=1, run_attempt=2, conclusion="success", head_sha="1" * 40),
        job(run_id=2, conclusion="success", head_sha="2" * 40),
        job(run_id=3, conclusion="success", head_sha="3" * 40),
        job(run_id=4, conclusion="failure", head_sha="4" * 40),
    ]
    (summary,) = flaky_jobs(jobs)
    assert (summary.commits, summary.flaky_commits, summary.rerun_recoveries) == (4, 1, 1)
    assert summary.flake_rate == 0.25


def test_stuck_runs_and_jobs() -> None:
    now = at(10 * 3600)
    runs = [
        run(run_id=1, status="queued", conclusion=None, created=0, updated=None),  # queued 10 h
        run(run_id=2, status="in_progress", conclusion=None, created=0, started=8 * 3600, updated=None),
        run(run_id=3, status="in_progress", conclusion=None, created=0, started=3 * 3600, updated=None),
        run(run_id=4, status="completed", created=0),
        run(run_id=5, status="queued", conclusion=None, created=11 * 3600, updated=None),  # clock skew
    ]
    found = stuck_runs(runs, now)
    assert [(s.run_id, s.state) for s in found] == [(1, "queued"), (3, "in_progress")]
    assert found[0].age == timedelta(hours=10)
    strict_limits = StuckThresholds(queued=timedelta(hours=11), in_progress=timedelta(hours=1))
    strict = stuck_runs(runs, now, strict_limits)
    assert [s.run_id for s in strict] == [3, 2]
    jobs = [
        job(status="queued", conclusion=None, queued=0, started=None, completed=None),
        job(status="in_progress", conclusion=None, queued=0, started=None, completed=None),
        job(queued=0),
    ]
    assert [s.state for s in stuck_jobs(jobs, now)] == ["queued", "in_progress"]


def test_week_over_week() -> None:
    week1 = [job(run_id=i, queued=i * 100, started=i * 100 + 5, completed=i * 100 + 65) for i in range(4)]
    week2 = [job(run_id=i, queued=i * 100, started=i * 100 + 5, completed=i * 100 + 125) for i in range(4)]
    week2.append(job(run_id=9, queued=900, started=905, completed=965, conclusion="failure"))
    before = facts_from_jobs(week1, None, at(0), at(7 * 86400)).overall
    after = facts_from_jobs(week2, None, at(0), at(7 * 86400)).overall
    changes = {c.metric: c for c in week_over_week(after, before)}
    assert changes["duration_p50"].previous == 60 and changes["duration_p50"].current == 120
    assert changes["duration_p50"].relative == pytest.approx(1.0)
    assert changes["success_rate"].absolute == pytest.approx(-0.2)
    assert changes["total"].absolute == 1


def test_change_point_in_durations() -> None:
    rng = random.Random(3)
    values = [rng.gauss(300, 10) for _ in range(40)] + [rng.gauss(420, 10) for _ in range(40)]
    times = [at(i * 3600) for i in range(80)]
    (point,) = change_points(values, times)
    assert 38 <= point.index <= 42
    assert point.at == times[point.index]
    assert point.mean_before == pytest.approx(300, abs=10) and point.mean_after == pytest.approx(420, abs=10)


def test_no_change_point_in_noise_or_short_series() -> None:
    rng = random.Random(4)
    assert change_points([rng.gauss(300, 10) for _ in range(80)]) == []
    assert change_points([1.0, 2.0, 50.0]) == []


def test_change_point_in_failure_rate() -> None:
    # daily failure rates: ~5% for 20 days, then ~40%
    rng = random.Random(5)
    rates = [rng.choice((0.0, 0.05, 0.1)) for _ in range(20)]
    rates += [rng.choice((0.35, 0.4, 0.45)) for _ in range(20)]
    points = change_points(rates)
    assert [p.index for p in points] == [20]
