"""What the store already holds for a repository, so a sync re-fetches only new or changed runs.

A listed run is "known" when the store has its latest attempt with the same `updated_at` (and, when the
listing reports it, the same number of jobs). This makes a resumed sync skip what an interrupted one
already wrote, a nothing-new sync cost only its listing, and webhooks mode fetch only what deliveries missed.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cipulse.records import Job, WorkflowRun


@dataclass(frozen=True, slots=True)
class StoredRun:
    run_attempt: int
    status: str
    updated_at: datetime | None
    job_count: int
    open_jobs: int = 0


class StoredRuns:
    def __init__(self, runs: dict[int, StoredRun]) -> None:
        self._runs = runs

    @classmethod
    def load(cls, store: Any, repository: str, *, with_job_counts: bool) -> StoredRuns:
        """Index the repository's stored runs (latest attempt each); empty if the store cannot iterate."""
        iter_runs = getattr(store, "iter_runs", None)
        if iter_runs is None or store.count_runs(repository) == 0:
            return cls({})
        counts: Counter[int] = Counter()
        open_jobs: Counter[int] = Counter()
        if with_job_counts and getattr(store, "iter_jobs", None) is not None:
            job: Job
            for job in store.iter_jobs(repository):
                counts[job.run_id] += 1
                open_jobs[job.run_id] += job.status != "completed"
        latest: dict[int, WorkflowRun] = {}
        run: WorkflowRun
        for run in iter_runs(repository):
            if run.run_id not in latest or run.run_attempt > latest[run.run_id].run_attempt:
                latest[run.run_id] = run
        return cls(
            {
                run_id: StoredRun(
                    run.run_attempt,
                    run.status,
                    run.updated_at,
                    counts.get(run_id, 0),
                    open_jobs.get(run_id, 0),
                )
                for run_id, run in latest.items()
            }
        )

    def __len__(self) -> int:
        return len(self._runs)

    def is_known(
        self, run_id: int, updated_at: datetime | None, job_count: int | None = None, completed: bool = False
    ) -> bool:
        """Stored with the same update time (and job count); a completed run also needs no open jobs,
        which catches a lost `workflow_job completed` delivery whose run's delivery did arrive."""
        stored = self._runs.get(run_id)
        if stored is None or updated_at is None or stored.updated_at != updated_at:
            return False
        if completed and stored.open_jobs:
            return False
        return job_count is None or stored.job_count == job_count

    def remember(self, runs: list[WorkflowRun], jobs: list[Job]) -> None:
        """Record what this sync just wrote, so a later page listing the same run skips it."""
        counts = Counter(job.run_id for job in jobs)
        open_jobs = Counter(job.run_id for job in jobs if job.status != "completed")
        for run in runs:
            current = self._runs.get(run.run_id)
            if current is None or run.run_attempt >= current.run_attempt:
                self._runs[run.run_id] = StoredRun(
                    run.run_attempt, run.status, run.updated_at, counts[run.run_id], open_jobs[run.run_id]
                )


class VerifiedRuns:
    """Runs (at a given update time) whose jobs this process fetched itself or counted against GitHub.

    Webhooks mode checks job counts only for runs not in here, so repeated syncs in a long-running process
    do not pay again for runs already proven complete. Kept per token budget, bounded.
    """

    def __init__(self, capacity: int = 200_000) -> None:
        self._seen: OrderedDict[tuple[str, int, datetime | None], None] = OrderedDict()
        self._capacity = capacity

    def add(self, repository: str, run_id: int, updated_at: datetime | None) -> None:
        self._seen[(repository, run_id, updated_at)] = None
        while len(self._seen) > self._capacity:
            self._seen.popitem(last=False)

    def __contains__(self, key: tuple[str, int, datetime | None]) -> bool:
        return key in self._seen
