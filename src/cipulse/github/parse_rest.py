"""REST (and webhook, which shares REST's shapes) payloads -> cipulse records.

Missing optional fields get a documented default instead of an error: `run_attempt` absent means the
first attempt (GitHub's older payloads predate re-runs), `created_at` absent leaves the queue time unknown.
Missing identity fields raise PayloadError so a bad payload is reported, never half-stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from cipulse.records import Job, Step, WorkflowRun, parse_time

NOT_STARTED = frozenset({"queued", "waiting", "pending", "requested"})


class PayloadError(ValueError):
    """A payload lacks what a record needs (an id, a repository); says which field."""


@dataclass(frozen=True, slots=True)
class WorkflowRef:
    """A workflow as listed by REST /actions/workflows: the node id is what GraphQL needs."""

    database_id: int
    node_id: str
    name: str
    path: str
    state: str


def _require(payload: Mapping[str, Any], key: str, what: str) -> Any:
    value = payload.get(key)
    if value is None:
        raise PayloadError(f"{what} has no {key!r}")
    return value


def _int(payload: Mapping[str, Any], key: str, what: str) -> int:
    value = _require(payload, key, what)
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise PayloadError(f"{what} has a non-integer {key!r}: {value!r}") from exc


def step_from_rest(job_id: int, payload: Mapping[str, Any]) -> Step:
    return Step(
        job_id=job_id,
        number=_int(payload, "number", "step"),
        name=str(payload.get("name") or ""),
        status=str(payload.get("status") or "unknown"),
        conclusion=payload.get("conclusion"),
        started_at=parse_time(payload.get("started_at")),
        completed_at=parse_time(payload.get("completed_at")),
    )


def job_from_rest(repository: str, payload: Mapping[str, Any], workflow_name: str | None = None) -> Job:
    """A job from `/actions/runs/{id}/jobs` or a `workflow_job` webhook.

    GitHub's schema makes `started_at` mandatory, so a job still waiting for a runner carries a placeholder
    there; it is dropped (None) until the job has really started, or queue times would come out as zero.
    """
    job_id = _int(payload, "id", "job")
    status = str(payload.get("status") or "unknown")
    started = None if status in NOT_STARTED else parse_time(payload.get("started_at"))
    return Job(
        repository=repository,
        run_id=_int(payload, "run_id", f"job {job_id}"),
        run_attempt=int(payload.get("run_attempt") or 1),
        job_id=job_id,
        name=str(payload.get("name") or ""),
        workflow_name=str(payload.get("workflow_name") or workflow_name or ""),
        head_sha=str(payload.get("head_sha") or ""),
        head_branch=payload.get("head_branch"),
        status=status,
        conclusion=payload.get("conclusion"),
        created_at=parse_time(payload.get("created_at")),
        started_at=started,
        completed_at=parse_time(payload.get("completed_at")),
        queue_estimated=False,
        runner_name=payload.get("runner_name") or None,
        runner_labels=tuple(str(label) for label in payload.get("labels") or ()),
        steps=tuple(step_from_rest(job_id, s) for s in payload.get("steps") or ()),
    )


def repository_of(payload: Mapping[str, Any]) -> str | None:
    repository = payload.get("repository")
    if isinstance(repository, Mapping) and repository.get("full_name"):
        return str(repository["full_name"])
    return None


def run_from_rest(payload: Mapping[str, Any], repository: str | None = None) -> WorkflowRun:
    """A run attempt from `/actions/runs`, `/actions/runs/{id}/attempts/{n}` or a `workflow_run` webhook."""
    run_id = _int(payload, "id", "workflow run")
    repository = repository or repository_of(payload)
    if not repository:
        raise PayloadError(f"workflow run {run_id} has no repository.full_name")
    created_at = parse_time(_require(payload, "created_at", f"workflow run {run_id}"))
    assert created_at is not None
    actor = payload.get("actor")
    pull_requests = payload.get("pull_requests") or ()
    return WorkflowRun(
        repository=repository,
        run_id=run_id,
        run_attempt=int(payload.get("run_attempt") or 1),
        run_number=int(payload.get("run_number") or 0),
        workflow_id=None if payload.get("workflow_id") is None else int(payload["workflow_id"]),
        workflow_name=str(payload.get("name") or ""),
        event=str(payload.get("event") or ""),
        head_sha=str(payload.get("head_sha") or ""),
        head_branch=payload.get("head_branch"),
        status=str(payload.get("status") or "unknown"),
        conclusion=payload.get("conclusion"),
        created_at=created_at,
        run_started_at=parse_time(payload.get("run_started_at")),
        updated_at=parse_time(payload.get("updated_at")),
        actor=actor.get("login") if isinstance(actor, Mapping) else None,
        html_url=payload.get("html_url"),
        pull_request_numbers=tuple(
            int(pr["number"]) for pr in pull_requests if isinstance(pr, Mapping) and "number" in pr
        ),
    )


def earlier_attempt(latest: WorkflowRun, attempt: int) -> WorkflowRun:
    """An earlier, finished attempt of a run, from its latest attempt's record, without a request.

    Exact: the facts GitHub keeps per run, which a re-run does not change (id, number, workflow, event,
    commit, branch, creation time, the actor who started the run, pull requests), and `status` (GitHub
    only re-runs a completed attempt). Unknown, hence None: the attempt's `conclusion`, `run_started_at`
    and `updated_at`, which only `/actions/runs/{id}/attempts/{n}` or a `workflow_run` delivery report. Its
    jobs, with their own conclusions and times, are exact (`jobs?filter=all`).
    """
    if not 1 <= attempt < latest.run_attempt:
        raise ValueError(f"attempt {attempt} is not earlier than attempt {latest.run_attempt}")
    return replace(
        latest, run_attempt=attempt, status="completed", conclusion=None, run_started_at=None, updated_at=None
    )


def workflow_from_rest(payload: Mapping[str, Any]) -> WorkflowRef:
    return WorkflowRef(
        database_id=_int(payload, "id", "workflow"),
        node_id=str(_require(payload, "node_id", "workflow")),
        name=str(payload.get("name") or ""),
        path=str(payload.get("path") or ""),
        state=str(payload.get("state") or "active"),
    )
