"""The emulator's mutable world: repositories, the clock, indexes, and caches of derived answers.

One lock guards it: the HTTP server reads it from worker threads while tests add activity.
"""

from __future__ import annotations

import bisect
import dataclasses
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from cipulse.emulator.history import HistoryPlanner, IdAllocator, new_repo, repo_rng
from cipulse.emulator.model import AttemptView, JobPlan, RepoPlan, RunPlan, WorkflowPlan, run_attempts_at

T = TypeVar("T")

DEFAULT_REPOSITORIES = ("octo-org/payments-api", "octo-org/web-frontend", "octo-org/infra-tools")


class World:
    """Planned history plus what is visible at `clock`."""

    def __init__(
        self,
        *,
        seed: int,
        repos: dict[str, int],
        days: float,
        failure_rate: float,
        now: datetime | None = None,
    ) -> None:
        self.seed = seed
        self.lock = threading.RLock()
        self.clock = (now or datetime.now(UTC)).replace(microsecond=0)
        self.ids = IdAllocator()
        self.repos: dict[str, RepoPlan] = {}
        self.planners: dict[str, HistoryPlanner] = {}
        self.runs_by_id: dict[int, RunPlan] = {}
        self.jobs_by_id: dict[int, JobPlan] = {}
        self.workflows_by_id: dict[int, WorkflowPlan] = {}
        self.suites_by_id: dict[int, RunPlan] = {}
        self.runs_by_sha: dict[tuple[str, str], list[RunPlan]] = {}
        for index, (full_name, jobs) in enumerate(repos.items()):
            target = jobs
            for _ in range(4):
                # Re-runs planned after `now` and jobs waiting on others are not visible yet: plan more
                # until at least `jobs` job attempts can be seen (ids restart so the result is reproducible).
                ids_before = dataclasses.replace(self.ids)
                repo = new_repo(
                    full_name,
                    self.ids,
                    self.clock - timedelta(days=days + 30),
                    self_hosted=(index % 3 == 2),
                    failure_rate=failure_rate,
                )
                planner = HistoryPlanner(repo, repo_rng(seed, full_name), self.ids)
                planner.plan_history(self.clock, target, days)
                visible = sum(
                    1
                    for run in repo.runs
                    for a in run.attempts
                    for job in a.jobs
                    if job.created <= self.clock
                )
                if visible >= jobs:
                    break
                target += jobs - visible + 5
                self.ids.__dict__.update(ids_before.__dict__)
            self.repos[full_name.lower()] = repo
            self.planners[full_name.lower()] = planner
            self._index(repo, repo.runs)

    def _index(self, repo: RepoPlan, runs: list[RunPlan]) -> None:
        for workflow in repo.workflows:
            self.workflows_by_id[workflow.workflow_id] = workflow
        for run in runs:
            self.runs_by_id[run.run_id] = run
            self.suites_by_id[run.check_suite_id] = run
            self.runs_by_sha.setdefault((repo.full_name.lower(), run.head_sha), []).append(run)
            for attempt in run.attempts:
                for job in attempt.jobs:
                    self.jobs_by_id[job.job_id] = job

    # ---- lookups -----------------------------------------------------------------------------------

    def repo(self, full_name: str) -> RepoPlan | None:
        return self.repos.get(full_name.lower())

    def visible_runs(self, workflow: WorkflowPlan) -> list[RunPlan]:
        """The workflow's runs created by now, oldest first (plans are appended in creation order)."""
        runs = workflow.runs
        count = bisect.bisect_right(runs, self.clock, key=lambda run: run.created)
        return runs[:count]

    def repo_visible_runs(self, repo: RepoPlan) -> list[RunPlan]:
        count = bisect.bisect_right(repo.runs, self.clock, key=lambda run: run.created)
        return repo.runs[:count]

    def visible_run(self, run_id: int) -> RunPlan | None:
        run = self.runs_by_id.get(run_id)
        return run if run is not None and run.created <= self.clock else None

    def attempts(self, run: RunPlan) -> list[AttemptView]:
        return self.cached(run, "attempts", lambda: run_attempts_at(run, self.clock))

    def cached(self, run: RunPlan, kind: str, build: Callable[[], T]) -> T:
        """A derived view of `run`, recomputed only while the run can still change."""
        entry = run.cache.get(kind)
        if entry is not None and (entry[0] == self.clock or entry[0] >= run.settles_at):
            value: T = entry[1]
            return value
        value = build()
        run.cache[kind] = (self.clock, value)
        return value

    # ---- changing the world -------------------------------------------------------------------------

    def advance(self, seconds: float) -> None:
        with self.lock:
            self.clock += timedelta(seconds=seconds)

    def add_activity(self, full_name: str, runs: int, failure_rate: float | None) -> list[RunPlan]:
        """Plans `runs` new runs after everything so far and moves the clock until they have finished."""
        with self.lock:
            repo = self._require(full_name)
            planner = self.planners[full_name.lower()]
            start = max([self.clock, *(run.created for run in repo.runs)])
            new: list[RunPlan] = []
            at = start
            for _ in range(runs):
                at += timedelta(seconds=planner.rng.uniform(20, 90))
                new.append(planner.plan_run(planner.pick_workflow(), at, failure_rate=failure_rate))
            self._index(repo, new)
            if new:
                self.clock = max(self.clock, max(run.settles_at for run in new) + timedelta(seconds=1))
            return new

    def follow_real_time(self, new_run_every: float) -> None:
        """Live mode: the clock catches up with real time and each repository starts a new run now and
        then (about one per `new_run_every` seconds), which then progresses as real time passes."""
        with self.lock:
            now = datetime.now(UTC).replace(microsecond=0)
            elapsed = (now - self.clock).total_seconds()
            if elapsed <= 0:
                return
            for key, repo in self.repos.items():
                planner = self.planners[key]
                if planner.rng.random() < min(1.0, elapsed / new_run_every):
                    start = max([self.clock, *(run.created for run in repo.runs[-1:])])
                    run = planner.plan_run(planner.pick_workflow(), start + timedelta(seconds=1))
                    self._index(repo, [run])
            self.clock = now

    def set_failure_rate(self, full_name: str, rate: float) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"a failure rate is between 0 and 1, not {rate}")
        with self.lock:
            self._require(full_name).failure_rate = rate

    def _require(self, full_name: str) -> RepoPlan:
        repo = self.repo(full_name)
        if repo is None:
            raise KeyError(f"the emulator has no repository {full_name!r}; it has {sorted(self.repos)}")
        return repo

    def describe(self) -> dict[str, Any]:
        return {
            name: {"runs": len(repo.runs), "jobs": sum(len(a.jobs) for r in repo.runs for a in r.attempts)}
            for name, repo in self.repos.items()
        }
