"""Ground truth: the emulator's history at its current clock as the cipulse records a perfect collector
would store (one Job per attempt with its exact queued time, one WorkflowRun per attempt)."""

from __future__ import annotations

from cipulse.emulator.model import QUEUED, AttemptView, JobView, RunPlan
from cipulse.emulator.state import World
from cipulse.records import Job, Step, WorkflowRun


def job_record(job: JobView, run: RunPlan) -> Job:
    plan = job.plan
    queued = job.status == QUEUED
    return Job(
        repository=run.repo.full_name,
        run_id=run.run_id,
        run_attempt=plan.attempt.number,
        job_id=plan.job_id,
        name=plan.name,
        workflow_name=run.workflow.name,
        head_sha=run.head_sha,
        head_branch=run.head_branch,
        status=job.status,
        conclusion=job.conclusion,
        created_at=plan.created,
        started_at=job.started_at,
        completed_at=job.completed_at,
        queue_estimated=False,
        runner_name=None if queued else plan.runner_name,
        runner_labels=plan.labels,
        steps=tuple(
            Step(
                job_id=plan.job_id,
                number=step.number,
                name=step.name,
                status=step.status,
                conclusion=step.conclusion,
                started_at=step.started_at,
                completed_at=step.completed_at,
            )
            for step in job.steps
        ),
    )


def run_record(attempt: AttemptView, run: RunPlan, html_base: str) -> WorkflowRun:
    return WorkflowRun(
        repository=run.repo.full_name,
        run_id=run.run_id,
        run_attempt=attempt.plan.number,
        run_number=run.run_number,
        workflow_id=run.workflow.workflow_id,
        workflow_name=run.workflow.name,
        event=run.event,
        head_sha=run.head_sha,
        head_branch=run.head_branch,
        status=attempt.status,
        conclusion=attempt.conclusion,
        created_at=run.created,
        run_started_at=attempt.plan.created,
        updated_at=attempt.updated_at,
        actor=run.actor,
        html_url=f"{html_base}/{run.repo.full_name}/actions/runs/{run.run_id}",
        pull_request_numbers=run.pull_request_numbers,
    )


class Truth:
    """What a complete, exact collection of a repository yields right now."""

    def __init__(self, world: World, html_base: str) -> None:
        self._world = world
        self._html_base = html_base

    def _runs(self, repo: str) -> list[RunPlan]:
        found = self._world.repo(repo)
        if found is None:
            raise KeyError(f"the emulator has no repository {repo!r}")
        return self._world.repo_visible_runs(found)

    def jobs(self, repo: str) -> list[Job]:
        with self._world.lock:
            return [
                job_record(job, run)
                for run in self._runs(repo)
                for attempt in self._world.attempts(run)
                for job in attempt.jobs
            ]

    def runs(self, repo: str) -> list[WorkflowRun]:
        with self._world.lock:
            return [
                run_record(attempt, run, self._html_base)
                for run in self._runs(repo)
                for attempt in self._world.attempts(run)
            ]
