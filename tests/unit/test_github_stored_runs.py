"""What counts as "already stored": the decision that lets a resumed or nothing-new sync skip work."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cipulse.github.stored_runs import StoredRuns, VerifiedRuns
from cipulse.records import Job, WorkflowRun

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def run(run_id: int, attempt: int, status: str, updated: datetime) -> WorkflowRun:
    return WorkflowRun(
        repository="o/r", run_id=run_id, run_attempt=attempt, run_number=1, workflow_id=1, workflow_name="CI",
        event="push", head_sha="abc", head_branch="main", status=status,
        conclusion="success" if status == "completed" else None,
        created_at=T0, run_started_at=T0, updated_at=updated,
    )  # fmt: skip


def job(job_id: int, run_id: int, status: str) -> Job:
    return Job(
        repository="o/r", run_id=run_id, run_attempt=1, job_id=job_id, name=f"j{job_id}", workflow_name="CI",
        head_sha="abc", head_branch="main", status=status, conclusion=None, created_at=T0, started_at=None,
        completed_at=None,
    )  # fmt: skip


def test_known_needs_the_same_update_time_and_job_count() -> None:
    stored = StoredRuns({})
    assert not stored.is_known(1, T0)
    stored.remember([run(1, 1, "completed", T0)], [job(10, 1, "completed"), job(11, 1, "completed")])
    assert stored.is_known(1, T0)
    assert stored.is_known(1, T0, job_count=2, completed=True)
    assert not stored.is_known(1, T0 + timedelta(seconds=1))  # changed since: a re-run or progress
    assert not stored.is_known(1, T0, job_count=3)  # a job delivery was lost
    assert not stored.is_known(1, None)


def test_a_completed_run_with_open_jobs_is_not_known() -> None:
    stored = StoredRuns({})
    stored.remember([run(2, 1, "completed", T0)], [job(20, 2, "completed"), job(21, 2, "in_progress")])
    assert stored.is_known(2, T0)  # fine while GitHub still reports the run as running
    assert not stored.is_known(2, T0, completed=True)  # the `completed` job delivery never came


def test_the_latest_attempt_decides() -> None:
    stored = StoredRuns({})
    stored.remember([run(3, 2, "completed", T0 + timedelta(hours=1))], [])
    stored.remember([run(3, 1, "completed", T0)], [])  # an older attempt arriving later does not win
    assert stored.is_known(3, T0 + timedelta(hours=1))
    assert not stored.is_known(3, T0)


def test_verified_runs_are_bounded() -> None:
    verified = VerifiedRuns(capacity=2)
    for run_id in range(3):
        verified.add("o/r", run_id, T0)
    assert ("o/r", 0, T0) not in verified
    assert ("o/r", 2, T0) in verified


def test_a_lost_delivery_for_an_earlier_attempt_is_noticed() -> None:
    later = T0 + timedelta(hours=1)
    stored = StoredRuns({})
    # Attempt 1's `completed` delivery was lost: its record still says in_progress.
    stored.remember([run(4, 1, "in_progress", T0), run(4, 2, "completed", later)], [])
    assert stored.is_known(4, later)
    assert not stored.is_known(4, later, completed=True)
    missing_attempt = StoredRuns({})
    missing_attempt.remember([run(5, 2, "completed", later)], [])  # no record of attempt 1 at all
    assert not missing_attempt.is_known(5, later, completed=True)
    whole = StoredRuns({})
    whole.remember([run(6, 1, "completed", T0), run(6, 2, "completed", later)], [])
    assert whole.is_known(6, later, completed=True)
