"""The REST calls the collector needs, with paging and GitHub's 1,000-result cap on filtered run lists.

Filtered run lists (`created=A..B`) return at most 1,000 runs however many pages are requested, so a
backfill splits its date range in halves until no window reports more than 1,000 runs.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

from cipulse.github.client import GitHubClient
from cipulse.github.parse_rest import WorkflowRef, workflow_from_rest

log = logging.getLogger(__name__)

PAGE_SIZE = 100
FILTERED_LIST_CAP = 1_000


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


async def list_workflows(client: GitHubClient, repository: str) -> list[WorkflowRef]:
    """Every workflow of the repository; answered 304 (free) while nothing changed."""
    workflows: list[WorkflowRef] = []
    page = 1
    while True:
        answer = await client.rest_get(
            f"/repos/{repository}/actions/workflows", {"per_page": PAGE_SIZE, "page": page}, durable=True
        )
        batch = answer.data.get("workflows") or [] if isinstance(answer.data, dict) else []
        workflows.extend(workflow_from_rest(item) for item in batch)
        total = answer.data.get("total_count", 0) if isinstance(answer.data, dict) else 0
        if len(batch) < PAGE_SIZE or len(workflows) >= total:
            return workflows
        page += 1


async def list_jobs(client: GitHubClient, repository: str, run_id: int) -> list[dict[str, Any]]:
    """Jobs of every attempt of a run (`filter=all`: the default, `latest`, hides re-run attempts)."""
    jobs: list[dict[str, Any]] = []
    page = 1
    while True:
        answer = await client.rest_get(
            f"/repos/{repository}/actions/runs/{run_id}/jobs",
            {"filter": "all", "per_page": PAGE_SIZE, "page": page},
            conditional=False,
        )
        batch = answer.data.get("jobs") or [] if isinstance(answer.data, dict) else []
        jobs.extend(batch)
        total = int(answer.data.get("total_count") or 0) if isinstance(answer.data, dict) else 0
        if len(batch) < PAGE_SIZE or len(jobs) >= total:
            return jobs
        page += 1


async def get_run(client: GitHubClient, repository: str, run_id: int) -> dict[str, Any]:
    answer = await client.rest_get(f"/repos/{repository}/actions/runs/{run_id}", conditional=False)
    return dict(answer.data)


async def _runs_page(
    client: GitHubClient, repository: str, start: datetime, end: datetime, page: int
) -> tuple[int, list[dict[str, Any]]]:
    # Not conditional: the window ends at the time of the sync, so this URL is never asked again and
    # remembering its answer for a 304 would only hold memory.
    answer = await client.rest_get(
        f"/repos/{repository}/actions/runs",
        {"created": f"{_stamp(start)}..{_stamp(end)}", "per_page": PAGE_SIZE, "page": page},
        conditional=False,
    )
    data = answer.data if isinstance(answer.data, dict) else {}
    return int(data.get("total_count") or 0), list(data.get("workflow_runs") or [])


async def list_runs_created_between(
    client: GitHubClient, repository: str, start: datetime, end: datetime
) -> AsyncIterator[dict[str, Any]]:
    """Runs (latest attempt) created in [start, end], newest window first, windows split below the cap."""
    start = start.replace(microsecond=0)
    end = end.replace(microsecond=0)
    total, first_page = await _runs_page(client, repository, start, end, 1)
    if total > FILTERED_LIST_CAP and end - start >= timedelta(seconds=2):
        middle = start + (end - start) / 2
        middle = middle.replace(microsecond=0)
        async for run in list_runs_created_between(client, repository, middle + timedelta(seconds=1), end):
            yield run
        async for run in list_runs_created_between(client, repository, start, middle):
            yield run
        return
    if total > FILTERED_LIST_CAP:
        log.warning(
            "%s has %d runs created in the second %s; GitHub lists only %d of them",
            repository,
            total,
            _stamp(start),
            FILTERED_LIST_CAP,
        )
    for run in first_page:
        yield run
    fetched, page, last = len(first_page), 1, len(first_page)
    while fetched < min(total, FILTERED_LIST_CAP) and last == PAGE_SIZE:
        page += 1
        _, batch = await _runs_page(client, repository, start, end, page)
        for run in batch:
            yield run
        fetched, last = fetched + len(batch), len(batch)
