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
    attempts_stored: int = 1
    open_earlier_attempts: int = 0
    completed_attempts: frozenset[int] = frozenset()
    stored_attempts: frozenset[int] = frozenset()

    @property
    def attempts_complete(self) -> bool:
        """A record for every attempt, and none of the earlier ones left unfinished (a lost delivery)."""
        return self.attempts_stored == self.run_attempt and not self.open_earlier_attempts


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
        attempts: dict[int, list[WorkflowRun]] = {}
        run: WorkflowRun
        for run in iter_runs(repository):
            attempts.setdefault(run.run_id, []).append(run)
        return cls({run_id: _summary(runs, counts, open_jobs) for run_id, runs in attempts.items()})

    def __len__(self) -> int:
        return len(self._runs)

    def is_known(
        self, run_id: int, updated_at: datetime | None, job_count: int | None = None, completed: bool = False
    ) -> bool:
        """Stored with the same update time (and job count); a completed run also needs no open jobs and
        every attempt finished, which catches lost `completed` deliveries whose run's latest one arrived."""
        stored = self._runs.get(run_id)
        if stored is None or updated_at is None or stored.updated_at != updated_at:
            return False
        if completed and (stored.open_jobs or not stored.attempts_complete):
            return False
        return job_count is None or stored.job_count == job_count

    def completed_attempts(self, run_id: int) -> frozenset[int]:
        """Attempts of the run stored as completed: a finished attempt never changes, so is not re-fetched."""
        stored = self._runs.get(run_id)
        return stored.completed_attempts if stored is not None else frozenset()

    def stored_attempts(self, run_id: int) -> frozenset[int]:
        stored = self._runs.get(run_id)
        return stored.stored_attempts if stored is not None else frozenset()

    def remember(self, runs: list[WorkflowRun], jobs: list[Job]) -> None:
        """Record what this sync just wrote (the attempts it wrote, added to those already stored), so
        later pages skip it."""
        counts = Counter(job.run_id for job in jobs)
        open_jobs = Counter(job.run_id for job in jobs if job.status != "completed")
        by_run: dict[int, list[WorkflowRun]] = {}
        for run in runs:
            by_run.setdefault(run.run_id, []).append(run)
        for run_id, attempts in by_run.items():
            current = self._runs.get(run_id)
            summary = _summary(attempts, counts, open_jobs, current)
            if current is None or summary.run_attempt >= current.run_attempt:
                self._runs[run_id] = summary


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


def _summary(
    attempts: list[WorkflowRun],
    counts: Counter[int],
    open_jobs: Counter[int],
    earlier: StoredRun | None = None,
) -> StoredRun:
    """The run's state from these attempt records, on top of what was stored before (`earlier`)."""
    latest = max(attempts, key=lambda run: run.run_attempt)
    written = {run.run_attempt for run in attempts}
    stored = written | (earlier.stored_attempts if earlier is not None else frozenset())
    completed = {run.run_attempt for run in attempts if run.status == "completed"}
    if earlier is not None:
        completed |= earlier.completed_attempts - written
    return StoredRun(
        run_attempt=latest.run_attempt,
        status=latest.status,
        updated_at=latest.updated_at,
        job_count=counts.get(latest.run_id, 0),
        open_jobs=open_jobs.get(latest.run_id, 0),
        attempts_stored=len(stored),
        open_earlier_attempts=sum(1 for n in stored if n < latest.run_attempt and n not in completed),
        completed_attempts=frozenset(completed),
        stored_attempts=frozenset(stored),
    )
