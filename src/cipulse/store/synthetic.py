"""Deterministic synthetic CI history for store tests and benchmarks.

Covers what real history contains and what stores get wrong: re-run attempts, every conclusion (cancelled,
skipped, timed_out, neutral), still-running jobs, estimated queue times, clock skew, missing timestamps,
jobs without a branch, and runner labels of every pricing class. Timestamps are whole seconds, like GitHub's.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from cipulse.records import Job, Step, WorkflowRun

_WORKFLOWS = {
    "CI": ("build", "test (ubuntu)", "test (windows)", "test (macos)", "lint"),
    "Release": ("package", "publish"),
    "Nightly": ("integration", "e2e"),
}
_LABELS = {
    "test (windows)": ("windows-latest",),
    "test (macos)": ("macos-14",),
    "package": ("ubuntu-24.04-arm",),
    "integration": ("self-hosted", "linux", "x64"),
    "lint": ("ubuntu-slim",),
}
_BRANCHES = ("main", "main", "main", "dev", "feature/a", "feature/b", None)
_EVENTS = ("push", "pull_request", "schedule", "workflow_dispatch")
_CONCLUSIONS = (
    ["success"] * 80
    + ["failure"] * 10
    + ["cancelled"] * 4
    + ["skipped"] * 3
    + ["timed_out", "neutral", "failure"]
)


@dataclass(frozen=True, slots=True)
class Batch:
    runs: list[WorkflowRun]
    jobs: list[Job]


def generate(
    *,
    seed: int,
    jobs: int,
    start: datetime,
    days: float,
    repositories: tuple[str, ...] = ("octo/alpha", "octo/beta", "octo/gamma"),
    batch_jobs: int = 5000,
    with_steps: bool = True,
) -> Iterator[Batch]:
    """About `jobs` job attempts spread over [start, start + days), yielded in batches of whole runs."""
    rng = random.Random(seed)
    span = int(days * 86400)
    made = 0
    run_id = 1000
    job_id = 10_000_000
    runs: list[WorkflowRun] = []
    batch: list[Job] = []
    while made < jobs:
        run_id += 1
        repository = rng.choice(repositories)
        workflow = rng.choice(tuple(_WORKFLOWS))
        branch = rng.choice(_BRANCHES)
        sha = f"{rng.getrandbits(160):040x}"
        first_created = start + timedelta(seconds=rng.randrange(span))
        attempts = 1 + (rng.random() < 0.08) + (rng.random() < 0.02)
        for attempt in range(1, attempts + 1):
            created = first_created + timedelta(seconds=(attempt - 1) * rng.randrange(600, 7200))
            still_running = rng.random() < 0.01
            run_end = created
            run_conclusions: list[str] = []
            for name in _WORKFLOWS[workflow]:
                if made >= jobs:
                    break
                job_id += 1
                made += 1
                job = _job(rng, repository, run_id, attempt, job_id, name, workflow, sha, branch, created)
                if still_running:
                    job = _running(rng, job)
                batch.append(job)
                if job.completed_at is not None and job.completed_at > run_end:
                    run_end = job.completed_at
                run_conclusions.append(job.conclusion or "")
            status = "in_progress" if still_running else "completed"
            conclusion = None if still_running else _run_conclusion(run_conclusions)
            runs.append(
                WorkflowRun(
                    repository=repository,
                    run_id=run_id,
                    run_attempt=attempt,
                    run_number=run_id - 1000,
                    workflow_id=hash(workflow) % 1000,
                    workflow_name=workflow,
                    event=rng.choice(_EVENTS),
                    head_sha=sha,
                    head_branch=branch,
                    status=status,
                    conclusion=conclusion,
                    created_at=created,
                    run_started_at=created + timedelta(seconds=rng.randrange(0, 5)),
                    updated_at=None if still_running else run_end,
                    actor=rng.choice(("alice", "bob", "carol", "dependabot[bot]")),
                    html_url=f"https://github.com/{repository}/actions/runs/{run_id}",
                    pull_request_numbers=(rng.randrange(1, 500),) if rng.random() < 0.3 else (),
                )
            )
        if len(batch) >= batch_jobs:
            yield Batch(runs, batch if with_steps else [_without_steps(j) for j in batch])
            runs, batch = [], []
    if runs or batch:
        yield Batch(runs, batch if with_steps else [_without_steps(j) for j in batch])


def _run_conclusion(conclusions: list[str]) -> str:
    if any(c in ("failure", "timed_out") for c in conclusions):
        return "failure"
    if "cancelled" in conclusions:
        return "cancelled"
    return "success"


def _job(
    rng: random.Random,
    repository: str,
    run_id: int,
    attempt: int,
    job_id: int,
    name: str,
    workflow: str,
    sha: str,
    branch: str | None,
    created: datetime,
) -> Job:
    conclusion = rng.choice(_CONCLUSIONS)
    queued = created + timedelta(seconds=rng.randrange(0, 5))
    began = queued + timedelta(seconds=int(rng.expovariate(1 / 40)))
    base = {"build": 300, "lint": 60, "e2e": 1500, "integration": 1200}.get(name, 600)
    ended = began + timedelta(seconds=max(1, int(rng.gauss(base, base / 4))))
    if conclusion == "skipped":
        began = ended = queued
    started: datetime | None = began
    completed: datetime | None = ended
    roll = rng.random()
    created_at: datetime | None = queued
    if roll < 0.01:
        completed = began - timedelta(seconds=rng.randrange(1, 30))  # clock skew
    elif roll < 0.015:
        started = None  # missing timestamp
    elif roll < 0.017:
        created_at = None
    steps: tuple[Step, ...] = ()
    if started is not None and completed is not None and completed > started:
        middle = started + (completed - started) / 2
        middle = middle.replace(microsecond=0)
        steps = (
            Step(job_id, 1, "Set up job", "completed", "success", started, middle),
            Step(job_id, 2, "Run tests", "completed", conclusion, middle, completed),
        )
    return Job(
        repository=repository,
        run_id=run_id,
        run_attempt=attempt,
        job_id=job_id,
        name=name,
        workflow_name=workflow,
        head_sha=sha,
        head_branch=branch,
        status="completed",
        conclusion=conclusion,
        created_at=created_at,
        started_at=started,
        completed_at=completed,
        queue_estimated=rng.random() < 0.2,
        runner_name=f"runner-{rng.randrange(50)}",
        runner_labels=_LABELS.get(name, ("ubuntu-latest",)),
        steps=steps,
    )


def _running(rng: random.Random, job: Job) -> Job:
    queued_only = rng.random() < 0.5
    return Job(
        **{
            **{f: getattr(job, f) for f in Job.__dataclass_fields__},
            "status": "queued" if queued_only else "in_progress",
            "conclusion": None,
            "started_at": None if queued_only else job.started_at,
            "completed_at": None,
            "steps": (),
        }
    )


def _without_steps(job: Job) -> Job:
    return Job(**{**{f: getattr(job, f) for f in Job.__dataclass_fields__}, "steps": ()})
