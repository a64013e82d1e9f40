"""Queue time per job attempt: how long a job waited for a runner (started_at - created_at).

Exact when GitHub reported the job's creation time (REST jobs API, ``workflow_job`` webhook); estimated when
the collector had to infer ``created_at`` (GraphQL check runs have no creation time): ``Job.queue_estimated``.
Skipped jobs never waited for a runner, so they have no queue time. Running jobs that already started do.
"""

from __future__ import annotations

from typing import NamedTuple

from cipulse.metrics.durations import whole_seconds
from cipulse.records import SKIPPED, Job


class QueueTime(NamedTuple):  # a tuple: one per job written, cheaper to build than a dataclass
    seconds: int
    exact: bool


def queue_time(job: Job) -> QueueTime | None:
    """Queue time of one job attempt; None when unknown (missing timestamps, skew, skipped, not started)."""
    if job.conclusion == SKIPPED:
        return None
    seconds = whole_seconds(job.created_at, job.started_at)
    if seconds is None:
        return None
    return QueueTime(seconds=seconds, exact=not job.queue_estimated)
