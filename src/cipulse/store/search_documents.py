"""Records <-> search documents: the record's own fields plus the `metrics.derive` values next to them.

Deriving at write time (exactly as SqliteStore does) is what lets window facts be plain engine
aggregations that agree with SQLite to the last integer.

Writes go straight from a record to the document's JSON bytes (`job_source`, `run_source`): ingest spends
its Python time here. Fields are listed one by one rather than through `records.to_document` (the generic
converter costs several times more), and timestamps stay `datetime`s until orjson spells them in C as
`records.to_document` does (ISO 8601, UTC, "Z", microseconds only when there are some). The dict forms
(`job_document`, `run_document`) are those bytes decoded, so there is one spelling of a document.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Final

import orjson

from cipulse.metrics.derive import derive_job
from cipulse.metrics.durations import run_duration
from cipulse.records import Job, WorkflowRun, job_from_document, run_from_document

# naive datetimes are taken as UTC (like parse_time); UTC is spelled "Z"
JSON_OPTIONS: Final = orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC


def job_source(job: Job) -> bytes:
    """The job's document as JSON."""
    derived = derive_job(job)
    document = {
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
        "created_at": _utc(job.created_at),
        "started_at": _utc(job.started_at),
        "completed_at": _utc(job.completed_at),
        "queue_estimated": job.queue_estimated,
        "runner_name": job.runner_name,
        "runner_labels": job.runner_labels,
        "steps": [
            {  # job_id is implied by the job: restored on read
                "number": step.number,
                "name": step.name,
                "status": step.status,
                "conclusion": step.conclusion,
                "started_at": _utc(step.started_at),
                "completed_at": _utc(step.completed_at),
            }
            for step in job.steps
        ],
        "window_at": _utc(derived.window_at),
        "outcome": derived.outcome,
        "duration_s": derived.duration_s,
        "queue_s": derived.queue_s,
        "queue_exact": derived.queue_exact,
        "clock_skew": derived.clock_skew,
        "billable_minutes": derived.billable_minutes,
        "labels_key": derived.labels_key,
    }
    return _dumps(document)


def run_source(run: WorkflowRun) -> bytes:
    document = {
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
        "created_at": _utc(run.created_at),
        "run_started_at": _utc(run.run_started_at),
        "updated_at": _utc(run.updated_at),
        "actor": run.actor,
        "html_url": run.html_url,
        "pull_request_numbers": run.pull_request_numbers,
        "duration_s": run_duration(run),
    }
    return _dumps(document)


def job_document(job: Job) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(job_source(job))
    return document


def run_document(run: WorkflowRun) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(run_source(run))
    return document


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


def _dumps(document: dict[str, Any]) -> bytes:
    """orjson refuses integers beyond 64 bits; the standard encoder writes them, so that the engine
    rejects that one document with its own reason (`BulkItemsFailed`) while the rest is written."""
    try:
        return orjson.dumps(document, option=JSON_OPTIONS)
    except orjson.JSONEncodeError:
        return json.dumps(document, separators=(",", ":"), default=_time_text).encode()


def _time_text(value: object) -> str | None:
    if isinstance(value, datetime):
        return to_document_time(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _utc(value: datetime | None) -> datetime | None:
    """Records hold UTC (or naive, meaning UTC) times; any other offset is converted so that the stored
    spelling is always "Z". The identity test keeps the common case free."""
    if value is None or value.tzinfo is UTC or value.tzinfo is None:
        return value
    return value.astimezone(UTC)
