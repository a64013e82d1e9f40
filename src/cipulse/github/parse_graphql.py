"""GraphQL workflow runs and check runs -> cipulse records.

GraphQL lacks some facts REST has, so they are inferred here and the inference is explicit:
- run attempts: check runs of every attempt come back together; the k-th check run with a given name
  (in id order) belongs to attempt k, and a run has as many attempts as its most repeated job;
- queue time: a check run has no creation time, so `created_at` is estimated as the moment the job could
  have been queued (the latest completion of an earlier job of the same attempt, else the attempt's start)
  and the job is marked `queue_estimated=True`;
- earlier attempts' outcome: derived from their jobs (GraphQL reports only the latest attempt's).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from cipulse.github.parse_rest import PayloadError
from cipulse.records import (
    CANCELLED,
    FAILED_CONCLUSIONS,
    FAILURE,
    SKIPPED,
    SUCCESS,
    Job,
    Step,
    WorkflowRun,
    parse_time,
)


def _lower(value: Any) -> str | None:
    return value.lower() if isinstance(value, str) else None


def step_from_graphql(job_id: int, node: Mapping[str, Any]) -> Step:
    return Step(
        job_id=job_id,
        number=int(node["number"]),
        name=str(node.get("name") or ""),
        status=_lower(node.get("status")) or "unknown",
        conclusion=_lower(node.get("conclusion")),
        started_at=parse_time(node.get("startedAt")),
        completed_at=parse_time(node.get("completedAt")),
    )


def assign_attempts(check_runs: Sequence[Mapping[str, Any]]) -> list[tuple[int, Mapping[str, Any]]]:
    """(attempt, check run) pairs: the k-th check run of a name, in id order, is attempt k."""
    seen: dict[str, int] = defaultdict(int)
    result = []
    for node in sorted(check_runs, key=lambda n: int(n["databaseId"])):
        seen[str(node.get("name"))] += 1
        result.append((seen[str(node.get("name"))], node))
    return result


def _attempt_conclusion(jobs: Sequence[Job]) -> str:
    conclusions = {job.conclusion for job in jobs}
    if CANCELLED in conclusions:
        return CANCELLED
    if conclusions & FAILED_CONCLUSIONS:
        return FAILURE
    if conclusions == {SKIPPED}:
        return SKIPPED
    return SUCCESS


def _estimate_queued_at(started: datetime | None, attempt_start: datetime, ends: list[datetime]) -> datetime:
    """The latest completion of another job of the attempt before this job started, else the attempt start."""
    if started is None:
        return attempt_start
    candidates = [t for t in ends if attempt_start <= t <= started]
    return max(candidates, default=min(attempt_start, started))


def records_from_graphql(
    repository: str,
    workflow_id: int | None,
    workflow_name: str,
    run: Mapping[str, Any],
    check_runs: Sequence[Mapping[str, Any]],
) -> tuple[list[WorkflowRun], list[Job]]:
    """One WorkflowRun per (inferred) attempt and one Job per check run of a GraphQL workflow run."""
    if run.get("databaseId") is None:
        raise PayloadError("GraphQL workflow run has no databaseId")
    suite = run.get("checkSuite") or {}
    head_sha = str((suite.get("commit") or {}).get("oid") or "")
    head_branch = (suite.get("branch") or {}).get("name")
    run_id = int(run["databaseId"])
    created_at = parse_time(run.get("createdAt"))
    if created_at is None:
        raise PayloadError(f"GraphQL workflow run {run_id} has no createdAt")

    by_attempt: dict[int, list[Mapping[str, Any]]] = defaultdict(list)
    for attempt, node in assign_attempts([n for n in check_runs if n and n.get("databaseId") is not None]):
        by_attempt[attempt].append(node)
    attempts = max(by_attempt, default=1)

    jobs: list[Job] = []
    runs: list[WorkflowRun] = []
    for attempt in range(1, attempts + 1):
        nodes = by_attempt.get(attempt, [])
        starts = [t for t in (parse_time(n.get("startedAt")) for n in nodes) if t is not None]
        attempt_start = created_at if attempt == 1 else min(starts, default=created_at)
        completions = [t for t in (parse_time(n.get("completedAt")) for n in nodes) if t is not None]
        attempt_jobs = []
        for node in nodes:
            job_id = int(node["databaseId"])
            started = parse_time(node.get("startedAt"))
            steps_connection = node.get("steps") or {}
            attempt_jobs.append(
                Job(
                    repository=repository,
                    run_id=run_id,
                    run_attempt=attempt,
                    job_id=job_id,
                    name=str(node.get("name") or ""),
                    workflow_name=workflow_name,
                    head_sha=head_sha,
                    head_branch=head_branch,
                    status=_lower(node.get("status")) or "unknown",
                    conclusion=_lower(node.get("conclusion")),
                    created_at=_estimate_queued_at(started, attempt_start, completions),
                    started_at=started,
                    completed_at=parse_time(node.get("completedAt")),
                    queue_estimated=True,
                    steps=tuple(
                        sorted(
                            (step_from_graphql(job_id, s) for s in steps_connection.get("nodes") or () if s),
                            key=lambda step: step.number,
                        )
                    ),
                )
            )
        jobs.extend(attempt_jobs)
        latest = attempt == attempts
        runs.append(
            WorkflowRun(
                repository=repository,
                run_id=run_id,
                run_attempt=attempt,
                run_number=int(run.get("runNumber") or 0),
                workflow_id=workflow_id,
                workflow_name=workflow_name,
                event=str(run.get("event") or ""),
                head_sha=head_sha,
                head_branch=head_branch,
                status=(_lower(suite.get("status")) or "unknown") if latest else "completed",
                conclusion=_lower(suite.get("conclusion")) if latest else _attempt_conclusion(attempt_jobs),
                created_at=created_at,
                run_started_at=attempt_start,
                updated_at=parse_time(run.get("updatedAt")) if latest else max(completions, default=None),
                html_url=run.get("url"),
            )
        )
    return runs, jobs
