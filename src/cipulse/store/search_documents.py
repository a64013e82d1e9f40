"""Records <-> search documents: the record's own fields plus the `metrics.derive` values next to them.

Deriving at write time (exactly as SqliteStore does) is what lets window facts be plain engine
aggregations that agree with SQLite to the last integer.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from cipulse.metrics.derive import derive_job
from cipulse.metrics.durations import run_duration
from cipulse.records import Job, WorkflowRun, job_from_document, run_from_document, to_document


def job_document(job: Job) -> dict[str, Any]:
    document = to_document(job)
    for step in document["steps"]:
        del step["job_id"]  # implied by the job; restored on read
    derived = derive_job(job)
    document.update(
        window_at=to_document_time(derived.window_at),
        outcome=derived.outcome,
        duration_s=derived.duration_s,
        queue_s=derived.queue_s,
        queue_exact=derived.queue_exact,
        clock_skew=derived.clock_skew,
        billable_minutes=derived.billable_minutes,
        labels_key=derived.labels_key,
    )
    return document


def run_document(run: WorkflowRun) -> dict[str, Any]:
    document = to_document(run)
    document["duration_s"] = run_duration(run)
    return document


def job_from_source(source: dict[str, Any]) -> Job:
    steps = [{**step, "job_id": source["job_id"]} for step in source.get("steps") or ()]
    return job_from_document({**source, "steps": steps})


def run_from_source(source: dict[str, Any]) -> WorkflowRun:
    return run_from_document(source)


def to_document_time(value: datetime | None) -> str | None:
    """A timestamp spelled as `records.to_document` spells them (ISO 8601, UTC, "Z")."""
    return None if value is None else value.astimezone(UTC).isoformat().replace("+00:00", "Z")
