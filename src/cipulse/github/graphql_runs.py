"""Walks workflow runs through GraphQL, newest first, with paging at every level.

`nodes(ids:)` fetches the first page of every workflow in one query; later pages go workflow by workflow
(one cursor per query). With jobs, a run whose check runs exceed the page continues with CheckRunsPage and a
check run whose steps exceed the page continues with CheckStepsPage, so nothing is cut at a page boundary.
A partial answer (errors on some items) is retried for the failed items only.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cipulse.github.client import GitHubClient, GraphQLAnswer
from cipulse.github.errors import GitHubUnavailable
from cipulse.github.listing_batch import ListingBatcher
from cipulse.github.page_sizes import PageSizes
from cipulse.github.parse_rest import WorkflowRef
from cipulse.github.queries import load_query
from cipulse.github.query_cost import estimate_query
from cipulse.records import parse_time

log = logging.getLogger(__name__)

DEFERRED_BATCH = 12


@dataclass(slots=True)
class ListedRun:
    """A run as GraphQL listed it; `check_runs` holds every check run (all pages) when jobs were asked for."""

    workflow: WorkflowRef
    node: dict[str, Any]
    job_count: int | None
    check_runs: list[dict[str, Any]] | None = None

    @property
    def run_id(self) -> int:
        return int(self.node["databaseId"])

    @property
    def created_at(self) -> datetime:
        created = parse_time(self.node["createdAt"])
        assert created is not None
        return created

    @property
    def updated_at(self) -> datetime | None:
        return parse_time(self.node.get("updatedAt"))


@dataclass(frozen=True, slots=True)
class RunPage:
    """Runs of one query; `exhausted` once every workflow reached `since` or its oldest run."""

    runs: list[ListedRun]
    exhausted: bool


@dataclass(slots=True)
class _Cursor:
    workflow: WorkflowRef
    after: str | None = None
    done: bool = False
    listed: list[ListedRun] = field(default_factory=list)


def _failed_items(answer: GraphQLAnswer, field_name: str, count: int) -> set[int]:
    """Indexes of `field_name` items an error points into, to be asked for again.

    An error without a path spoils every item. NOT_FOUND is not a failure: the item is gone (a deleted
    workflow) and stays None instead of being retried forever.
    """
    failed: set[int] = set()
    for error in answer.errors:
        if error.get("type") == "NOT_FOUND":
            continue
        path = error.get("path") or []
        if not path:
            failed.update(range(count))
        elif path[0] == field_name:
            index = path[1] if len(path) >= 2 and isinstance(path[1], int) else 0
            if 0 <= index < count:
                failed.add(index)
    return failed


async def query_items(
    client: GitHubClient, query_name: str, ids: Sequence[str], variables: dict[str, Any]
) -> list[dict[str, Any] | None]:
    """`nodes(ids:)` results in id order, re-asking only for the items whose part of the answer failed."""
    query = load_query(query_name)
    results: dict[int, dict[str, Any] | None] = {}
    pending = list(range(len(ids)))
    policy = client.budget.retry
    for attempt in range(policy.attempts):
        answer = await client.graphql(query, {**variables, "ids": [ids[i] for i in pending]})
        nodes = answer.data.get("nodes")
        nodes = nodes if isinstance(nodes, list) else [None] * len(pending)
        failed = _failed_items(answer, "nodes", len(pending))
        still_pending = []
        for position, index in enumerate(pending):
            if position in failed or position >= len(nodes):
                still_pending.append(index)
            else:
                results[index] = nodes[position]
        if not still_pending:
            return [results[i] for i in range(len(ids))]
        log.info("%s: retrying %d of %d failed items", query_name, len(still_pending), len(pending))
        pending = still_pending
        await asyncio.sleep(policy.delay(attempt))
    raise GitHubUnavailable(f"{query_name}: {len(pending)} items kept failing")


async def _query_node(client: GitHubClient, query_name: str, variables: dict[str, Any]) -> dict[str, Any]:
    """A single-`node` query, retried whole until its answer has no errors ({} if the node is gone)."""
    query = load_query(query_name)
    policy = client.budget.retry
    for attempt in range(policy.attempts):
        answer = await client.graphql(query, variables)
        node = answer.data.get("node")
        if not _failed_items(answer, "node", 1):
            return node if isinstance(node, dict) else {}
        await asyncio.sleep(policy.delay(attempt))
    raise GitHubUnavailable(f"{query_name} kept failing")


async def _complete_steps(client: GitHubClient, check_run: dict[str, Any], sizes: PageSizes) -> None:
    steps = check_run.get("steps") or {"nodes": [], "pageInfo": {"hasNextPage": False}}
    nodes = list(steps.get("nodes") or [])
    page = steps.get("pageInfo") or {}
    while page.get("hasNextPage"):
        node = await _query_node(
            client,
            "check_steps_page",
            {"checkRunId": check_run["id"], "after": page.get("endCursor"), "stepsPerPage": sizes.max_page},
        )
        connection = node.get("steps") or {}
        nodes.extend(connection.get("nodes") or [])
        page = connection.get("pageInfo") or {}
    check_run["steps"] = {"nodes": nodes}


async def _continue_check_runs(
    client: GitHubClient,
    suite_id: str,
    check_runs: list[dict[str, Any]],
    page: dict[str, Any],
    sizes: PageSizes,
) -> None:
    """Follow one check suite's cursor to the end (runs with more than a full page of jobs)."""
    while page.get("hasNextPage"):
        node = await _query_node(
            client,
            "check_runs_page",
            {
                "checkSuiteId": suite_id,
                "after": page.get("endCursor"),
                "jobsPerPage": sizes.max_page,
                "stepsPerPage": sizes.steps,
            },
        )
        more = node.get("checkRuns") or {}
        check_runs.extend(c for c in more.get("nodes") or [] if c)
        page = more.get("pageInfo") or {}


def _one_point_chunks(
    suites: list[tuple[int, dict[str, Any]]], steps: int
) -> list[list[tuple[int, dict[str, Any]]]]:
    """Group suites (sorted by job total) so each SuiteCheckRuns query costs one point."""
    document = load_query("suite_check_runs").document
    chunks: list[list[tuple[int, dict[str, Any]]]] = []
    for total, run in sorted(suites, key=lambda pair: pair[0]):
        if chunks:
            candidate = [*chunks[-1], (total, run)]
            variables = {"ids": ["x"] * len(candidate), "jobsPerPage": total, "stepsPerPage": steps}
            if estimate_query(document, variables).cost <= 1:
                chunks[-1] = candidate
                continue
        chunks.append([(total, run)])
    return chunks


async def _take_first_pages(client: GitHubClient, runs: list[ListedRun], sizes: PageSizes) -> list[ListedRun]:
    """Keep each run's first page of check runs; follow cursors of runs with over a full page of jobs.

    Returns the runs whose jobs exceed the listing's page but fit one full page: they are re-fetched
    later in batches (`_refetch_suites`), which costs far less than one query each.
    """
    pending: list[ListedRun] = []
    for listed in runs:
        suite = listed.node.get("checkSuite") or {}
        connection = suite.get("checkRuns") or {}
        listed.check_runs = [c for c in connection.get("nodes") or [] if c]
        page = connection.get("pageInfo") or {}
        if not page.get("hasNextPage"):
            continue
        total = int(connection.get("totalCount") or 0)
        if 0 < total <= sizes.max_page:
            pending.append(listed)
        else:
            await _continue_check_runs(client, suite["id"], listed.check_runs, page, sizes)
    return pending


async def _refetch_suites(client: GitHubClient, runs: list[ListedRun], sizes: PageSizes) -> None:
    """All check runs of these suites, several suites per query, each query sized to one point."""
    by_suite = {str(listed.node["checkSuite"]["id"]): listed for listed in runs}
    totals = [
        (int(listed.node["checkSuite"]["checkRuns"].get("totalCount") or 0), listed.node) for listed in runs
    ]
    for chunk in _one_point_chunks(totals, sizes.steps):
        first = max(total for total, _ in chunk)
        ids = [str(run["checkSuite"]["id"]) for _, run in chunk]
        items = await query_items(
            client, "suite_check_runs", ids, {"jobsPerPage": first, "stepsPerPage": sizes.steps}
        )
        for suite_id, item in zip(ids, items, strict=True):
            connection = (item or {}).get("checkRuns") or {}
            listed = by_suite[suite_id]
            listed.check_runs = [c for c in connection.get("nodes") or [] if c]
            page = connection.get("pageInfo") or {}
            await _continue_check_runs(client, suite_id, listed.check_runs, page, sizes)


async def _finish(client: GitHubClient, runs: list[ListedRun], sizes: dict[int, PageSizes]) -> None:
    """Complete the steps of every check run and let each workflow's page size learn from the runs."""
    for listed in runs:
        for check_run in listed.check_runs or []:
            await _complete_steps(client, check_run, sizes[listed.workflow.database_id])
        sizes[listed.workflow.database_id].observe_jobs(len(listed.check_runs or []))


def _job_count(run: dict[str, Any]) -> int | None:
    connection = (run.get("checkSuite") or {}).get("checkRuns") or {}
    count = connection.get("totalCount")
    return int(count) if isinstance(count, int) else None


async def list_runs(
    client: GitHubClient,
    workflows: Sequence[WorkflowRef],
    *,
    since: datetime | None,
    with_jobs: bool,
    sizes: PageSizes,
    first_page_only: bool = False,
    batcher: ListingBatcher | None = None,
) -> AsyncIterator[RunPage]:
    """Pages of runs created at or after `since` (all runs when None), newest first per workflow.

    With `first_page_only`, yields just the first combined page (a cheap look at what is new); a
    `batcher` sends that first page together with other syncs' first pages.
    """
    cursors = [_Cursor(workflow) for workflow in workflows]
    per_workflow: dict[int, PageSizes] = {}  # each workflow's jobs page follows its own runs
    deferred: list[ListedRun] = []  # runs waiting for a batched re-fetch of their jobs
    while True:
        active = [c for c in cursors if not c.done]
        if not active:
            return
        # The first page of every workflow goes in one query; continuations are one workflow each.
        batch = active if all(c.after is None for c in active) else [active[0]]
        query_name = "workflow_runs_with_jobs" if with_jobs else "workflow_runs"
        variables: dict[str, Any] = {"after": batch[0].after}
        page_sizes = (
            sizes if len(batch) > 1 else per_workflow.setdefault(batch[0].workflow.database_id, sizes.copy())
        )
        variables.update(page_sizes.variables(with_jobs, len(batch)))
        ids = [c.workflow.node_id for c in batch]
        if batcher is not None and not with_jobs and batch[0].after is None:
            items = await batcher.items(client, query_name, ids, variables)
        else:
            items = await query_items(client, query_name, ids, variables)
        page_runs: list[ListedRun] = []
        for cursor, item in zip(batch, items, strict=True):
            if not item:
                log.warning("workflow %s is no longer visible; skipped", cursor.workflow.name)
                cursor.done = True
                continue
            connection = item.get("runs") or {}
            for node in connection.get("nodes") or []:
                if not node or node.get("databaseId") is None:
                    continue
                created = parse_time(node.get("createdAt"))
                if since is not None and created is not None and created < since:
                    cursor.done = True
                    break
                page_runs.append(ListedRun(cursor.workflow, node, _job_count(node)))
            page = connection.get("pageInfo") or {}
            if not page.get("hasNextPage"):
                cursor.done = True
            cursor.after = page.get("endCursor")
        exhausted = all(c.done for c in cursors)
        if with_jobs:
            for listed in page_runs:
                per_workflow.setdefault(listed.workflow.database_id, sizes.copy())
            waiting = await _take_first_pages(client, page_runs, sizes)
            waiting_ids = {id(listed) for listed in waiting}
            ready = [listed for listed in page_runs if id(listed) not in waiting_ids]
            deferred.extend(waiting)
            if exhausted or first_page_only or len(deferred) >= DEFERRED_BATCH:
                await _refetch_suites(client, deferred, sizes)
                ready.extend(deferred)
                deferred = []
            await _finish(client, ready, per_workflow)
            page_runs = ready
        yield RunPage(page_runs, exhausted=exhausted)
        if first_page_only:
            return
