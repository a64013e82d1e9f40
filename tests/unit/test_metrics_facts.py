"""Window facts on a hand-computed population (the reference every store is compared with)."""

from __future__ import annotations

import pytest

from cipulse.metrics.facts import facts_from_jobs
from tests.unit.metrics_helpers import at, job

START, END = at(0), at(3600)


def population() -> list:
    return [
        # CI/test on main: run 1 attempt 1 failed, attempt 2 (re-run) passed
        job(run_id=1, run_attempt=1, queued=0, started=10, completed=70, conclusion="failure"),
        job(run_id=1, run_attempt=2, queued=100, started=130, completed=250, conclusion="success"),
        # cancelled after 30 s: counts, bills minutes, but no verdict and no duration percentile
        job(run_id=2, queued=200, started=200, completed=230, conclusion="cancelled"),
        # skipped: no queue time, zero duration
        job(run_id=3, queued=300, started=300, completed=300, conclusion="skipped"),
        # still running, started: queue time known, no duration
        job(run_id=4, queued=400, started=460, completed=None, status="in_progress", conclusion=None),
        # clock skew: completed before started -> no duration, counted as skew, still a success
        job(run_id=5, queued=500, started=520, completed=510, conclusion="success"),
        # missing started_at: no duration, no queue time
        job(run_id=6, queued=600, started=None, completed=700, conclusion="success"),
        # estimated queue time, macOS, another job name, no branch
        job(
            run_id=7,
            name="build",
            head_branch=None,
            queued=700,
            started=790,
            completed=900,
            conclusion="timed_out",
            queue_estimated=True,
            runner_labels=("macos-14",),
        ),
        # outside the window (end is exclusive) and another repository's job
        job(run_id=8, queued=3600, started=3601, completed=3700),
        job(run_id=9, repository="octo/other", queued=10, started=20, completed=80),
        # no timestamps at all: in no window
        job(run_id=10, queued=None, started=None, completed=None, status="queued", conclusion=None),
    ]


def test_overall_facts_hand_computed() -> None:
    facts = facts_from_jobs(population(), "octo/app", START, END)
    o = facts.overall
    counts = (o.total, o.success, o.failure, o.cancelled, o.skipped, o.other, o.running)
    assert counts == (8, 3, 2, 1, 1, 0, 1)
    assert o.success_rate == pytest.approx(3 / 5)
    # durations of success/failure with known duration: 60 (fail), 120 (re-run pass), 110 (timed_out)
    assert o.duration_count == 3
    assert (o.duration_p50, o.duration_p90, o.duration_p95) == (110, 120, 120)
    # queue: 10, 30, 0 (cancelled), 60 (running), 20 (skewed job's queue is fine), 90 (estimated)
    assert o.queue_count == 6 and o.queue_exact_count == 5 and o.queue_estimated_count == 1
    assert (o.queue_p50, o.queue_p90, o.queue_p95) == (20, 90, 90)
    assert o.clock_skew_count == 1
    # job seconds: 60 + 120 + 30 + 0 + 110 (all completed jobs with a duration)
    assert o.job_seconds == 320 and o.job_minutes == pytest.approx(5.333)
    # billable: 1 + 2 + 1 + 0 on linux, 2 on macOS
    assert o.minutes_by_runner == {"linux": 4, "macos": 2} and o.billable_minutes == 6
    assert o.cost_usd == pytest.approx(4 * 0.006 + 2 * 0.062)


def test_group_rows() -> None:
    facts = facts_from_jobs(population(), None, START, END)
    assert [r.repository for r in facts.repositories] == ["octo/app", "octo/other"]
    assert [(r.workflow, r.job) for r in facts.jobs if r.repository == "octo/app"] == [
        ("CI", "build"),
        ("CI", "test"),
    ]
    test_row = next(r for r in facts.jobs if r.job == "test")
    assert test_row.total == 7 and test_row.success_rate == pytest.approx(3 / 4)
    build_row = next(r for r in facts.jobs if r.job == "build")
    assert build_row.failure == 1 and build_row.success_rate == 0.0
    # the job without a branch is left out of branch rows only
    main = next(r for r in facts.branches if r.repository == "octo/app")
    assert main.branch == "main" and main.total == 7
    assert facts.overall.total == 9


def test_empty_window() -> None:
    facts = facts_from_jobs(population(), "octo/app", at(10_000), at(20_000))
    assert facts.is_empty
    o = facts.overall
    assert o.total == 0 and o.success_rate is None and o.duration_p95 is None and o.queue_p50 is None
    assert o.cost_usd == 0 and o.minutes_by_runner == {}
    assert facts.jobs == () and facts.branches == ()


def test_window_bounds_must_be_aware_and_ordered() -> None:
    with pytest.raises(ValueError):
        facts_from_jobs([], None, END, START)
    with pytest.raises(ValueError):
        facts_from_jobs([], None, START.replace(tzinfo=None), END)


def test_to_dict_is_json_ready() -> None:
    import json

    text = json.dumps(facts_from_jobs(population(), None, START, END).to_dict())
    assert '"duration_p95": 120' in text
