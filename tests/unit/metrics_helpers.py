"""Small builders for hand-computed metric cases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from cipulse.records import Job, WorkflowRun

T0 = datetime(2026, 3, 2, 12, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


_job_ids = iter(range(1, 10_000_000))


def job(
    *,
    queued: float | None = 0,
    started: float | None = 10,
    completed: float | None = 70,
    conclusion: str | None = "success",
    status: str = "completed",
    **overrides: Any,
) -> Job:
    fields: dict[str, Any] = {
        "repository": "octo/app",
        "run_id": 1,
        "run_attempt": 1,
        "job_id": next(_job_ids),
        "name": "test",
        "workflow_name": "CI",
        "head_sha": "a" * 40,
        "head_branch": "main",
        "status": status,
        "conclusion": conclusion,
        "created_at": None if queued is None else at(queued),
        "started_at": None if started is None else at(started),
        "completed_at": None if completed is None else at(completed),
        "runner_labels": ("ubuntu-latest",),
    }
    fields.update(overrides)
    return Job(**fields)


def run(
    *, created: float = 0, started: float | None = 5, updated: float | None = 100, **overrides: Any
) -> WorkflowRun:
    fields: dict[str, Any] = {
        "repository": "octo/app",
        "run_id": 1,
        "run_attempt": 1,
        "run_number": 1,
        "workflow_id": 7,
        "workflow_name": "CI",
        "event": "push",
        "head_sha": "a" * 40,
        "head_branch": "main",
        "status": "completed",
        "conclusion": "success",
        "created_at": at(created),
        "run_started_at": None if started is None else at(started),
        "updated_at": None if updated is None else at(updated),
    }
    fields.update(overrides)
    return WorkflowRun(**fields)
