"""Chooses GraphQL page sizes so each query costs one point while fetching as much as possible.

GitHub charges requested page sizes, not returned items, and rounds requests/100 to the nearest point:
up to 149 connection requests cost 1 point. Asking for 100 jobs per run when runs have 6 would waste most
of that, so the jobs page follows what this sync has seen of the workflow: the size with the lowest
expected cost, counting both the slots paid for on every run and the follow-up query for runs that do not
fit (those are completed, never truncated). Steps pages are free (a check run's steps are one request
whatever their size), so they use the maximum.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cipulse.github.queries import load_query
from cipulse.github.query_cost import GITHUB_NODE_LIMIT, estimate_query

MAX_PAGE = 100
INITIAL_JOBS_PER_RUN = 12
TARGET_POINTS = 1


@dataclass
class PageSizes:
    jobs: int = INITIAL_JOBS_PER_RUN
    steps: int = MAX_PAGE
    max_page: int = MAX_PAGE
    observed_jobs: list[int] = field(default_factory=list)

    def copy(self) -> PageSizes:
        return PageSizes(self.jobs, self.steps, self.max_page, list(self.observed_jobs))

    def observe_jobs(self, count: int) -> None:
        """Adapt the jobs page to the runs seen so far."""
        self.observed_jobs.append(count)
        self.jobs = cheapest_jobs_page(self.observed_jobs, self.max_page)

    def variables(self, with_jobs: bool, workflows: int) -> dict[str, Any]:
        """Page-size variables: the most runs per page that cost no more than a one-run page would."""
        ids = [f"w{i}" for i in range(max(1, workflows))]
        base: dict[str, Any] = {"ids": ids, "after": None}
        if with_jobs:
            base.update(jobsPerPage=self.jobs, stepsPerPage=self.steps)
        query = load_query("workflow_runs_with_jobs" if with_jobs else "workflow_runs")
        target = max(TARGET_POINTS, estimate_query(query.document, {**base, "runsPerPage": 1}).cost)
        low, high = 1, self.max_page
        while low < high:
            middle = (low + high + 1) // 2
            estimate = estimate_query(query.document, {**base, "runsPerPage": middle})
            if estimate.cost <= target and estimate.nodes <= GITHUB_NODE_LIMIT:
                low = middle
            else:
                high = middle - 1
        result = {"runsPerPage": low}
        if with_jobs:
            result.update(jobsPerPage=self.jobs, stepsPerPage=self.steps)
        return result


REQUESTS_PER_POINT = 149


def cheapest_jobs_page(counts: list[int], max_page: int = MAX_PAGE) -> int:
    """The jobs page size with the lowest expected points per run for these observed job counts."""

    def expected_points(page: int) -> float:
        slots = (1 + page) / REQUESTS_PER_POINT
        overflow = 0.0
        for count in counts:
            if count > page:
                # re-fetched in a batch sized to the real total, plus cursor pages beyond 100
                overflow += (1 + min(count, max_page)) / REQUESTS_PER_POINT + (count - 1) // max_page
        return slots + overflow / len(counts)

    candidates = {1, max_page, *(min(max(1, c), max_page) for c in counts)}
    return min(sorted(candidates), key=expected_points)
