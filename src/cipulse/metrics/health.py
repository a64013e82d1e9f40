"""Monitor health: Healthy / Degraded / Failing from configurable thresholds, always with the reasons.

The status is the worst of the individual checks; ``reasons`` lists every check that fired (worst first),
or, when none fired, one line per check saying why it passed, so the status is never unexplained.
Checks (on the window's ``overall`` facts):

- success rate (`success`) below ``success_rate_degraded`` / ``success_rate_failing`` (judged only with at
  least ``min_finished_jobs`` successes + failures: a couple of red jobs in a quiet week is not an outage);
- queue time p95 above ``queue_p95_degraded_seconds`` / ``queue_p95_failing_seconds``;
- duration p95 grown versus ``previous`` (typically the week before) by more than
  ``duration_growth_degraded`` / ``duration_growth_failing`` (0.5 = 50% slower);
- stuck runs (`stuck`) at least ``stuck_runs_degraded`` / ``stuck_runs_failing``.
An empty window is Healthy ("no jobs in the window"): silence is not a failure of the pipelines; the
operator reports collection errors separately.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

from cipulse.metrics.facts import WindowFacts

Status = Literal["Healthy", "Degraded", "Failing"]
STATUSES: Final[tuple[Status, ...]] = ("Healthy", "Degraded", "Failing")


@dataclass(frozen=True, slots=True)
class HealthThresholds:
    success_rate_degraded: float = 0.90
    success_rate_failing: float = 0.75
    min_finished_jobs: int = 5
    queue_p95_degraded_seconds: int = 600
    queue_p95_failing_seconds: int = 1800
    duration_growth_degraded: float = 0.5
    duration_growth_failing: float = 1.0
    stuck_runs_degraded: int = 1
    stuck_runs_failing: int = 5

    def __post_init__(self) -> None:
        if not 0 <= self.success_rate_failing <= self.success_rate_degraded <= 1:
            raise ValueError("need 0 <= success_rate_failing <= success_rate_degraded <= 1")
        if not 0 <= self.queue_p95_degraded_seconds <= self.queue_p95_failing_seconds:
            raise ValueError("need 0 <= queue_p95_degraded_seconds <= queue_p95_failing_seconds")
        if not 0 <= self.duration_growth_degraded <= self.duration_growth_failing:
            raise ValueError("need 0 <= duration_growth_degraded <= duration_growth_failing")
        if not 1 <= self.stuck_runs_degraded <= self.stuck_runs_failing:
            raise ValueError("need 1 <= stuck_runs_degraded <= stuck_runs_failing")
        if self.min_finished_jobs < 0:
            raise ValueError("min_finished_jobs must be >= 0")


@dataclass(frozen=True, slots=True)
class Health:
    status: Status
    reasons: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown health status {self.status!r}")
        if not self.reasons:
            raise ValueError("a health verdict needs at least one reason")


def _rank(status: Status) -> int:
    return STATUSES.index(status)


def _grade(value: float, degraded: float, failing: float, *, higher_is_worse: bool) -> Status:
    if higher_is_worse:
        return "Failing" if value >= failing else "Degraded" if value >= degraded else "Healthy"
    return "Failing" if value < failing else "Degraded" if value < degraded else "Healthy"


def assess_health(
    facts: WindowFacts,
    thresholds: HealthThresholds | None = None,
    *,
    previous: WindowFacts | None = None,
    stuck_runs: int = 0,
) -> Health:
    """Grade one window; `previous` (same length, just before) enables the slowdown check."""
    limits = thresholds or HealthThresholds()
    overall = facts.overall
    findings: list[tuple[Status, str]] = []

    if facts.is_empty:
        findings.append(("Healthy", "no jobs in the window"))
    elif overall.success_rate is None or overall.finished < limits.min_finished_jobs:
        findings.append(
            (
                "Healthy",
                f"only {overall.finished} finished jobs (< {limits.min_finished_jobs}): "
                "too few to judge the success rate",
            )
        )
    else:
        status = _grade(
            overall.success_rate,
            limits.success_rate_degraded,
            limits.success_rate_failing,
            higher_is_worse=False,
        )
        bound = {"Failing": limits.success_rate_failing, "Degraded": limits.success_rate_degraded}
        if status == "Healthy":
            text = f"success rate {overall.success_rate:.1%} >= {limits.success_rate_degraded:.1%}"
        else:
            text = (
                f"success rate {overall.success_rate:.1%} < {bound[status]:.1%} "
                f"({overall.failure} failed of {overall.finished} finished jobs)"
            )
        findings.append((status, text))

    if overall.queue_p95 is not None:
        status = _grade(
            overall.queue_p95,
            limits.queue_p95_degraded_seconds,
            limits.queue_p95_failing_seconds,
            higher_is_worse=True,
        )
        estimated = (
            f", {overall.queue_estimated_count} of {overall.queue_count} estimated"
            if overall.queue_estimated_count
            else ""
        )
        if status == "Healthy":
            text = f"queue p95 {overall.queue_p95}s < {limits.queue_p95_degraded_seconds}s{estimated}"
        else:
            bound_s = (
                limits.queue_p95_failing_seconds if status == "Failing" else limits.queue_p95_degraded_seconds
            )
            text = f"queue p95 {overall.queue_p95}s >= {bound_s}s{estimated}"
        findings.append((status, text))

    before = None if previous is None else previous.overall.duration_p95
    now = overall.duration_p95
    if before and now is not None:
        growth = (now - before) / before
        status = _grade(
            growth, limits.duration_growth_degraded, limits.duration_growth_failing, higher_is_worse=True
        )
        verb = "grew" if growth >= 0 else "changed"
        findings.append((status, f"duration p95 {verb} {growth:+.0%} ({before}s -> {now}s)"))

    if stuck_runs > 0:
        status = _grade(
            stuck_runs, limits.stuck_runs_degraded, limits.stuck_runs_failing, higher_is_worse=True
        )
        findings.append((status, f"{stuck_runs} stuck run(s) queued or in progress beyond the threshold"))

    worst: Status = max((status for status, _ in findings), key=_rank)
    if worst == "Healthy":
        reasons = [text for _, text in findings]
    else:
        fired = sorted((f for f in findings if f[0] != "Healthy"), key=lambda f: -_rank(f[0]))
        reasons = [text for _, text in fired]
    return Health(status=worst, reasons=reasons)
