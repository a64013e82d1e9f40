"""What one poll learned, independent of where it is shown (CR status, metrics, a terminal table)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cipulse.operator.health import UNKNOWN, HealthVerdict
from cipulse.operator.sinks import HealthTransition

SYNCED = "Synced"


@dataclass(frozen=True, slots=True)
class PollReport:
    """Everything one poll learned; rendered as CR status, Prometheus samples or a table row."""

    monitor: str
    repository: str
    at: datetime
    reason: str
    message: str
    synced_runs: int = 0
    synced_jobs: int = 0
    runs: int | None = None
    jobs: int | None = None
    watermark: datetime | None = None
    rate_limit_remaining: int | None = None
    verdict: HealthVerdict | None = None
    transition: HealthTransition | None = None
    retry_at: datetime | None = None

    @property
    def ok(self) -> bool:
        return self.reason == SYNCED

    @property
    def health(self) -> str:
        return self.verdict.status if self.verdict else UNKNOWN


def is_notable(previous: str | None, current: str) -> bool:
    """A transition worth an Event and a webhook: any change, except learning that all is well."""
    if previous == current:
        return False
    return not (previous in (None, UNKNOWN) and current in ("Healthy", UNKNOWN))
