"""The per-monitor summary `cipulse up` prints after every round of polls (fits 80 columns)."""

from __future__ import annotations

from collections.abc import Sequence

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from cipulse.operator.report import PollReport

_HEALTH_STYLE = {"Healthy": "green", "Degraded": "yellow", "Failing": "red", "Unknown": "dim"}


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _seconds(value: int | None) -> str:
    if value is None:
        return "-"
    return f"{value}s" if value < 120 else f"{value / 60:.1f}m"


def _count(value: int | None) -> str:
    return "-" if value is None else str(value)


def summary_table(reports: Sequence[PollReport], title: str) -> Group:
    """A table of figures (p95 = job duration, queue95 = queue time), then why each monitor has its health."""
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, padding=(0, 1))
    table.add_column("monitor", overflow="fold", min_width=12)
    table.add_column("health", no_wrap=True)
    for column in ("runs", "jobs", "new", "success", "p95", "queue95"):
        table.add_column(column, justify="right", no_wrap=True)
    notes: list[Text] = []
    for report in reports:
        verdict = report.verdict
        style = _HEALTH_STYLE.get(report.health, "")
        table.add_row(
            report.monitor,
            Text(report.health, style=style),
            _count(report.runs),
            _count(report.jobs),
            str(report.synced_jobs),
            _rate(verdict.success_rate if verdict else None),
            _seconds(verdict.p95_duration_seconds if verdict else None),
            _seconds(verdict.p95_queue_seconds if verdict else None),
        )
        if not report.ok:
            notes.append(Text(f"  {report.monitor}: {report.reason}: {report.message}", style="red"))
        elif verdict is not None:
            notes.append(Text(f"  {report.monitor}: {'; '.join(verdict.reasons)}", style=style))
    return Group(table, *notes)
