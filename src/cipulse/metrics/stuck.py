"""Stuck runs and jobs: queued or in progress for longer than a threshold.

Age is measured from the moment the current state began: creation for queued/waiting/pending/requested,
``run_started_at`` (jobs: ``started_at``) for in-progress, falling back to creation when the start is
missing. A negative age (clock skew between GitHub and us) is never stuck.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from cipulse.records import Job, WorkflowRun

WAITING_STATES: Final = frozenset({"queued", "waiting", "pending", "requested"})


@dataclass(frozen=True, slots=True)
class StuckThresholds:
    queued: timedelta = timedelta(minutes=30)
    in_progress: timedelta = timedelta(hours=6)


@dataclass(frozen=True, slots=True)
class Stuck:
    repository: str
    run_id: int
    run_attempt: int
    job_id: int | None
    name: str
    state: str
    age: timedelta


def _age(state: str, created: datetime | None, started: datetime | None, now: datetime) -> timedelta | None:
    since = created if state in WAITING_STATES else (started or created)
    return None if since is None else now - since


def _limit(state: str, thresholds: StuckThresholds) -> timedelta | None:
    if state in WAITING_STATES:
        return thresholds.queued
    if state == "in_progress":
        return thresholds.in_progress
    return None


def stuck_runs(
    runs: Iterable[WorkflowRun], now: datetime, thresholds: StuckThresholds | None = None
) -> list[Stuck]:
    """Runs whose current state lasted longer than its threshold, oldest first."""
    limits = thresholds or StuckThresholds()
    found = []
    for run in runs:
        limit = _limit(run.status, limits)
        age = _age(run.status, run.created_at, run.run_started_at, now)
        if limit is not None and age is not None and age > limit:
            found.append(
                Stuck(run.repository, run.run_id, run.run_attempt, None, run.workflow_name, run.status, age)
            )
    return sorted(found, key=lambda s: -s.age)


def stuck_jobs(jobs: Iterable[Job], now: datetime, thresholds: StuckThresholds | None = None) -> list[Stuck]:
    """Jobs whose current state lasted longer than its threshold, oldest first."""
    limits = thresholds or StuckThresholds()
    found = []
    for job in jobs:
        limit = _limit(job.status, limits)
        age = _age(job.status, job.created_at, job.started_at, now)
        if limit is not None and age is not None and age > limit:
            found.append(
                Stuck(job.repository, job.run_id, job.run_attempt, job.job_id, job.name, job.status, age)
            )
    return sorted(found, key=lambda s: -s.age)
