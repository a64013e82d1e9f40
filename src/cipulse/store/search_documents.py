"""Records <-> search documents: the record's own fields plus the `metrics.derive` values next to them.

Deriving at write time (exactly as SqliteStore does) is what lets window facts be plain engine
aggregations that agree with SQLite to the last integer.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from cipulse.metrics.derive import derive_job
from cipulse.metrics.durations import run_duration
from cipulse.records import Job, WorkflowRun, job_from_document, run_from_document


def job_document(job: Job) -> dict[str, Any]:
    """Field by field rather than through `records.to_document`: ingest spends its time here, and the
    generic converter costs several times more. A unit test keeps both spellings equal."""
    derived = derive_job(job)
    return {
        "repository": job.repository,
        "run_id": job.run_id,
        "run_attempt": job.run_attempt,
        "job_id": job.job_id,
        "name": job.name,
        "workflow_name": job.workflow_name,
        "head_sha": job.head_sha,
        "head_branch": job.head_branch,
        "status": job.status,
        "conclusion": job.conclusion,
        "created_at": to_document_time(job.created_at),
        "started_at": to_document_time(job.started_at),
        "completed_at": to_document_time(job.completed_at),
        "queue_estimated": job.queue_estimated,
        "runner_name": job.runner_name,
        "runner_labels": list(job.runner_labels),
        "steps": [
            {  # job_id is implied by the job: restored on read
                "number": step.number,
                "name": step.name,
                "status": step.status,
                "conclusion": step.conclusion,
                "started_at": to_document_time(step.started_at),
                "completed_at": to_document_time(step.completed_at),
            }
            for step in job.steps
        ],
        "window_at": to_document_time(derived.window_at),
        "outcome": derived.outcome,
        "duration_s": derived.duration_s,
        "queue_s": derived.queue_s,
        "queue_exact": derived.queue_exact,
        "clock_skew": derived.clock_skew,
        "billable_minutes": derived.billable_minutes,
        "labels_key": derived.labels_key,
    }


def run_document(run: WorkflowRun) -> dict[str, Any]:
    return {
        "repository": run.repository,
        "run_id": run.run_id,
        "run_attempt": run.run_attempt,
        "run_number": run.run_number,
        "workflow_id": run.workflow_id,
        "workflow_name": run.workflow_name,
        "event": run.event,
        "head_sha": run.head_sha,
        "head_branch": run.head_branch,
        "status": run.status,
        "conclusion": run.conclusion,
        "created_at": to_document_time(run.created_at),
        "run_started_at": to_document_time(run.run_started_at),
        "updated_at": to_document_time(run.updated_at),
        "actor": run.actor,
        "html_url": run.html_url,
        "pull_request_numbers": list(run.pull_request_numbers),
        "duration_s": run_duration(run),
    }


def job_from_source(source: dict[str, Any]) -> Job:
    steps = [{**step, "job_id": source["job_id"]} for step in source.get("steps") or ()]
    return job_from_document({**source, "steps": steps})


def run_from_source(source: dict[str, Any]) -> WorkflowRun:
    return run_from_document(source)


def to_document_time(value: datetime | None) -> str | None:
    """A timestamp spelled as `records.to_document` spells them (ISO 8601, UTC, "Z")."""
    if value is None:
        return None
    if value.tzinfo is None:  # records are timezone-aware; a naive time is taken as UTC, like parse_time
        value = value.replace(tzinfo=UTC)
    elif value.utcoffset():
        value = value.astimezone(UTC)
    return value.isoformat().replace("+00:00", "Z")
