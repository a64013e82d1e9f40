"""Health grading from thresholds; every verdict carries reasons."""

from __future__ import annotations

import pytest

from cipulse.metrics.facts import facts_from_jobs
from cipulse.metrics.health import Health, HealthThresholds, assess_health
from tests.unit.metrics_helpers import at, job

START, END = at(0), at(86_400)


def jobs_with(successes: int, failures: int, queue: int = 5, duration: int = 60, offset: int = 0) -> list:
    made = []
    for index in range(successes + failures):
        begin = offset + index * 600
        made.append(
            job(
                run_id=index + offset,
                queued=begin,
                started=begin + queue,
                completed=begin + queue + duration,
                conclusion="success" if index < successes else "failure",
            )
        )
    return made


def test_healthy_lists_why() -> None:
    health = assess_health(facts_from_jobs(jobs_with(19, 1), None, START, END), HealthThresholds())
    assert health.status == "Healthy"
    assert any("success rate 95.0%" in r for r in health.reasons)
    assert any("queue p95 5s" in r for r in health.reasons)


def test_degraded_and_failing_success_rate() -> None:
    degraded = assess_health(facts_from_jobs(jobs_with(17, 3), None, START, END))
    assert degraded.status == "Degraded"
    assert degraded.reasons == ["success rate 85.0% < 90.0% (3 failed of 20 finished jobs)"]
    failing = assess_health(facts_from_jobs(jobs_with(10, 10), None, START, END))
    assert failing.status == "Failing" and "50.0% < 75.0%" in failing.reasons[0]


def test_too_few_jobs_to_judge() -> None:
    health = assess_health(facts_from_jobs(jobs_with(0, 2), None, START, END))
    assert health.status == "Healthy"
    assert "too few to judge" in health.reasons[0]


def test_empty_window_is_healthy_with_reason() -> None:
    health = assess_health(facts_from_jobs([], None, START, END))
    assert health == Health("Healthy", ["no jobs in the window"])


def test_queue_and_stuck_and_slowdown_reasons_worst_first() -> None:
    facts = facts_from_jobs(jobs_with(20, 0, queue=700), None, START, END)
    previous = facts_from_jobs(jobs_with(20, 0, duration=30), None, START, END)
    health = assess_health(facts, previous=previous, stuck_runs=5)
    assert health.status == "Failing"
    assert health.reasons == [
        "duration p95 grew +100% (30s -> 60s)",
        "5 stuck run(s) queued or in progress beyond the threshold",
        "queue p95 700s >= 600s",
    ]


def test_thresholds_are_configurable_and_validated() -> None:
    facts = facts_from_jobs(jobs_with(17, 3), None, START, END)
    assert assess_health(facts, HealthThresholds(success_rate_degraded=0.8)).status == "Healthy"
    with pytest.raises(ValueError):
        HealthThresholds(success_rate_degraded=0.5, success_rate_failing=0.9)
    with pytest.raises(ValueError):
        Health("Healthy", [])
    with pytest.raises(ValueError):
        Health("Fine", ["x"])  # type: ignore[arg-type]
