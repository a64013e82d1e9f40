"""The emulator's CI history: planned runs, attempts, jobs and steps, and what is visible at a moment.

Everything is planned up front with its final timings (including future re-runs); what GitHub would show
at time t (queued, in progress, completed) is derived from the plan, so advancing the emulator's clock
makes runs progress exactly as planned and every API (GraphQL, REST, webhooks, ground truth) agrees.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

QUEUED = "queued"
IN_PROGRESS = "in_progress"
COMPLETED = "completed"


@dataclass(slots=True)
class StepPlan:
    number: int
    name: str
    started: datetime
    completed: datetime
    conclusion: str


@dataclass(slots=True)
class JobPlan:
    job_id: int
    name: str
    created: datetime
    started: datetime
    completed: datetime
    conclusion: str
    steps: list[StepPlan]
    labels: tuple[str, ...]
    runner_id: int
    runner_name: str
    runner_group_id: int
    runner_group_name: str
    attempt: AttemptPlan = field(repr=False)


@dataclass(slots=True)
class AttemptPlan:
    number: int
    created: datetime
    run: RunPlan = field(repr=False)
    jobs: list[JobPlan] = field(default_factory=list)

    @property
    def finished(self) -> datetime:
        return max((job.completed for job in self.jobs), default=self.created)

    @property
    def conclusion(self) -> str:
        conclusions = {job.conclusion for job in self.jobs}
        if "cancelled" in conclusions:
            return "cancelled"
        if conclusions & {"failure", "timed_out"}:
            return "failure"
        if conclusions == {"skipped"}:
            return "skipped"
        return "success"


@dataclass(slots=True)
class WorkflowPlan:
    workflow_id: int
    name: str
    path: str
    created: datetime
    repo: RepoPlan = field(repr=False)
    runs: list[RunPlan] = field(default_factory=list, repr=False)


@dataclass(slots=True)
class RunPlan:
    run_id: int
    run_number: int
    workflow: WorkflowPlan
    event: str
    head_sha: str
    head_branch: str
    message: str
    actor: str
    check_suite_id: int
    created: datetime
    pull_request_numbers: tuple[int, ...] = ()
    attempts: list[AttemptPlan] = field(default_factory=list)
    # caches of derived views, keyed by the clock they were computed at (see Emulator.cached)
    cache: dict[str, tuple[datetime, Any]] = field(default_factory=dict, repr=False)

    @property
    def repo(self) -> RepoPlan:
        return self.workflow.repo

    @property
    def settles_at(self) -> datetime:
        """After this moment nothing about the run changes any more."""
        return max(attempt.finished for attempt in self.attempts)


@dataclass(slots=True)
class RepoPlan:
    full_name: str
    repo_id: int
    default_branch: str
    self_hosted: bool
    failure_rate: float
    workflows: list[WorkflowPlan] = field(default_factory=list)
    runs: list[RunPlan] = field(default_factory=list)

    @property
    def owner(self) -> str:
        return self.full_name.split("/", 1)[0]

    @property
    def name(self) -> str:
        return self.full_name.split("/", 1)[1]


# ---- what is visible at time t -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StepView:
    number: int
    name: str
    status: str
    conclusion: str | None
    started_at: datetime | None
    completed_at: datetime | None


@dataclass(frozen=True, slots=True)
class JobView:
    plan: JobPlan
    status: str
    conclusion: str | None
    started_at: datetime | None
    completed_at: datetime | None
    steps: tuple[StepView, ...]

    @property
    def queued(self) -> bool:
        return self.status == QUEUED


@dataclass(frozen=True, slots=True)
class AttemptView:
    plan: AttemptPlan
    status: str
    conclusion: str | None
    updated_at: datetime
    jobs: tuple[JobView, ...]


def step_at(step: StepPlan, t: datetime) -> StepView:
    if step.completed <= t:
        return StepView(step.number, step.name, COMPLETED, step.conclusion, step.started, step.completed)
    if step.started <= t:
        return StepView(step.number, step.name, IN_PROGRESS, None, step.started, None)
    return StepView(step.number, step.name, QUEUED, None, None, None)


def job_at(job: JobPlan, t: datetime) -> JobView | None:
    """The job as GitHub shows it at t; None before it is created."""
    if job.created > t:
        return None
    if job.completed <= t:
        steps = tuple(
            StepView(s.number, s.name, COMPLETED, s.conclusion, s.started, s.completed) for s in job.steps
        )
        return JobView(job, COMPLETED, job.conclusion, job.started, job.completed, steps)
    if job.started <= t:
        return JobView(job, IN_PROGRESS, None, job.started, None, tuple(step_at(s, t) for s in job.steps))
    return JobView(job, QUEUED, None, None, None, ())


def attempt_at(attempt: AttemptPlan, t: datetime) -> AttemptView | None:
    """The attempt at t; None before it starts. Its jobs are the ones created by then."""
    if attempt.created > t:
        return None
    jobs = tuple(view for view in (job_at(job, t) for job in attempt.jobs) if view is not None)
    finished = attempt.finished
    if finished <= t:
        return AttemptView(attempt, COMPLETED, attempt.conclusion, finished, jobs)
    events = [attempt.created]
    for view in jobs:
        events.append(view.plan.created)
        if view.started_at is not None:
            events.append(view.started_at)
        if view.completed_at is not None:
            events.append(view.completed_at)
    status = IN_PROGRESS if any(view.status != QUEUED for view in jobs) else QUEUED
    return AttemptView(attempt, status, None, max(events), jobs)


def run_attempts_at(run: RunPlan, t: datetime) -> list[AttemptView]:
    views = [attempt_at(attempt, t) for attempt in run.attempts]
    return [view for view in views if view is not None]
