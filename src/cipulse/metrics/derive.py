"""The per-job values every store indexes next to the record, so aggregates are sums, counts and value counts.

Defining them once, here, is what makes the stores agree exactly: the search store indexes these values,
SQLite computes the same expressions as generated columns (`cipulse.store.migrations`), and the store
tests hold every store's window facts equal to `facts.facts_from_jobs`, which uses this module. Fields:

- ``window_at``: the instant that places the job in a time window: ``created_at`` (queued), else
  ``started_at``, else ``completed_at``; None (job in no window) when all three are missing.
- ``outcome``: `outcome.classify` of (status, conclusion).
- ``duration_s``: `durations.job_duration` (whole seconds; None if running, missing or skewed).
- ``queue_s`` / ``queue_exact``: `queue.queue_time` (None/False if unknown).
- ``clock_skew``: `durations.job_clock_skew`.
- ``billable_minutes``: `durations.billable_minutes` of ``duration_s``.
- ``labels_key``: `cost.labels_key` of the runner labels (pricing happens at query time).
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from cipulse.metrics.cost import labels_key
from cipulse.metrics.durations import billable_minutes, job_clock_skew, job_duration
from cipulse.metrics.outcome import Outcome, classify
from cipulse.metrics.queue import queue_time
from cipulse.records import Job


class DerivedJob(NamedTuple):  # a tuple: built for every job a store writes, at a third of a dataclass's cost
    window_at: datetime | None
    outcome: Outcome
    duration_s: int | None
    queue_s: int | None
    queue_exact: bool
    clock_skew: bool
    billable_minutes: int
    labels_key: str


def job_window_time(job: Job) -> datetime | None:
    """When a job happened, for windowing: queued, else started, else completed."""
    return job.created_at or job.started_at or job.completed_at


def derive_job(job: Job) -> DerivedJob:
    duration = job_duration(job)
    queue = queue_time(job)
    return DerivedJob(
        window_at=job_window_time(job),
        outcome=classify(job.status, job.conclusion),
        duration_s=duration,
        queue_s=None if queue is None else queue.seconds,
        queue_exact=False if queue is None else queue.exact,
        clock_skew=job_clock_skew(job),
        billable_minutes=billable_minutes(duration),
        labels_key=labels_key(job.runner_labels),
    )
