"""CiCdMonitor status documents built from poll reports (pure: easy to test, no API calls).

Conditions follow the Kubernetes convention: `lastTransitionTime` changes only when a condition's
`status` flips, so `kubectl wait --for=condition=Ready` and alerting on transitions both work.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from cipulse.operator.notify import SinkState
from cipulse.operator.report import PollReport

READY = "Ready"
SYNCING = "Syncing"
DEGRADED = "Degraded"
SINKS_READY = "SinksReady"


def timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def condition(kind: str, ok: bool, reason: str, message: str, generation: int | None) -> dict[str, Any]:
    found: dict[str, Any] = {
        "type": kind,
        "status": "True" if ok else "False",
        "reason": reason,
        "message": message,
    }
    if generation is not None:
        found["observedGeneration"] = generation
    return found


def merge_conditions(
    existing: Sequence[Mapping[str, Any]] | None, updates: Sequence[dict[str, Any]], now: datetime
) -> list[dict[str, Any]]:
    """Replace conditions by type, keeping lastTransitionTime when the status did not change."""
    by_type = {str(c.get("type")): dict(c) for c in existing or ()}
    for update in updates:
        before = by_type.get(update["type"])
        if (
            before is not None
            and before.get("status") == update["status"]
            and before.get("lastTransitionTime")
        ):
            update = {**update, "lastTransitionTime": before["lastTransitionTime"]}
        else:
            update = {**update, "lastTransitionTime": timestamp(now)}
        by_type[update["type"]] = update
    order = {READY: 0, SYNCING: 1, DEGRADED: 2, SINKS_READY: 3}
    return sorted(by_type.values(), key=lambda c: (order.get(str(c["type"]), 9), str(c["type"])))


def syncing_status(
    existing: Mapping[str, Any], generation: int | None, now: datetime, backfill: bool
) -> dict[str, Any]:
    reason, message = (
        ("Backfilling", "collecting history") if backfill else ("Polling", "collecting new activity")
    )
    return {
        "conditions": merge_conditions(
            existing.get("conditions"), [condition(SYNCING, True, reason, message, generation)], now
        )
    }


def problem_status(
    existing: Mapping[str, Any], generation: int | None, now: datetime, reason: str, message: str
) -> dict[str, Any]:
    """A problem found before collecting (missing Secret, invalid spec): Ready=False, nothing else touched."""
    updates = [
        condition(READY, False, reason, message, generation),
        condition(SYNCING, False, reason, "waiting for the problem to be fixed", generation),
    ]
    return {
        "observedGeneration": generation,
        "conditions": merge_conditions(existing.get("conditions"), updates, now),
    }


def report_status(
    existing: Mapping[str, Any], generation: int | None, report: PollReport, next_poll: datetime
) -> dict[str, Any]:
    """The status after one poll."""
    ready_message = report.message if report.ok else f"{report.reason}: {report.message}"
    health = report.health
    bad = health in ("Degraded", "Failing")
    reasons = list(report.verdict.reasons) if report.verdict else []
    updates = [
        condition(READY, report.ok, report.reason, ready_message, generation),
        condition(SYNCING, False, "Idle", f"next poll at {timestamp(next_poll)}", generation),
        condition(DEGRADED, bad, health, "; ".join(reasons) or health, generation),
    ]
    status: dict[str, Any] = {
        "observedGeneration": generation,
        "conditions": merge_conditions(existing.get("conditions"), updates, report.at),
        "health": health,
        "healthReasons": reasons,
        "lastSyncRuns": report.synced_runs,
        "lastSyncJobs": report.synced_jobs,
    }
    if report.ok:
        status["lastSyncTime"] = timestamp(report.at)
    optional = {
        "runs": report.runs,
        "jobs": report.jobs,
        "rateLimitRemaining": report.rate_limit_remaining,
        "watermark": timestamp(report.watermark) if report.watermark else None,
        "successRate": None if report.verdict is None else report.verdict.success_rate,
        "p95DurationSeconds": None if report.verdict is None else report.verdict.p95_duration_seconds,
    }
    status.update({key: value for key, value in optional.items() if value is not None})
    return status


def sinks_status(
    existing: Mapping[str, Any], generation: int | None, now: datetime, state: SinkState
) -> dict[str, Any]:
    """SinksReady and the outbox backlog after a flush; written only when they change."""
    update = condition(SINKS_READY, state.ok, state.reason, state.message, generation)
    return {
        "conditions": merge_conditions(existing.get("conditions"), [update], now),
        "pendingDeliveries": state.pending,
    }
