"""Durations of runs, jobs and steps in whole seconds, with clock skew and missing timestamps made explicit.

GitHub timestamps have one-second resolution, so whole seconds lose nothing and keep percentiles exact
(see `percentiles`). A duration is ``floor(end - start)`` in seconds; it is ``None`` when either timestamp is
missing, the record has not completed, or the clock is skewed (end before start): a negative duration is a
data error, never a fast job, so it is excluded from every statistic and counted as skew instead.
"""

from __future__ import annotations

import math
from datetime import datetime

from cipulse.records import Job, Step, WorkflowRun


def whole_seconds(start: datetime | None, end: datetime | None) -> int | None:
    """Seconds from start to end (floored); None if a side is missing or end is before start."""
    if start is None or end is None:
        return None
    seconds = (end - start).total_seconds()
    if seconds < 0:
        return None
    return math.floor(seconds)


def is_skewed(start: datetime | None, end: datetime | None) -> bool:
    """True when both timestamps exist and end lies before start."""
    return start is not None and end is not None and end < start


def job_duration(job: Job) -> int | None:
    """Execution time of a completed job attempt (started -> completed)."""
    if job.status != "completed":
        return None
    return whole_seconds(job.started_at, job.completed_at)


def job_clock_skew(job: Job) -> bool:
    """A job whose timestamps contradict each other (completed before started, or started before queued)."""
    return is_skewed(job.started_at, job.completed_at) or is_skewed(job.created_at, job.started_at)


def run_duration(run: WorkflowRun) -> int | None:
    """Wall time of a completed run attempt (run_started_at, else created_at -> updated_at)."""
    if run.status != "completed":
        return None
    return whole_seconds(run.run_started_at or run.created_at, run.updated_at)


def step_duration(step: Step) -> int | None:
    """Execution time of a completed step."""
    if step.status != "completed":
        return None
    return whole_seconds(step.started_at, step.completed_at)


def billable_minutes(duration_seconds: int | None) -> int:
    """GitHub bills each job rounded up to the whole minute; unknown or zero durations bill nothing."""
    if not duration_seconds:
        return 0
    return -(-duration_seconds // 60)
