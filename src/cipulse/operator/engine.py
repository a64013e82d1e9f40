"""One monitor's poll: collect from GitHub into the store, then judge health. No Kubernetes here.

The operator (kopf daemon per CiCdMonitor) and `cipulse up` both drive a `MonitorEngine`; what differs is
only where credentials come from and where the `PollReport` goes (CR status or a terminal table).
Restarts are safe because the collector upserts by GitHub identity and resumes from the store's
watermark for this monitor's name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cipulse.github.budget import RateBudget
from cipulse.github.errors import GitHubError, RateLimited
from cipulse.github.sync import SyncTarget, sync_once
from cipulse.operator.health import HealthVerdict, judge
from cipulse.operator.report import SYNCED, PollReport, is_notable
from cipulse.operator.sinks import HealthTransition
from cipulse.operator.spec import MonitorSpec
from cipulse.store.base import Store, StoreUnavailable

# Timestamps from a source whose clock runs ahead of ours (a GHES host with clock skew, the emulator's
# simulated clock) still count as recent instead of silently falling outside every window.
FUTURE_TOLERANCE = timedelta(hours=1)


@dataclass
class MonitorEngine:
    """Stateful driver of one monitor: remembers the last health to detect transitions."""

    name: str
    spec: MonitorSpec
    store: Store
    last_health: str | None = None
    progress: Any = None
    _now: Any = field(default=lambda: datetime.now(UTC), repr=False)

    def target(self, token: str | None) -> SyncTarget:
        return SyncTarget(
            repository=self.spec.repository,
            api_url=self.spec.api_url,
            token=token,
            workflows=tuple(self.spec.workflows),
            branches=tuple(self.spec.branches),
            backfill_days=self.spec.backfill_days,
            mode=self.spec.mode,
        )

    async def poll(self, token: str | None) -> PollReport:
        """Sync once and assess; GitHub and store failures become a report, never an exception."""
        budget = RateBudget.shared(self.spec.api_url, token)
        started = self._now()
        reason, message, retry_at = SYNCED, "", None
        synced_runs = synced_jobs = 0
        try:
            result = await sync_once(
                self.target(token), self.store, monitor=self.name, budget=budget, progress=self.progress
            )
            synced_runs, synced_jobs = result.runs, result.jobs
            message = f"collected {result.runs} runs and {result.jobs} jobs"
        except RateLimited as error:
            reason, message, retry_at = "RateLimited", str(error), error.reset_at
        except GitHubError as error:
            reason, message = type(error).__name__, str(error)
        except StoreUnavailable as error:
            reason, message = "StoreUnavailable", str(error)
        return self._assess(started, reason, message, synced_runs, synced_jobs, retry_at, budget)

    def _assess(
        self,
        started: datetime,
        reason: str,
        message: str,
        synced_runs: int,
        synced_jobs: int,
        retry_at: datetime | None,
        budget: RateBudget,
    ) -> PollReport:
        repository = self.spec.repository
        try:
            end = self._now() + FUTURE_TOLERANCE
            window = timedelta(hours=self.spec.health.window_hours)
            facts = self.store.window_facts(repository, end - window, end)
            previous = self.store.window_facts(repository, end - 2 * window, end - window)
            verdict: HealthVerdict | None = judge(facts, self.spec.health, previous)
            runs: int | None = self.store.count_runs(repository)
            jobs: int | None = self.store.count_jobs(repository)
            mark = self.store.get_watermark(self.name)
            watermark = mark.newest_created_at if mark else None
        except StoreUnavailable as error:
            verdict, runs, jobs, watermark = None, None, None, None
            reason, message = "StoreUnavailable", str(error)
        transition = None
        if verdict is not None:
            if is_notable(self.last_health, verdict.status):
                transition = HealthTransition(
                    monitor=self.name,
                    repository=repository,
                    previous=self.last_health or "Unknown",
                    current=verdict.status,
                    reasons=verdict.reasons,
                    at=started,
                )
            self.last_health = verdict.status
        return PollReport(
            monitor=self.name,
            repository=repository,
            at=started,
            reason=reason,
            message=message,
            synced_runs=synced_runs,
            synced_jobs=synced_jobs,
            runs=runs,
            jobs=jobs,
            watermark=watermark,
            rate_limit_remaining=budget.remaining(),
            verdict=verdict,
            transition=transition,
            retry_at=retry_at,
        )
