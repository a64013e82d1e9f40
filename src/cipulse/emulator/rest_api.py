"""GitHub's REST endpoints for Actions, as plain functions of (world, shapes, path params, query).

They return (status, JSON body); the server adds authentication, rate limits, ETags and Link headers.
Paging and filters follow GitHub: `per_page` up to 100 (default 30), newest runs first, filtered run
lists stop after 1,000 results, `filter=latest` (default) or `all` for a run's jobs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cipulse.emulator.model import AttemptView, RunPlan, WorkflowPlan
from cipulse.emulator.shapes import Shapes
from cipulse.emulator.state import World

FILTERED_RESULTS_CAP = 1000
_RUN_FILTERS = ("actor", "branch", "check_suite_id", "created", "event", "head_sha", "status")
_STATUSES = frozenset({"requested", "in_progress", "completed", "queued", "pending", "waiting"})

NOT_FOUND = {"message": "Not Found", "documentation_url": "https://docs.github.com/rest", "status": "404"}


class BadRequest(Exception):
    """A query parameter GitHub would refuse (answered 422 with its message)."""


@dataclass
class Answer:
    status: int
    body: Any
    total: int | None = None  # for Link headers: number of items across pages
    page: int = 1
    per_page: int = 30


def paging(query: Mapping[str, str]) -> tuple[int, int]:
    try:
        page = max(1, int(query.get("page", "1")))
        per_page = min(100, max(1, int(query.get("per_page", "30"))))
    except ValueError:
        raise BadRequest("page and per_page must be integers") from None
    return page, per_page


def _page(items: list[Any], page: int, per_page: int) -> list[Any]:
    return items[(page - 1) * per_page : page * per_page]


def _runs_json(world: World, shapes: Shapes, run: RunPlan) -> list[dict[str, Any]]:
    """One JSON object per visible attempt (cached while the run can still change)."""
    return world.cached(run, "rest_runs", lambda: [shapes.run(run, a) for a in world.attempts(run)])


def _jobs_json(world: World, shapes: Shapes, run: RunPlan) -> list[list[dict[str, Any]]]:
    def build() -> list[list[dict[str, Any]]]:
        return [[shapes.job(job, run) for job in attempt.jobs] for attempt in world.attempts(run)]

    return world.cached(run, "rest_jobs", build)


def _find_run(world: World, repo_name: str, run_id: str) -> RunPlan | None:
    repo = world.repo(repo_name)
    if repo is None or not run_id.isdigit():
        return None
    run = world.visible_run(int(run_id))
    return run if run is not None and run.repo is repo else None


def _find_workflow(world: World, repo_name: str, key: str) -> WorkflowPlan | None:
    repo = world.repo(repo_name)
    if repo is None:
        return None
    for workflow in repo.workflows:
        if str(workflow.workflow_id) == key or workflow.path.rsplit("/", 1)[-1] == key:
            return workflow
    return None


def get_repository(world: World, shapes: Shapes, repo_name: str) -> Answer:
    repo = world.repo(repo_name)
    return Answer(404, NOT_FOUND) if repo is None else Answer(200, shapes.full_repository(repo))


def list_workflows(world: World, shapes: Shapes, repo_name: str, query: Mapping[str, str]) -> Answer:
    repo = world.repo(repo_name)
    if repo is None:
        return Answer(404, NOT_FOUND)
    page, per_page = paging(query)
    workflows = [shapes.workflow(w) for w in repo.workflows]
    body = {"total_count": len(workflows), "workflows": _page(workflows, page, per_page)}
    return Answer(200, body, len(workflows), page, per_page)


def get_workflow(world: World, shapes: Shapes, repo_name: str, workflow_id: str) -> Answer:
    workflow = _find_workflow(world, repo_name, workflow_id)
    return Answer(404, NOT_FOUND) if workflow is None else Answer(200, shapes.workflow(workflow))


def list_runs(
    world: World, shapes: Shapes, repo_name: str, query: Mapping[str, str], workflow_id: str | None = None
) -> Answer:
    repo = world.repo(repo_name)
    if repo is None:
        return Answer(404, NOT_FOUND)
    if workflow_id is not None:
        workflow = _find_workflow(world, repo_name, workflow_id)
        if workflow is None:
            return Answer(404, NOT_FOUND)
        runs = world.visible_runs(workflow)
    else:
        runs = world.repo_visible_runs(repo)
    page, per_page = paging(query)
    matches = _run_filter(world, query)
    selected = [run for run in reversed(runs) if matches(run)]
    total = len(selected)
    if any(query.get(name) for name in _RUN_FILTERS):
        selected = selected[:FILTERED_RESULTS_CAP]
    body = {
        "total_count": total,
        "workflow_runs": [_runs_json(world, shapes, run)[-1] for run in _page(selected, page, per_page)],
    }
    return Answer(200, body, len(selected), page, per_page)


def _run_filter(world: World, query: Mapping[str, str]) -> Any:
    created = query.get("created")
    low, high = parse_created(created) if created else (None, None)
    branch = query.get("branch")
    event = query.get("event")
    actor = query.get("actor")
    head_sha = query.get("head_sha")
    status = query.get("status")
    suite = query.get("check_suite_id")

    def matches(run: RunPlan) -> bool:
        if (low is not None and run.created < low) or (high is not None and run.created > high):
            return False
        if (branch and run.head_branch != branch) or (event and run.event != event):
            return False
        if (actor and run.actor != actor) or (head_sha and run.head_sha != head_sha):
            return False
        if suite and str(run.check_suite_id) != suite:
            return False
        if status:
            latest: AttemptView = world.attempts(run)[-1]
            value = latest.status if status in _STATUSES else latest.conclusion
            if value != status:
                return False
        return True

    return matches


def parse_created(value: str) -> tuple[datetime | None, datetime | None]:
    """GitHub's date qualifiers: `A..B`, `>=A`, `>A`, `<=B`, `<B`, `A` (that day), `*` open ends."""
    value = value.strip()
    try:
        if ".." in value:
            left, right = value.split("..", 1)
            return _bound(left, upper=False), _bound(right, upper=True)
        for prefix, upper, strict in (
            (">=", False, False),
            ("<=", True, False),
            (">", False, True),
            ("<", True, True),
        ):
            if value.startswith(prefix):
                bound = _bound(value[len(prefix) :], upper=upper, strict=strict)
                return (None, bound) if upper else (bound, None)
        return _bound(value, upper=False), _bound(value, upper=True)
    except ValueError:
        raise BadRequest(f"created={value!r} is not a valid date range") from None


def _bound(text: str, *, upper: bool, strict: bool = False) -> datetime | None:
    text = text.strip()
    if text in ("", "*"):
        return None
    date_only = "T" not in text
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    one = timedelta(days=1) if date_only else timedelta(seconds=1)
    if upper:
        # inclusive upper bound: the whole day (or second) named; strict `<` excludes it
        return parsed - timedelta(microseconds=1) if strict else parsed + one - timedelta(microseconds=1)
    return parsed + one if strict else parsed


def get_run(world: World, shapes: Shapes, repo_name: str, run_id: str, attempt: str | None = None) -> Answer:
    run = _find_run(world, repo_name, run_id)
    if run is None:
        return Answer(404, NOT_FOUND)
    attempts = _runs_json(world, shapes, run)
    if attempt is None:
        return Answer(200, attempts[-1])
    if not attempt.isdigit() or not 1 <= int(attempt) <= len(attempts):
        return Answer(404, NOT_FOUND)
    return Answer(200, attempts[int(attempt) - 1])


def list_jobs(
    world: World,
    shapes: Shapes,
    repo_name: str,
    run_id: str,
    query: Mapping[str, str],
    attempt: str | None = None,
) -> Answer:
    run = _find_run(world, repo_name, run_id)
    if run is None:
        return Answer(404, NOT_FOUND)
    per_attempt = _jobs_json(world, shapes, run)
    if attempt is not None:
        if not attempt.isdigit() or not 1 <= int(attempt) <= len(per_attempt):
            return Answer(404, NOT_FOUND)
        jobs = per_attempt[int(attempt) - 1]
    else:
        which = query.get("filter", "latest")
        if which not in ("latest", "all"):
            raise BadRequest("filter must be one of: latest, all")
        jobs = per_attempt[-1] if which == "latest" else [job for jobs in per_attempt for job in jobs]
    page, per_page = paging(query)
    body = {"total_count": len(jobs), "jobs": _page(jobs, page, per_page)}
    return Answer(200, body, len(jobs), page, per_page)


def get_job(world: World, shapes: Shapes, repo_name: str, job_id: str) -> Answer:
    repo = world.repo(repo_name)
    plan = world.jobs_by_id.get(int(job_id)) if job_id.isdigit() else None
    if repo is None or plan is None or plan.attempt.run.repo is not repo or plan.created > world.clock:
        return Answer(404, NOT_FOUND)
    run = plan.attempt.run
    for jobs in _jobs_json(world, shapes, run):
        for job in jobs:
            if job["id"] == plan.job_id:
                return Answer(200, job)
    return Answer(404, NOT_FOUND)
