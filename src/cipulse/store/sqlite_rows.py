"""Conversion between records and SQLite rows: integer microseconds for time, JSON for small lists.

Only raw record fields are converted here; derived values are generated columns (see `migrations`), so
the per-record Python cost of an upsert stays a tuple build. Label lists repeat across jobs, so their text
forms are memoised.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, Final

from cipulse.metrics.cost import labels_key
from cipulse.records import Job, Step, WorkflowRun

EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
ONE_MICROSECOND: Final = timedelta(microseconds=1)

RUN_COLUMNS: Final = (
    "repository, run_id, run_attempt, run_number, workflow_id, workflow_name, event, head_sha, head_branch, "
    "status, conclusion, created_at, run_started_at, updated_at, actor, html_url, pull_request_numbers"
)
JOB_COLUMNS: Final = (
    "repository, job_id, run_id, run_attempt, name, workflow_name, head_sha, head_branch, status, "
    "conclusion, created_at, started_at, completed_at, queue_estimated, runner_name, runner_labels, "
    "labels_key"
)
STEP_COLUMNS: Final = "repository, job_id, number, name, status, conclusion, started_at, completed_at"
INSERT_RUN: Final = f"INSERT OR REPLACE INTO runs ({RUN_COLUMNS}) VALUES ({', '.join('?' * 17)})"
INSERT_JOB: Final = f"INSERT OR REPLACE INTO jobs ({JOB_COLUMNS}) VALUES ({', '.join('?' * 17)})"
INSERT_STEP: Final = f"INSERT OR REPLACE INTO steps ({STEP_COLUMNS}) VALUES ({', '.join('?' * 8)})"


def to_micros(value: datetime | None) -> int | None:
    if value is None:
        return None
    return (value - EPOCH) // ONE_MICROSECOND


def from_micros(value: int | None) -> datetime | None:
    if value is None:
        return None
    return EPOCH + timedelta(microseconds=value)


@lru_cache(maxsize=4096)
def _labels_text(labels: tuple[str, ...]) -> tuple[str, str]:
    return json.dumps(list(labels)), labels_key(labels)


@lru_cache(maxsize=4096)
def _numbers_text(numbers: tuple[int, ...]) -> str:
    return json.dumps(list(numbers))


def run_row(run: WorkflowRun) -> tuple[Any, ...]:
    return (
        run.repository,
        run.run_id,
        run.run_attempt,
        run.run_number,
        run.workflow_id,
        run.workflow_name,
        run.event,
        run.head_sha,
        run.head_branch,
        run.status,
        run.conclusion,
        to_micros(run.created_at),
        to_micros(run.run_started_at),
        to_micros(run.updated_at),
        run.actor,
        run.html_url,
        _numbers_text(run.pull_request_numbers),
    )


def job_row(job: Job) -> tuple[Any, ...]:
    labels_json, key = _labels_text(job.runner_labels)
    return (
        job.repository,
        job.job_id,
        job.run_id,
        job.run_attempt,
        job.name,
        job.workflow_name,
        job.head_sha,
        job.head_branch,
        job.status,
        job.conclusion,
        to_micros(job.created_at),
        to_micros(job.started_at),
        to_micros(job.completed_at),
        job.queue_estimated,
        job.runner_name,
        labels_json,
        key,
    )


def step_rows(job: Job) -> list[tuple[Any, ...]]:
    return [
        (
            job.repository,
            job.job_id,
            step.number,
            step.name,
            step.status,
            step.conclusion,
            to_micros(step.started_at),
            to_micros(step.completed_at),
        )
        for step in job.steps
    ]


def run_from_row(row: sqlite3.Row) -> WorkflowRun:
    created = from_micros(row["created_at"])
    if created is None:
        raise ValueError("stored run without created_at")
    return WorkflowRun(
        repository=row["repository"],
        run_id=row["run_id"],
        run_attempt=row["run_attempt"],
        run_number=row["run_number"],
        workflow_id=row["workflow_id"],
        workflow_name=row["workflow_name"],
        event=row["event"],
        head_sha=row["head_sha"],
        head_branch=row["head_branch"],
        status=row["status"],
        conclusion=row["conclusion"],
        created_at=created,
        run_started_at=from_micros(row["run_started_at"]),
        updated_at=from_micros(row["updated_at"]),
        actor=row["actor"],
        html_url=row["html_url"],
        pull_request_numbers=tuple(json.loads(row["pull_request_numbers"])),
    )


def step_from_row(row: sqlite3.Row) -> Step:
    return Step(
        job_id=row["job_id"],
        number=row["number"],
        name=row["name"],
        status=row["status"],
        conclusion=row["conclusion"],
        started_at=from_micros(row["started_at"]),
        completed_at=from_micros(row["completed_at"]),
    )


def job_from_row(row: sqlite3.Row, steps: tuple[Step, ...]) -> Job:
    return Job(
        repository=row["repository"],
        run_id=row["run_id"],
        run_attempt=row["run_attempt"],
        job_id=row["job_id"],
        name=row["name"],
        workflow_name=row["workflow_name"],
        head_sha=row["head_sha"],
        head_branch=row["head_branch"],
        status=row["status"],
        conclusion=row["conclusion"],
        created_at=from_micros(row["created_at"]),
        started_at=from_micros(row["started_at"]),
        completed_at=from_micros(row["completed_at"]),
        queue_estimated=bool(row["queue_estimated"]),
        runner_name=row["runner_name"],
        runner_labels=tuple(json.loads(row["runner_labels"])),
        steps=steps,
    )
