"""Outcomes, percentiles, durations, queue time, success rate and cost on hand-computed cases."""

from __future__ import annotations

import pytest

from cipulse.metrics.cost import RunnerRates, cost_usd, labels_key, minutes_by_class, runner_class
from cipulse.metrics.durations import (
    billable_minutes,
    job_clock_skew,
    job_duration,
    run_duration,
    step_duration,
)
from cipulse.metrics.outcome import classify
from cipulse.metrics.percentiles import nearest_rank, nearest_rank_from_counts, percentiles_of, rank
from cipulse.metrics.queue import queue_time
from cipulse.metrics.success import success_rate
from tests.unit.metrics_helpers import at, job, run


@pytest.mark.parametrize(
    ("status", "conclusion", "expected"),
    [
        ("completed", "success", "success"),
        ("completed", "failure", "failure"),
        ("completed", "timed_out", "failure"),
        ("completed", "startup_failure", "failure"),
        ("completed", "cancelled", "cancelled"),
        ("completed", "skipped", "skipped"),
        ("completed", "neutral", "other"),
        ("completed", None, "other"),
        ("in_progress", None, "running"),
        ("queued", None, "running"),
        ("in_progress", "success", "running"),
    ],
)
def test_outcome_classification(status: str, conclusion: str | None, expected: str) -> None:
    assert classify(status, conclusion) == expected


def test_nearest_rank_on_ten_values() -> None:
    values = [15, 20, 35, 40, 50, 60, 70, 80, 90, 100]
    # ranks: p50 -> ceil(5) = 5th, p90 -> 9th, p95 -> ceil(9.5) = 10th
    assert percentiles_of(values) == {50: 50, 90: 90, 95: 100}
    assert rank(50, 10) == 5 and rank(95, 10) == 10 and rank(1, 10) == 1


def test_nearest_rank_small_sets() -> None:
    assert nearest_rank([7], 50) == 7
    assert nearest_rank([], 50) is None
    assert percentiles_of([3, 1]) == {50: 1, 90: 3, 95: 3}
    with pytest.raises(ValueError):
        rank(0, 3)


def test_percentiles_from_counts_equal_sorted_values() -> None:
    values = [5, 5, 5, 9, 1, 1, 30, 12, 12, 12, 12, 100]
    counts: dict[int, int] = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    assert nearest_rank_from_counts(counts.items()) == percentiles_of(values)
    # repeated buckets (e.g. from several shards) are summed
    assert nearest_rank_from_counts([(1, 1), (1, 1), (5, 3)]) == percentiles_of([1, 1, 5, 5, 5])
    assert nearest_rank_from_counts([]) == {50: None, 90: None, 95: None}


def test_job_duration_and_skew() -> None:
    assert job_duration(job(started=10, completed=70)) == 60
    assert job_duration(job(started=10, completed=70.9)) == 60  # floored to whole seconds
    skewed = job(started=100, completed=40)
    assert job_duration(skewed) is None and job_clock_skew(skewed)
    assert job_clock_skew(job(queued=50, started=10, completed=70))
    assert job_duration(job(started=None)) is None
    assert job_duration(job(status="in_progress", conclusion=None, completed=None)) is None


def test_run_duration_falls_back_to_created() -> None:
    assert run_duration(run(created=0, started=5, updated=100)) == 95
    assert run_duration(run(created=0, started=None, updated=100)) == 100
    assert run_duration(run(status="in_progress", conclusion=None)) is None
    assert run_duration(run(created=50, started=None, updated=10)) is None


def test_queue_time_exact_and_estimated() -> None:
    exact = queue_time(job(queued=0, started=42))
    assert exact is not None and exact.seconds == 42 and exact.exact
    estimated = queue_time(job(queued=0, started=42, queue_estimated=True))
    assert estimated is not None and estimated.seconds == 42 and not estimated.exact
    assert queue_time(job(conclusion="skipped")) is None
    assert queue_time(job(queued=None)) is None
    assert queue_time(job(queued=60, started=10)) is None  # started before queued: skew
    running = queue_time(job(status="in_progress", conclusion=None, started=5, completed=None))
    assert running is not None and running.seconds == 5


def test_success_rate_ignores_cancelled_and_skipped() -> None:
    assert success_rate(3, 1) == 0.75
    assert success_rate(0, 0) is None
    assert success_rate(0, 2) == 0.0


def test_billable_minutes_round_up_per_job() -> None:
    assert [billable_minutes(s) for s in (None, 0, 1, 60, 61, 3600)] == [0, 0, 1, 1, 2, 60]


def test_runner_classes_and_cost() -> None:
    assert runner_class(["ubuntu-latest"]) == "linux"
    assert runner_class(["ubuntu-24.04-arm"]) == "linux_arm"
    assert runner_class(["ubuntu-slim"]) == "linux_slim"
    assert runner_class(["windows-2025"]) == "windows"
    assert runner_class(["windows-11-arm"]) == "windows_arm"
    assert runner_class(["macos-14"]) == "macos"
    assert runner_class(["self-hosted", "linux", "x64"]) == "self_hosted"
    assert runner_class([]) == "linux"
    assert runner_class(["big-runner"], {"big-runner": "macos"}) == "macos"
    assert labels_key(["Self-Hosted", "linux", " x64 "]) == "linux,self-hosted,x64"
    folded = minutes_by_class({"ubuntu-latest": 10, "macos-14": 3, "self-hosted,x64": 100, "": 2})
    assert folded == {"linux": 12, "macos": 3, "self_hosted": 100}
    # 12 * 0.006 + 3 * 0.062 + 100 * 0
    assert cost_usd(folded) == pytest.approx(0.258, abs=1e-9)
    old = RunnerRates(per_minute_usd={"linux": 0.008, "windows": 0.016, "macos": 0.08})
    assert cost_usd({"linux": 10, "windows": 10, "macos": 1}, old) == pytest.approx(0.32)
    # unknown classes are priced as Linux, never free
    assert old.rate("linux_arm") == 0.008
    assert at(0).tzinfo is not None


def test_step_duration() -> None:
    from cipulse.records import Step

    done = Step(1, 1, "Run tests", "completed", "success", at(10), at(95.5))
    assert step_duration(done) == 85
    assert step_duration(Step(1, 2, "Deploy", "in_progress", None, at(10), None)) is None
    assert step_duration(Step(1, 3, "Skewed", "completed", "success", at(10), at(5))) is None
