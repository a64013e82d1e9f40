"""Typed domain records shared by every part of cipulse.

Identities come from GitHub's own ids so that collecting the same thing twice overwrites instead of
duplicating: a run attempt is (repository, run_id, run_attempt), a job attempt is its job_id (GitHub
gives every attempt of a job a new job id), a step is (job_id, number).
All timestamps are timezone-aware UTC datetimes, or None when GitHub has not reported them yet.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

# GitHub's check/run conclusions. "neutral", "stale", "action_required", "startup_failure" also occur.
SUCCESS = "success"
FAILURE = "failure"
CANCELLED = "cancelled"
SKIPPED = "skipped"
TIMED_OUT = "timed_out"
FAILED_CONCLUSIONS = frozenset({FAILURE, TIMED_OUT, "startup_failure"})


def parse_time(value: str | datetime | None) -> datetime | None:
    """Parse GitHub's ISO-8601 timestamps ("2020-01-22T19:33:08Z") into aware UTC datetimes."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _seconds_between(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return (end - start).total_seconds()


@dataclass(frozen=True, slots=True)
class Step:
    """One step of one job attempt."""

    job_id: int
    number: int
    name: str
    status: str
    conclusion: str | None
    started_at: datetime | None
    completed_at: datetime | None

    @property
    def key(self) -> str:
        return f"{self.job_id}:{self.number}"


@dataclass(frozen=True, slots=True)
class Job:
    """One attempt of one job (GitHub: a check run). `created_at` is when it was queued.

    `queue_estimated` is True when `created_at` did not come from GitHub (GraphQL has no job creation time)
    and was inferred instead; metrics must say so when they use it.
    """

    repository: str
    run_id: int
    run_attempt: int
    job_id: int
    name: str
    workflow_name: str
    head_sha: str
    head_branch: str | None
    status: str
    conclusion: str | None
    created_at: datetime | None
    started_at: datetime | None
    completed_at: datetime | None
    queue_estimated: bool = False
    runner_name: str | None = None
    runner_labels: tuple[str, ...] = ()
    steps: tuple[Step, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.repository}:job:{self.job_id}"

    @property
    def duration_seconds(self) -> float | None:
        return _seconds_between(self.started_at, self.completed_at)

    @property
    def queued_seconds(self) -> float | None:
        return _seconds_between(self.created_at, self.started_at)


@dataclass(frozen=True, slots=True)
class WorkflowRun:
    """One attempt of one workflow run."""

    repository: str
    run_id: int
    run_attempt: int
    run_number: int
    workflow_id: int | None
    workflow_name: str
    event: str
    head_sha: str
    head_branch: str | None
    status: str
    conclusion: str | None
    created_at: datetime
    run_started_at: datetime | None
    updated_at: datetime | None
    actor: str | None = None
    html_url: str | None = None
    pull_request_numbers: tuple[int, ...] = field(default=())

    @property
    def key(self) -> str:
        return f"{self.repository}:run:{self.run_id}:{self.run_attempt}"

    @property
    def duration_seconds(self) -> float | None:
        """Wall time of a completed attempt (GitHub reports the end only as updated_at)."""
        if self.status != "completed":
            return None
        return _seconds_between(self.run_started_at or self.created_at, self.updated_at)


def to_document(record: WorkflowRun | Job | Step) -> dict[str, Any]:
    """A JSON-ready dict (ISO timestamps, lists instead of tuples) for stores and wire formats."""

    def convert(value: Any) -> Any:
        if isinstance(value, datetime):
            return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
        if isinstance(value, tuple | list):
            return [convert(item) for item in value]
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return {f.name: convert(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return value

    result: dict[str, Any] = convert(record)
    return result


def step_from_document(doc: dict[str, Any]) -> Step:
    return Step(
        job_id=int(doc["job_id"]),
        number=int(doc["number"]),
        name=doc["name"],
        status=doc["status"],
        conclusion=doc.get("conclusion"),
        started_at=parse_time(doc.get("started_at")),
        completed_at=parse_time(doc.get("completed_at")),
    )


def job_from_document(doc: dict[str, Any]) -> Job:
    return Job(
        repository=doc["repository"],
        run_id=int(doc["run_id"]),
        run_attempt=int(doc["run_attempt"]),
        job_id=int(doc["job_id"]),
        name=doc["name"],
        workflow_name=doc["workflow_name"],
        head_sha=doc["head_sha"],
        head_branch=doc.get("head_branch"),
        status=doc["status"],
        conclusion=doc.get("conclusion"),
        created_at=parse_time(doc.get("created_at")),
        started_at=parse_time(doc.get("started_at")),
        completed_at=parse_time(doc.get("completed_at")),
        queue_estimated=bool(doc.get("queue_estimated", False)),
        runner_name=doc.get("runner_name"),
        runner_labels=tuple(doc.get("runner_labels") or ()),
        steps=tuple(step_from_document(s) for s in doc.get("steps") or ()),
    )


def run_from_document(doc: dict[str, Any]) -> WorkflowRun:
    created = parse_time(doc["created_at"])
    if created is None:
        raise ValueError("a workflow run needs created_at")
    return WorkflowRun(
        repository=doc["repository"],
        run_id=int(doc["run_id"]),
        run_attempt=int(doc["run_attempt"]),
        run_number=int(doc["run_number"]),
        workflow_id=None if doc.get("workflow_id") is None else int(doc["workflow_id"]),
        workflow_name=doc["workflow_name"],
        event=doc["event"],
        head_sha=doc["head_sha"],
        head_branch=doc.get("head_branch"),
        status=doc["status"],
        conclusion=doc.get("conclusion"),
        created_at=created,
        run_started_at=parse_time(doc.get("run_started_at")),
        updated_at=parse_time(doc.get("updated_at")),
        actor=doc.get("actor"),
        html_url=doc.get("html_url"),
        pull_request_numbers=tuple(int(n) for n in doc.get("pull_request_numbers") or ()),
    )
