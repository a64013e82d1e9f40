"""The Store protocol every consumer (collector, operator, dashboard, predictor) depends on.

Implementations: `sqlite.SqliteStore` (embedded default) and `search.SearchStore` (Elasticsearch/OpenSearch);
`spool.SpoolingStore` wraps either to survive outages.
Writes are idempotent upserts keyed by the records' GitHub-derived identities, so a retry after a crash
or an outage overwrites instead of duplicating.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from cipulse.metrics.cost import RunnerRates
from cipulse.metrics.facts import WindowFacts
from cipulse.records import Job, WorkflowRun

RecordBatch = tuple[Sequence[WorkflowRun], Sequence[Job]]


def upsert_each(
    store: Store, batches: Iterable[RecordBatch], on_stored: Callable[[int], None] | None = None
) -> None:
    """`Store.upsert_batches` for stores with nothing to overlap: one `upsert` after the other."""
    for number, (runs, jobs) in enumerate(batches):
        store.upsert(runs, jobs)
        if on_stored is not None:
            on_stored(number)


class StoreUnavailable(RuntimeError):
    """The backing service cannot be reached; callers spool and retry, never drop."""


@dataclass(frozen=True, slots=True)
class Watermark:
    """How far a monitor's collection has safely progressed.

    `newest_created_at` only advances after the records up to it were written to the store.
    """

    monitor: str
    newest_created_at: datetime | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class TrainingRow:
    """One workflow run attempt as the build-failure predictor sees it (no features, just the history).

    ``duration_seconds`` is `metrics.durations.run_duration` (None while running or when skewed).
    """

    repository: str
    workflow_name: str
    run_id: int
    run_attempt: int
    head_sha: str
    branch: str | None
    event: str
    actor: str | None
    status: str
    conclusion: str | None
    created_at: datetime
    duration_seconds: int | None


@runtime_checkable
class Store(Protocol):
    def upsert(self, runs: Sequence[WorkflowRun], jobs: Sequence[Job]) -> None:
        """Insert or overwrite runs and jobs (with their steps) by identity; atomic per call.

        Raises `StoreUnavailable` when the backing service cannot be reached (nothing was written then,
        or, for stores without transactions, a subset that a retry overwrites).
        """

    def upsert_batches(
        self, batches: Iterable[RecordBatch], on_stored: Callable[[int], None] | None = None
    ) -> None:
        """`upsert` of each (runs, jobs) batch, in order; ``on_stored`` hears each batch's position once
        it is stored. A store may write one batch while the caller produces the next (a bulk load, a
        spool replay); on an error the batches not reported stored may be partly written: retry them.
        """

    def get_watermark(self, monitor: str) -> Watermark | None: ...

    def set_watermark(self, watermark: Watermark) -> None: ...

    def count_jobs(self, repository: str | None = None) -> int: ...

    def count_runs(self, repository: str | None = None) -> int: ...

    def window_facts(
        self,
        repository: str | None,
        start: datetime,
        end: datetime,
        *,
        rates: RunnerRates | None = None,
    ) -> WindowFacts:
        """Facts over job attempts with ``start <= window_at < end`` exactly as defined in `metrics.facts`
        (equal to `metrics.facts.facts_from_jobs` over `iter_jobs`); None repository = all repositories."""
        ...

    def iter_jobs(self, repository: str | None = None) -> Iterator[Job]:
        """Every stored job attempt (with steps), in no particular order."""
        ...

    def iter_runs(self, repository: str | None = None) -> Iterator[WorkflowRun]:
        """Every stored run attempt, in no particular order."""
        ...

    def training_rows(self, repository: str | None = None) -> list[TrainingRow]:
        """One row per run attempt, sorted by (created_at, repository, run_id, run_attempt)."""
        ...

    def delete_older_than(self, cutoff: datetime) -> int:
        """Retention: delete runs with ``created_at < cutoff`` and jobs (with their steps) with
        ``window_at < cutoff``; return how many runs + jobs were deleted. Watermarks are kept, and jobs with
        no timestamp at all are kept (they cannot be dated)."""
        ...

    def close(self) -> None: ...
