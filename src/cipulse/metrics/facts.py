"""Aggregate facts for one time window, per repository, workflow, job and branch: what every store returns.

Definitions (every store must produce exactly these; `facts_from_jobs` is the reference implementation and
`GroupTally` the shared finishing step, so a store only has to supply counts, sums and value counts):

- Population: job attempts (one `Job` per attempt, re-runs included) of the selected repository (all when
  ``repository`` is None) whose ``window_at`` (`derive.job_window_time`: created, else started, else
  completed) satisfies ``start <= window_at < end``. Jobs with no timestamp at all are in no window.
- Groups: ``repository`` (repo), ``workflow`` (repo, workflow name), ``job`` (repo, workflow name, job name),
  ``branch`` (repo, head branch; jobs without a branch are left out of branch rows only). ``overall`` is
  the whole population. Rows are sorted by (repository, workflow, job, branch).
- Counts by outcome (`outcome`): ``success``, ``failure`` (incl. timed_out/startup_failure), ``cancelled``,
  ``skipped``, ``other``, ``running``; ``total`` is their sum.
- ``success_rate`` = success / (success + failure); cancelled, skipped, other and running are excluded
  from numerator and denominator (`success`); None when there is neither.
- Duration percentiles (p50/p90/p95, whole seconds, nearest-rank, see `percentiles`) over jobs whose
  outcome is success or failure and whose ``duration_s`` is known; ``duration_count`` is that population.
- Queue percentiles over jobs with a known ``queue_s`` (`queue`: any outcome except skipped, exact and
  estimated together); ``queue_exact_count`` + ``queue_estimated_count`` = ``queue_count``.
- ``clock_skew_count``: jobs whose timestamps contradict each other (excluded from durations/queues).
- ``job_seconds``: sum of ``duration_s`` over all jobs with a known duration (any outcome, cancelled too:
  they occupied a runner); ``job_minutes`` = job_seconds / 60 rounded to 3 decimals.
- ``billable_minutes``: sum over those jobs of ceil(duration_s / 60) (GitHub's per-job rounding);
  ``minutes_by_runner`` splits it by runner class, ``cost_usd`` prices it (`cost`, rates applied at query
  time, rounded to 6 decimals).

Equality across stores: counts, percentiles and minutes are integers and must be equal exactly;
``success_rate``, ``job_minutes`` and ``cost_usd`` are derived from those integers by the code below.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Final, Literal

from cipulse.metrics.cost import RunnerRates, cost_usd, minutes_by_class
from cipulse.metrics.derive import DerivedJob, derive_job
from cipulse.metrics.outcome import OUTCOMES, VERDICT_OUTCOMES
from cipulse.metrics.percentiles import nearest_rank_from_counts
from cipulse.metrics.success import success_rate
from cipulse.records import Job

Level = Literal["all", "repository", "workflow", "job", "branch"]
LEVELS: Final[tuple[Level, ...]] = ("repository", "workflow", "job", "branch")


@dataclass(frozen=True, slots=True)
class GroupFacts:
    """Facts of one group in one window (see the module docstring for each definition)."""

    level: Level
    repository: str | None
    workflow: str | None
    job: str | None
    branch: str | None
    total: int
    success: int
    failure: int
    cancelled: int
    skipped: int
    other: int
    running: int
    success_rate: float | None
    duration_count: int
    duration_p50: int | None
    duration_p90: int | None
    duration_p95: int | None
    queue_count: int
    queue_exact_count: int
    queue_estimated_count: int
    queue_p50: int | None
    queue_p90: int | None
    queue_p95: int | None
    clock_skew_count: int
    job_seconds: int
    job_minutes: float
    billable_minutes: int
    minutes_by_runner: dict[str, int]
    cost_usd: float

    @property
    def failure_rate(self) -> float | None:
        return None if self.success_rate is None else 1.0 - self.success_rate

    @property
    def finished(self) -> int:
        """Attempts that ran to a verdict (the success-rate denominator)."""
        return self.success + self.failure

    def sort_key(self) -> tuple[str, str, str, str]:
        return (self.repository or "", self.workflow or "", self.job or "", self.branch or "")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class WindowFacts:
    """Everything known about one window [start, end) of one repository (or all repositories)."""

    repository: str | None
    start: datetime
    end: datetime
    overall: GroupFacts
    repositories: tuple[GroupFacts, ...] = ()
    workflows: tuple[GroupFacts, ...] = ()
    jobs: tuple[GroupFacts, ...] = ()
    branches: tuple[GroupFacts, ...] = ()

    @property
    def is_empty(self) -> bool:
        return self.overall.total == 0

    def rows(self, level: Level) -> tuple[GroupFacts, ...]:
        return {
            "all": (self.overall,),
            "repository": self.repositories,
            "workflow": self.workflows,
            "job": self.jobs,
            "branch": self.branches,
        }[level]

    def to_dict(self) -> dict[str, Any]:
        return {
            "repository": self.repository,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "overall": self.overall.to_dict(),
            "repositories": [g.to_dict() for g in self.repositories],
            "workflows": [g.to_dict() for g in self.workflows],
            "jobs": [g.to_dict() for g in self.jobs],
            "branches": [g.to_dict() for g in self.branches],
        }


GroupKey = tuple[str | None, str | None, str | None, str | None]


@dataclass(slots=True)
class GroupTally:
    """Mergeable raw counts for one group; `finish` turns them into `GroupFacts`.

    A store fills it from its aggregations: outcome counts, (seconds, count) pairs for durations and queue
    times (a ``terms``/``histogram`` aggregation's buckets), and sums. Tallies of disjoint populations
    merge by addition, so a store may aggregate at the finest grain and roll up.
    """

    outcomes: Counter[str] = field(default_factory=Counter)
    durations: Counter[int] = field(default_factory=Counter)
    queues: Counter[int] = field(default_factory=Counter)
    queue_exact_count: int = 0
    queue_estimated_count: int = 0
    clock_skew_count: int = 0
    job_seconds: int = 0
    billable_by_labels: Counter[str] = field(default_factory=Counter)

    def add_job(self, derived: DerivedJob) -> None:
        self.outcomes[derived.outcome] += 1
        if derived.duration_s is not None:
            self.job_seconds += derived.duration_s
            self.billable_by_labels[derived.labels_key] += derived.billable_minutes
            if derived.outcome in VERDICT_OUTCOMES:
                self.durations[derived.duration_s] += 1
        if derived.queue_s is not None:
            self.queues[derived.queue_s] += 1
            if derived.queue_exact:
                self.queue_exact_count += 1
            else:
                self.queue_estimated_count += 1
        if derived.clock_skew:
            self.clock_skew_count += 1

    def merge(self, other: GroupTally) -> None:
        self.outcomes.update(other.outcomes)
        self.durations.update(other.durations)
        self.queues.update(other.queues)
        self.queue_exact_count += other.queue_exact_count
        self.queue_estimated_count += other.queue_estimated_count
        self.clock_skew_count += other.clock_skew_count
        self.job_seconds += other.job_seconds
        self.billable_by_labels.update(other.billable_by_labels)

    def finish(self, level: Level, key: GroupKey, rates: RunnerRates | None = None) -> GroupFacts:
        counts = {outcome: int(self.outcomes.get(outcome, 0)) for outcome in OUTCOMES}
        duration = nearest_rank_from_counts(self.durations.items())
        queue = nearest_rank_from_counts(self.queues.items())
        by_class = minutes_by_class({k: v for k, v in self.billable_by_labels.items() if v}, rates)
        return GroupFacts(
            level=level,
            repository=key[0],
            workflow=key[1],
            job=key[2],
            branch=key[3],
            total=sum(counts.values()),
            success=counts["success"],
            failure=counts["failure"],
            cancelled=counts["cancelled"],
            skipped=counts["skipped"],
            other=counts["other"],
            running=counts["running"],
            success_rate=success_rate(counts["success"], counts["failure"]),
            duration_count=sum(self.durations.values()),
            duration_p50=duration[50],
            duration_p90=duration[90],
            duration_p95=duration[95],
            queue_count=sum(self.queues.values()),
            queue_exact_count=self.queue_exact_count,
            queue_estimated_count=self.queue_estimated_count,
            queue_p50=queue[50],
            queue_p90=queue[90],
            queue_p95=queue[95],
            clock_skew_count=self.clock_skew_count,
            job_seconds=self.job_seconds,
            job_minutes=round(self.job_seconds / 60, 3),
            billable_minutes=sum(by_class.values()),
            minutes_by_runner=dict(sorted(by_class.items())),
            cost_usd=cost_usd(by_class, rates),
        )


def group_keys(repository: str, workflow: str, job: str, branch: str | None) -> dict[Level, GroupKey | None]:
    """The key of a job in each level (None: not part of that level)."""
    return {
        "repository": (repository, None, None, None),
        "workflow": (repository, workflow, None, None),
        "job": (repository, workflow, job, None),
        "branch": None if branch is None else (repository, None, None, branch),
    }


def assemble(
    repository: str | None,
    start: datetime,
    end: datetime,
    overall: GroupTally,
    by_level: Mapping[Level, Mapping[GroupKey, GroupTally]],
    rates: RunnerRates | None = None,
) -> WindowFacts:
    """Finish tallies into a sorted `WindowFacts` (shared by every store)."""

    def rows(level: Level) -> tuple[GroupFacts, ...]:
        tallies = by_level.get(level, {})
        finished = [tally.finish(level, key, rates) for key, tally in tallies.items()]
        return tuple(sorted(finished, key=GroupFacts.sort_key))

    return WindowFacts(
        repository=repository,
        start=start,
        end=end,
        overall=overall.finish("all", (repository, None, None, None), rates),
        repositories=rows("repository"),
        workflows=rows("workflow"),
        jobs=rows("job"),
        branches=rows("branch"),
    )


def check_window(start: datetime, end: datetime) -> None:
    """Windows are half-open [start, end) in aware datetimes; anything else is a caller bug."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("window bounds must be timezone-aware datetimes")
    if end < start:
        raise ValueError(f"window end {end.isoformat()} is before its start {start.isoformat()}")


def facts_from_jobs(
    jobs: Iterable[Job],
    repository: str | None,
    start: datetime,
    end: datetime,
    rates: RunnerRates | None = None,
) -> WindowFacts:
    """Reference implementation: a plain scan of job records (tests' oracle and the benchmarks' baseline)."""
    check_window(start, end)
    overall = GroupTally()
    by_level: dict[Level, dict[GroupKey, GroupTally]] = {level: {} for level in LEVELS}
    for job in jobs:
        if repository is not None and job.repository != repository:
            continue
        derived = derive_job(job)
        if derived.window_at is None or not start <= derived.window_at < end:
            continue
        overall.add_job(derived)
        for level, key in group_keys(job.repository, job.workflow_name, job.name, job.head_branch).items():
            if key is not None:
                by_level[level].setdefault(key, GroupTally()).add_job(derived)
    return assemble(repository, start, end, overall, by_level, rates)
