"""Turn a monitor's `health` spec into the metrics layer's thresholds and verdict.

The judgement itself lives in `cipulse.metrics.health` (pure, shared with the dashboard and reports);
this module only adapts the CRD's field names and keeps the figures the status needs.
"""

from __future__ import annotations

from dataclasses import dataclass

from cipulse.metrics.facts import WindowFacts
from cipulse.metrics.health import HealthThresholds, assess_health
from cipulse.operator.spec import HealthSpec

UNKNOWN = "Unknown"


@dataclass(frozen=True, slots=True)
class HealthVerdict:
    status: str
    reasons: tuple[str, ...]
    jobs: int
    success_rate: float | None
    p95_duration_seconds: int | None
    p95_queue_seconds: int | None


def thresholds(spec: HealthSpec) -> HealthThresholds:
    return HealthThresholds(
        success_rate_degraded=spec.degraded_success_rate,
        success_rate_failing=spec.failing_success_rate,
        min_finished_jobs=spec.min_finished_jobs,
        queue_p95_degraded_seconds=spec.queue_p95_degraded_seconds,
        queue_p95_failing_seconds=spec.queue_p95_failing_seconds,
        duration_growth_degraded=spec.duration_growth_degraded,
        duration_growth_failing=spec.duration_growth_failing,
    )


def judge(facts: WindowFacts, spec: HealthSpec, previous: WindowFacts | None = None) -> HealthVerdict:
    """`previous` is the window just before, for the slowdown check."""
    overall = facts.overall
    health = assess_health(facts, thresholds(spec), previous=previous)
    return HealthVerdict(
        status=health.status,
        reasons=tuple(health.reasons),
        jobs=overall.total,
        success_rate=overall.success_rate,
        p95_duration_seconds=overall.duration_p95,
        p95_queue_seconds=overall.queue_p95,
    )
