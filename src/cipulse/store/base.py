"""The Store protocol every consumer (collector, operator, dashboard, predictor) depends on.

Implementations: `sqlite.SqliteStore` (embedded default) and `search.SearchStore` (Elasticsearch/OpenSearch).
Writes are idempotent upserts keyed by the records' GitHub-derived identities, so a retry after a crash
or an outage overwrites instead of duplicating.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from cipulse.records import Job, WorkflowRun


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


@runtime_checkable
class Store(Protocol):
    def upsert(self, runs: Sequence[WorkflowRun], jobs: Sequence[Job]) -> None:
        """Insert or overwrite runs and jobs (with their steps) by identity; atomic per call."""

    def get_watermark(self, monitor: str) -> Watermark | None: ...

    def set_watermark(self, watermark: Watermark) -> None: ...

    def count_jobs(self, repository: str | None = None) -> int: ...

    def count_runs(self, repository: str | None = None) -> int: ...

    def close(self) -> None: ...
