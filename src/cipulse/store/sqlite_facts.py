"""Window facts from SQLite, in two interchangeable engines that produce the same intermediate rows.

Both reduce a window to (1) count rows at the finest grain, (repository, workflow, job, branch, outcome,
labels) -> count and sums, which add up to every coarser group, and (2) nearest-rank percentile rows per
level and measure, (group key, n, p50, p90, p95). `collect` turns those into `WindowFacts` through the
shared `metrics.facts.GroupTally`, so both engines and the search store finish identically.

- `SqlFacts`: plain SQL over the ``jobs`` table (GROUP BY and ROW_NUMBER window functions); cost grows
  with the jobs in the window because SQLite must sort them for each level (seconds per 100k jobs). An
  independent cross-check of the default engine.
- `sqlite_columnar.ColumnarFacts`: the same numbers from one range read of ``job_facts`` decoded and
  counted by numpy (the default).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal, Protocol

from cipulse.metrics.cost import RunnerRates
from cipulse.metrics.facts import LEVELS, GroupKey, GroupTally, Level, WindowFacts, assemble
from cipulse.metrics.percentiles import PERCENTILES, rank

Measure = Literal["durations", "queues"]
MEASURES: Final[tuple[Measure, ...]] = ("durations", "queues")
ALL_LEVELS: Final[tuple[Level, ...]] = ("all", *LEVELS)


@dataclass(frozen=True, slots=True)
class CountRow:
    """Counts and sums of one (group, outcome, runner label set) in the window."""

    level: Level
    key: GroupKey
    outcome: str
    labels: str
    count: int
    seconds: int
    billable: int
    queue_exact: int
    queue_estimated: int
    clock_skew: int


@dataclass(frozen=True, slots=True)
class PercentileRow:
    level: Level
    measure: Measure
    key: GroupKey
    n: int
    picked: tuple[int, ...]  # values at the PERCENTILES' nearest ranks


class FactsEngine(Protocol):
    def count_rows(self, start_us: int, end_us: int, repository: str | None) -> Iterable[CountRow]: ...

    def percentile_rows(
        self, start_us: int, end_us: int, repository: str | None
    ) -> Iterable[PercentileRow]: ...


def level_key(level: Level, repository: str, workflow: str, job: str, branch: str | None) -> GroupKey | None:
    if level == "repository":
        return (repository, None, None, None)
    if level == "workflow":
        return (repository, workflow, None, None)
    if level == "job":
        return (repository, workflow, job, None)
    if level == "branch":
        return None if branch is None else (repository, None, None, branch)
    return (None, None, None, None)


def synthetic_counts(n: int, picked: Sequence[int]) -> dict[int, int]:
    """(value, count) pairs totalling n whose nearest-rank percentiles are exactly `picked`.

    The engine found the values at ranks r50 <= r90 <= r95; placing r50 items at v50, the next r90 - r50
    at v90 and the rest at v95 reproduces those percentiles (values do not decrease with rank).
    """
    ranks = [rank(p, n) for p in PERCENTILES]
    counts: dict[int, int] = {}
    previous = 0
    for index, (value, at) in enumerate(zip(picked, ranks, strict=True)):
        upto = n if index == len(ranks) - 1 else at
        counts[value] = counts.get(value, 0) + (upto - previous)
        previous = upto
    return counts


def collect(
    engine: FactsEngine,
    repository: str | None,
    start: datetime,
    end: datetime,
    start_us: int,
    end_us: int,
    rates: RunnerRates | None,
) -> WindowFacts:
    overall = GroupTally()
    by_level: dict[Level, dict[GroupKey, GroupTally]] = {level: {} for level in LEVELS}

    def tally_of(level: Level, key: GroupKey) -> GroupTally | None:
        if level == "all":
            return overall
        return by_level[level].setdefault(key, GroupTally())

    for row in engine.count_rows(start_us, end_us, repository):
        tally = tally_of(row.level, row.key)
        assert tally is not None
        tally.outcomes[row.outcome] += row.count
        tally.job_seconds += row.seconds
        if row.billable:
            tally.billable_by_labels[row.labels] += row.billable
        tally.queue_exact_count += row.queue_exact
        tally.queue_estimated_count += row.queue_estimated
        tally.clock_skew_count += row.clock_skew
    for prow in engine.percentile_rows(start_us, end_us, repository):
        found = overall if prow.level == "all" else by_level[prow.level].get(prow.key)
        if found is not None and prow.n:
            getattr(found, prow.measure).update(synthetic_counts(prow.n, prow.picked))
    return assemble(repository, start, end, overall, by_level, rates)


def rollup(
    finest: Iterable[tuple[str, str, str, str | None, str, str, int, int, int, int, int, int]],
) -> list[CountRow]:
    """Finest-grain (repository, workflow, job, branch, outcome, labels, count, seconds, billable,
    queue_exact, queue_estimated, clock_skew) rows -> `CountRow`s for every level (sums add up)."""
    sums: dict[tuple[Level, GroupKey, str, str], list[int]] = {}
    for repo, workflow, job, branch, outcome, labels, *values in finest:
        for level in ALL_LEVELS:
            key = level_key(level, repo, workflow, job, branch)
            if key is None:
                continue
            slot = sums.get((level, key, outcome, labels))
            if slot is None:
                sums[(level, key, outcome, labels)] = list(values)
            else:
                for index, value in enumerate(values):
                    slot[index] += value
    return [
        CountRow(level, key, outcome, labels, *values)
        for (level, key, outcome, labels), values in sums.items()
    ]


_LEVEL_COLUMNS: Final[dict[Level, tuple[str, ...]]] = {
    "all": (),
    "repository": ("repository",),
    "workflow": ("repository", "workflow_name"),
    "job": ("repository", "workflow_name", "name"),
    "branch": ("repository", "head_branch"),
}
_MEASURE_SQL: Final[dict[Measure, tuple[str, str]]] = {
    "durations": ("duration_s", "duration_s IS NOT NULL AND outcome IN ('success', 'failure')"),
    "queues": ("queue_s", "queue_s IS NOT NULL"),
}


class SqlFacts:
    """Window facts in SQL on a connection the caller holds (inside one read transaction)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    @staticmethod
    def _where(start_us: int, end_us: int, repository: str | None) -> tuple[str, list[Any]]:
        where = "window_at >= ? AND window_at < ?"
        params: list[Any] = [start_us, end_us]
        if repository is not None:
            where += " AND repository = ?"
            params.append(repository)
        return where, params

    def count_rows(self, start_us: int, end_us: int, repository: str | None) -> list[CountRow]:
        where, params = self._where(start_us, end_us, repository)
        rows = self.conn.execute(
            "SELECT repository, workflow_name, name, head_branch, outcome, labels_key, COUNT(*), "
            "TOTAL(duration_s), TOTAL(billable_minutes), TOTAL(queue_exact), "
            "TOTAL(queue_s IS NOT NULL AND NOT queue_exact), TOTAL(clock_skew) "
            f"FROM jobs WHERE {where} GROUP BY 1, 2, 3, 4, 5, 6",
            params,
        ).fetchall()
        return rollup((r[0], r[1], r[2], r[3], r[4], r[5], *(int(v) for v in r[6:])) for r in rows)

    def percentile_rows(self, start_us: int, end_us: int, repository: str | None) -> list[PercentileRow]:
        where, params = self._where(start_us, end_us, repository)
        result: list[PercentileRow] = []
        for level in ALL_LEVELS:
            columns = _LEVEL_COLUMNS[level]
            partition = f"PARTITION BY {', '.join(columns)}" if columns else ""
            group_by = f"GROUP BY {', '.join(columns)}" if columns else ""
            selected = "".join(f"{c}, " for c in columns)
            branch_filter = " AND head_branch IS NOT NULL" if level == "branch" else ""
            picks = ", ".join(f"MAX(CASE WHEN rn = ({p} * n + 99) / 100 THEN x END)" for p in PERCENTILES)
            for measure in MEASURES:
                value, condition = _MEASURE_SQL[measure]
                rows = self.conn.execute(
                    f"SELECT {selected}MAX(n), {picks} FROM ("
                    f" SELECT {selected}{value} AS x,"
                    f" ROW_NUMBER() OVER ({partition} ORDER BY {value}) AS rn,"
                    f" COUNT(*) OVER ({partition}) AS n"
                    f" FROM jobs WHERE {where} AND {condition}{branch_filter}"
                    f") {group_by}",
                    params,
                ).fetchall()
                width = len(columns)
                for row in rows:
                    values = tuple(row)
                    n = values[width]
                    if not n:
                        continue
                    names = dict(zip(columns, values[:width], strict=True))
                    key = level_key(
                        level,
                        names.get("repository", ""),
                        names.get("workflow_name", ""),
                        names.get("name", ""),
                        names.get("head_branch"),
                    )
                    if key is not None:
                        picked = tuple(int(v) for v in values[width + 1 :])
                        result.append(PercentileRow(level, measure, key, int(n), picked))
        return result
