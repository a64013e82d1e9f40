"""A seeded, deterministic CI history that looks like real GitHub Actions use.

Per repository: a CI workflow (lint, a test matrix, a flaky integration job, a build that needs the tests
and is skipped when they fail), a Deploy workflow (sometimes cancelled by a newer push), a Docs workflow
(publish skipped on pull requests) and, for larger repositories, a nightly matrix of 260 shards (so job
lists need several pages). Failures caused by the flaky job are re-run on the same commit and pass;
jobs wait in a queue before a runner picks them up (longer for self-hosted runners and big matrices).
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from cipulse.emulator.model import AttemptPlan, JobPlan, RepoPlan, RunPlan, StepPlan, WorkflowPlan

NIGHTLY_SHARDS = 260
_NIGHTLY_EVERY_JOBS = 3000
_MEAN_JOBS_PER_RUN = 8.0


@dataclass
class IdAllocator:
    """GitHub's ids: unique per kind across repositories, increasing with creation (all < 2**31)."""

    repo: int = 610_000_000
    workflow: int = 52_000_000
    run: int = 1_100_000_000
    job: int = 1_400_000_000
    check_suite: int = 1_800_000_000

    def next(self, kind: str) -> int:
        value: int = getattr(self, kind) + 1
        setattr(self, kind, value)
        return value


@dataclass(frozen=True)
class JobSpec:
    name: str
    seconds: tuple[float, float]
    main_steps: tuple[str, ...]
    labels: tuple[str, ...] = ("ubuntu-latest",)
    needs_all: bool = False  # created when every earlier job of the attempt has finished
    flaky: float = 0.0  # chance of a failure that a re-run fixes


_SETUP = {
    "ubuntu-latest": "Set up Python",
    "macos-14": "Set up Python",
    "windows-latest": "Set up Python",
}

CI_JOBS = (
    JobSpec("lint", (35, 90), ("Install linters", "Run ruff", "Run mypy")),
    *(
        JobSpec(
            f"test ({os_label}, {py})", (180, 600), ("Install dependencies", "Run unit tests"), (os_label,)
        )
        for os_label in ("ubuntu-latest", "macos-14")
        for py in ("3.11", "3.12", "3.13")
    ),
    JobSpec("integration", (300, 720), ("Start services", "Run integration tests"), flaky=0.12),
    JobSpec("build", (120, 260), ("Build wheel", "Upload artifact"), needs_all=True),
)
DEPLOY_JOBS = (
    JobSpec("build-image", (90, 240), ("Log in to registry", "Build and push image")),
    JobSpec("deploy-staging", (60, 180), ("Deploy to staging", "Smoke test"), needs_all=True),
    JobSpec("deploy-production", (60, 200), ("Deploy to production",), needs_all=True),
)
DOCS_JOBS = (
    JobSpec("build-docs", (40, 120), ("Install mkdocs", "Build site")),
    JobSpec("publish", (20, 60), ("Publish to Pages",), needs_all=True),
)
NIGHTLY_JOBS = tuple(
    JobSpec(f"shard {i + 1}/{NIGHTLY_SHARDS}", (60, 240), ("Run shard",), flaky=0.0015)
    for i in range(NIGHTLY_SHARDS)
)

WORKFLOWS = (
    ("CI", ".github/workflows/ci.yml", CI_JOBS),
    ("Deploy", ".github/workflows/deploy.yml", DEPLOY_JOBS),
    ("Docs", ".github/workflows/docs.yml", DOCS_JOBS),
    ("Nightly matrix", ".github/workflows/nightly.yml", NIGHTLY_JOBS),
)

_ACTORS = ("octocat", "monalisa", "hubot", "dependabot[bot]", "renovate[bot]")
_TOPICS = ("retry budget", "cache keys", "login form", "pagination", "metrics", "build matrix", "logging")


def repo_rng(seed: int, full_name: str, salt: str = "") -> random.Random:
    digest = hashlib.sha256(f"{seed}:{full_name}:{salt}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


class HistoryPlanner:
    """Plans runs for one repository; `plan_run` is also what new activity uses later."""

    def __init__(self, repo: RepoPlan, rng: random.Random, ids: IdAllocator) -> None:
        self.repo = repo
        self.rng = rng
        self.ids = ids
        self.commit_counter = 0
        self.pr_counter = 0

    # ---- whole history -------------------------------------------------------------------------

    def plan_history(self, end: datetime, target_jobs: int, days: float) -> None:
        """Plans about `target_jobs` job attempts; the last ones are still queued or running at `end`."""
        nightly_at = {target_jobs // 4} if target_jobs >= 600 else set()
        nightly_at |= set(range(_NIGHTLY_EVERY_JOBS, target_jobs, _NIGHTLY_EVERY_JOBS))
        other_jobs = target_jobs - len(nightly_at) * NIGHTLY_SHARDS * 1.3
        mean_gap = days * 86400 / max(1.0, other_jobs / _MEAN_JOBS_PER_RUN)
        at = end - timedelta(days=days)
        jobs = 0
        while jobs < target_jobs:
            at += timedelta(seconds=self.rng.expovariate(1 / mean_gap))
            if any(jobs <= mark < jobs + _MEAN_JOBS_PER_RUN for mark in nightly_at):
                workflow = self.repo.workflows[3]
            else:
                workflow = self.pick_workflow()
            run = self.plan_run(workflow, at)
            jobs += sum(len(attempt.jobs) for attempt in run.attempts)
        # A last run whose jobs wait for a runner, so a fresh history always has queued work too.
        last = self.plan_run(self.repo.workflows[0], at + timedelta(seconds=240), queue_seconds=(900, 1500))
        shift = timedelta(seconds=int((end - timedelta(seconds=20) - last.created).total_seconds()))
        for run in self.repo.runs:
            _shift_run(run, shift)

    def pick_workflow(self) -> WorkflowPlan:
        roll = self.rng.random()
        if roll < 0.72:
            return self.repo.workflows[0]
        if roll < 0.86:
            return self.repo.workflows[1]
        return self.repo.workflows[2]

    # ---- one run ---------------------------------------------------------------------------------

    def _next_commit(self, workflow: WorkflowPlan) -> tuple[str, str, str, tuple[int, ...]]:
        self.commit_counter += 1
        sha = hashlib.sha1(f"{self.repo.full_name}:{self.commit_counter}".encode()).hexdigest()
        topic = self.rng.choice(_TOPICS)
        if workflow.name == "CI" and self.rng.random() < 0.45:
            self.pr_counter += 1
            number = self.pr_counter + 100
            return sha, f"feature/{topic.replace(' ', '-')}-{number}", f"Improve {topic}", (number,)
        return sha, self.repo.default_branch, f"Update {topic}", ()

    def plan_run(
        self,
        workflow: WorkflowPlan,
        created: datetime,
        *,
        failure_rate: float | None = None,
        queue_seconds: tuple[float, float] | None = None,
    ) -> RunPlan:
        rate = self.repo.failure_rate if failure_rate is None else failure_rate
        sha, branch, message, prs = self._next_commit(workflow)
        if workflow.name == "Deploy":
            event = "workflow_dispatch" if self.rng.random() < 0.2 else "push"
        elif workflow.name == "Nightly matrix":
            event = "schedule"
        else:
            event = "pull_request" if prs else "push"
        run = RunPlan(
            run_id=self.ids.next("run"),
            run_number=len(workflow.runs) + 1,
            workflow=workflow,
            event=event,
            head_sha=sha,
            head_branch=branch,
            message=message,
            actor=self.rng.choice(_ACTORS),
            check_suite_id=self.ids.next("check_suite"),
            created=created,
            pull_request_numbers=prs,
        )
        workflow.runs.append(run)
        self.repo.runs.append(run)
        genuine_failure = self.rng.random() < rate
        cancel = workflow.name in ("CI", "Deploy") and self.rng.random() < 0.05
        start = created
        for number in range(1, 4):
            attempt = AttemptPlan(number=number, created=start, run=run)
            run.attempts.append(attempt)
            flaked = self._plan_jobs(attempt, genuine_failure, cancel and number == 1, queue_seconds)
            conclusion = attempt.conclusion
            if conclusion != "failure":
                break
            # People re-run flaky failures (which then usually pass) and sometimes a real failure.
            if not flaked and (genuine_failure and self.rng.random() > 0.3):
                break
            if number == 3 or (number == 2 and workflow.name == "Nightly matrix"):
                break
            start = attempt.finished + timedelta(seconds=self.rng.uniform(120, 1500))
        _whole_seconds(run)
        return run

    def _plan_jobs(
        self,
        attempt: AttemptPlan,
        genuine_failure: bool,
        cancel: bool,
        queue_seconds: tuple[float, float] | None,
    ) -> bool:
        """Plans the attempt's jobs; True when a flaky failure happened."""
        run = attempt.run
        specs = _job_specs(run)
        rng = self.rng
        failing = rng.randrange(len(specs) - 1) if genuine_failure else -1
        flaked = False
        cancel_at = None
        if cancel:
            cancel_at = attempt.created + timedelta(seconds=rng.uniform(30, 400))
        independent_end = attempt.created
        for index, spec in enumerate(specs):
            if spec.needs_all:
                created = independent_end + timedelta(seconds=rng.uniform(1, 4))
                earlier = [job.conclusion for job in attempt.jobs]
                skip = any(c not in ("success", "skipped") for c in earlier) or _skipped_by_condition(
                    run, spec
                )
            else:
                created = attempt.created + timedelta(seconds=rng.uniform(1, 5))
                skip = False
            if cancel_at is not None and created > cancel_at:
                continue
            queue = self._queue_seconds(spec, index, queue_seconds)
            if skip:
                job = self._job(attempt, spec, created, created, created, "skipped", ())
            else:
                started = created + timedelta(seconds=queue)
                duration = rng.uniform(*spec.seconds)
                conclusion = "success"
                if index == failing:
                    conclusion = (
                        "timed_out" if spec.name == "integration" and rng.random() < 0.1 else "failure"
                    )
                elif spec.flaky and rng.random() < spec.flaky:
                    conclusion = "failure"
                    flaked = True
                if cancel_at is not None and started + timedelta(seconds=duration) > cancel_at:
                    if started >= cancel_at:
                        job = self._job(attempt, spec, created, cancel_at, cancel_at, "cancelled", ())
                    else:
                        cut = (cancel_at - started).total_seconds()
                        job = self._job_with_steps(attempt, spec, created, started, cut, "cancelled")
                else:
                    job = self._job_with_steps(attempt, spec, created, started, duration, conclusion)
            attempt.jobs.append(job)
            if not spec.needs_all:
                independent_end = max(independent_end, job.completed)
        return flaked and not genuine_failure

    def _queue_seconds(self, spec: JobSpec, index: int, forced: tuple[float, float] | None) -> float:
        if forced is not None:
            return self.rng.uniform(*forced)
        base = self.rng.lognormvariate(2.0, 0.8)  # median ~7 s on hosted runners
        if self.repo.self_hosted:
            base += self.rng.uniform(5, 90)
        if spec.name.startswith("shard"):
            base += (index // 40) * 150  # 40 runners for 260 shards
        return min(base, 3600.0)

    def _job(
        self,
        attempt: AttemptPlan,
        spec: JobSpec,
        created: datetime,
        started: datetime,
        completed: datetime,
        conclusion: str,
        steps: tuple[StepPlan, ...] | list[StepPlan],
    ) -> JobPlan:
        self_hosted = self.repo.self_hosted
        runner_id = self.rng.randrange(1, 40) if self_hosted else self.rng.randrange(1000, 9999)
        return JobPlan(
            job_id=self.ids.next("job"),
            name=spec.name,
            created=created,
            started=started,
            completed=completed,
            conclusion=conclusion,
            steps=list(steps),
            labels=("self-hosted", "linux", "x64") if self_hosted else spec.labels,
            runner_id=runner_id,
            runner_name=f"ci-runner-{runner_id:02d}" if self_hosted else f"GitHub Actions {runner_id}",
            runner_group_id=1 if self_hosted else 2,
            runner_group_name="Default" if self_hosted else "GitHub Actions",
            attempt=attempt,
        )

    def _job_with_steps(
        self,
        attempt: AttemptPlan,
        spec: JobSpec,
        created: datetime,
        started: datetime,
        seconds: float,
        conclusion: str,
    ) -> JobPlan:
        setup = _SETUP.get(spec.labels[0], "Set up environment")
        names = ["Set up job", "Run actions/checkout@v4", setup, *spec.main_steps]
        post = ["Post Run actions/checkout@v4", "Complete job"]
        weights = [0.03, 0.04, 0.08] + [0.8 / len(spec.main_steps)] * len(spec.main_steps)
        steps: list[StepPlan] = []
        at = started
        failed = False
        for number, (name, weight) in enumerate(zip(names, weights, strict=True), start=1):
            if failed:
                steps.append(StepPlan(number, name, at, at, "skipped"))
                continue
            end = at + timedelta(seconds=round(seconds * weight, 3))
            step_conclusion = "success"
            if name == names[-1] and conclusion in ("failure", "timed_out", "cancelled"):
                step_conclusion = conclusion
                failed = True
            steps.append(StepPlan(number, name, at, end, step_conclusion))
            at = end
        if conclusion == "cancelled":
            completed = at
        else:
            for number, name in enumerate(post, start=len(names) + 1):
                end = at + timedelta(seconds=round(seconds * 0.025, 3))
                steps.append(StepPlan(number, name, at, end, "success"))
                at = end
            completed = at
        return self._job(attempt, spec, created, started, completed, conclusion, steps)


def _job_specs(run: RunPlan) -> tuple[JobSpec, ...]:
    for name, _path, jobs in WORKFLOWS:
        if name == run.workflow.name:
            return jobs
    raise KeyError(run.workflow.name)


def _skipped_by_condition(run: RunPlan, spec: JobSpec) -> bool:
    if spec.name == "publish":
        return run.event == "pull_request"
    if spec.name == "deploy-production":
        return run.event != "push"
    return False


def _whole_seconds(run: RunPlan) -> None:
    """GitHub reports times to the second (GraphQL DateTime, REST timestamps); so does the plan."""
    run.created = run.created.replace(microsecond=0)
    for attempt in run.attempts:
        attempt.created = attempt.created.replace(microsecond=0)
        for job in attempt.jobs:
            job.created = job.created.replace(microsecond=0)
            job.started = job.started.replace(microsecond=0)
            job.completed = job.completed.replace(microsecond=0)
            for step in job.steps:
                step.started = step.started.replace(microsecond=0)
                step.completed = step.completed.replace(microsecond=0)


def _shift_run(run: RunPlan, delta: timedelta) -> None:
    run.created += delta
    for attempt in run.attempts:
        attempt.created += delta
        for job in attempt.jobs:
            job.created += delta
            job.started += delta
            job.completed += delta
            for step in job.steps:
                step.started += delta
                step.completed += delta


def new_repo(
    full_name: str, ids: IdAllocator, created: datetime, *, self_hosted: bool, failure_rate: float
) -> RepoPlan:
    repo = RepoPlan(
        full_name=full_name,
        repo_id=ids.next("repo"),
        default_branch="main",
        self_hosted=self_hosted,
        failure_rate=failure_rate,
    )
    for name, path, _jobs in WORKFLOWS:
        repo.workflows.append(WorkflowPlan(ids.next("workflow"), name, path, created, repo))
    return repo
