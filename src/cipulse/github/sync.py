"""One incremental sync of one repository into a Store.

Modes (what each costs is measured by bench/bench_collector.py):
- "graphql": runs, jobs of every attempt and steps from GraphQL; queue times estimated (marked so).
- "graphql+rest": a one-point GraphQL look for anything new; new runs then come from REST date windows and
  their jobs from REST `jobs?filter=all`, which has exact queue times, runners and attempts. An earlier
  attempt first seen after it was re-run gets a run record without conclusion and times (the jobs of
  every attempt are exact); one seen while it was the latest, or delivered by a webhook, keeps its own.
- "webhooks": deliveries write the records (see webhooks.py); this sync reconciles: the GraphQL listing
  finds runs the store lacks or holds stale, and only those are fetched over REST.

The watermark is the creation time from which runs may still be incomplete. It is written only after
the records up to it are stored, so an interrupted sync is simply run again: the records it already wrote
are recognised (stored_runs.py) and upserts by identity never duplicate. It trails the newest run seen by
LISTING_OVERLAP (a run created just before it may not be listable yet; stored runs re-listed cost nothing
but the listing) and stays at the oldest run that could not be parsed, so that run is tried again.

A run's jobs are written before its run record, in a separate upsert: stores need not write both
atomically (the search store sends them in separate bulk requests), and a run record in the store then
always means its jobs are there too, so a run recognised as stored never has jobs missing after a crash.

Known limit: GitHub lists runs by creation time only, so a re-run started long after a run was created
and settled (older than the watermark) is seen by webhooks, not by polling.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import weakref
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from cipulse.github import rest_api
from cipulse.github.budget import RateBudget, Usage
from cipulse.github.client import GitHubClient
from cipulse.github.endpoints import PUBLIC_API_URL
from cipulse.github.errors import GitHubError, RepositoryNotFound
from cipulse.github.graphql_runs import ListedRun, RunPage, list_runs
from cipulse.github.listing_batch import batcher_for
from cipulse.github.page_sizes import PageSizes
from cipulse.github.parse_graphql import records_from_graphql
from cipulse.github.parse_rest import (
    PayloadError,
    WorkflowRef,
    earlier_attempt,
    job_from_rest,
    run_from_rest,
)
from cipulse.github.stored_runs import StoredRuns, VerifiedRuns
from cipulse.records import Job, WorkflowRun, parse_time
from cipulse.store.base import Store, Watermark

log = logging.getLogger(__name__)

Mode = Literal["graphql", "graphql+rest", "webhooks"]
MODES: tuple[str, ...] = ("graphql", "graphql+rest", "webhooks")
REST_CONCURRENCY = 8
LISTING_OVERLAP = timedelta(minutes=5)

Progress = Callable[[int, int], None]
"""Called with (runs written so far, jobs written so far)."""


@dataclass(frozen=True, slots=True)
class SyncTarget:
    """What to collect. The token is excluded from repr so it cannot leak into logs or tracebacks."""

    repository: str
    api_url: str = PUBLIC_API_URL
    token: str | None = field(default=None, repr=False)
    workflows: tuple[str, ...] = ()
    branches: tuple[str, ...] = ()
    backfill_days: int = 30
    mode: str = "graphql+rest"
    since: datetime | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        if self.repository.count("/") != 1 or not all(self.repository.split("/")):
            raise ValueError(f"repository must look like OWNER/REPO, not {self.repository!r}")


@dataclass(frozen=True, slots=True)
class SyncResult:
    runs: int
    jobs: int
    watermark: datetime | None
    rate_limit_remaining: int | None
    graphql_points: int
    rest_requests: int
    rest_not_modified: int = 0
    skipped: int = 0
    """Runs left out because GitHub's answer for them could not be parsed; the watermark stays at the
    oldest of them, so every sync tries them again."""


@dataclass
class _Session:
    """State of one sync: the records written and the runs seen (for the next watermark)."""

    target: SyncTarget
    store: Store
    client: GitHubClient
    stored: StoredRuns
    floor: datetime
    progress: Progress | None
    runs_written: int = 0
    jobs_written: int = 0
    newest_seen: datetime | None = None
    oldest_incomplete: datetime | None = None
    oldest_skipped: datetime | None = None
    skipped: int = 0

    def see(self, created_at: datetime, completed: bool) -> None:
        if self.newest_seen is None or created_at > self.newest_seen:
            self.newest_seen = created_at
        if not completed and (self.oldest_incomplete is None or created_at < self.oldest_incomplete):
            self.oldest_incomplete = created_at

    def skip(self, created_at: datetime | None, what: str, error: Exception) -> None:
        """A run left out: counted, and the watermark held at it (at the floor when its time is unknown)."""
        log.warning("skipped %s in %s: %s", what, self.target.repository, error)
        self.skipped += 1
        held = created_at if created_at is not None else self.floor
        if self.oldest_skipped is None or held < self.oldest_skipped:
            self.oldest_skipped = held

    def write(self, runs: list[WorkflowRun], jobs: list[Job]) -> None:
        """Jobs first, then run records (see the module docstring)."""
        if not runs and not jobs:
            return
        if jobs:
            self.store.upsert([], jobs)
        if runs:
            self.store.upsert(runs, [])
        self.stored.remember(runs, jobs)
        self.runs_written += len(runs)
        self.jobs_written += len(jobs)
        if self.progress:
            self.progress(self.runs_written, self.jobs_written)

    def next_watermark(self) -> datetime:
        mark = self.floor if self.newest_seen is None else max(self.floor, self.newest_seen - LISTING_OVERLAP)
        for held in (self.oldest_incomplete, self.oldest_skipped):
            if held is not None:
                mark = min(mark, held)
        return mark


_verified: weakref.WeakKeyDictionary[RateBudget, VerifiedRuns] = weakref.WeakKeyDictionary()


def verified_runs_for(budget: RateBudget) -> VerifiedRuns:
    if budget not in _verified:
        _verified[budget] = VerifiedRuns()
    return _verified[budget]


def _matches(values: Sequence[str], *candidates: str | None) -> bool:
    return not values or any(c is not None and c in values for c in candidates)


def _select_workflows(workflows: list[WorkflowRef], wanted: Sequence[str]) -> list[WorkflowRef]:
    return [w for w in workflows if _matches(wanted, w.name, w.path, w.path.rsplit("/", 1)[-1])]


async def sync_once(
    target: SyncTarget,
    store: Store,
    *,
    monitor: str,
    budget: RateBudget | None = None,
    progress: Progress | None = None,
) -> SyncResult:
    """Collect what is new since the monitor's watermark (or the backfill window) and advance it."""
    budget = budget or RateBudget.shared(target.api_url, target.token)
    usage = Usage()
    watermark = store.get_watermark(monitor)
    if watermark is not None and watermark.newest_created_at is not None:
        floor = watermark.newest_created_at
    else:
        floor = target.since or (datetime.now(UTC) - timedelta(days=target.backfill_days))
    async with GitHubClient(target.api_url, target.token, budget, usage) as client:
        try:
            workflows = await rest_api.list_workflows(client, target.repository)
        except RepositoryNotFound as exc:
            raise RepositoryNotFound(
                f"repository {target.repository} not found at {client.endpoints.rest} "
                "(or the token cannot see it)"
            ) from exc
        workflows = _select_workflows(workflows, target.workflows)
        stored = StoredRuns.load(store, target.repository, with_job_counts=target.mode == "webhooks")
        session = _Session(target, store, client, stored, floor, progress)
        if workflows:
            first_sync = watermark is None
            if target.mode == "graphql":
                await _sync_graphql(session, workflows, first_sync=first_sync)
            elif target.mode == "graphql+rest":
                await _sync_graphql_rest(session, workflows, first_sync=first_sync)
            else:
                await _sync_reconcile(session, workflows, first_sync=first_sync)
        next_floor = session.next_watermark()
        store.set_watermark(
            Watermark(monitor=monitor, newest_created_at=next_floor, updated_at=datetime.now(UTC))
        )
    return SyncResult(
        runs=session.runs_written,
        jobs=session.jobs_written,
        watermark=next_floor,
        rate_limit_remaining=budget.remaining(),
        graphql_points=usage.graphql_points,
        rest_requests=usage.rest_requests,
        rest_not_modified=usage.rest_not_modified,
        skipped=session.skipped,
    )


def _listed_branch(listed: ListedRun) -> str | None:
    return ((listed.node.get("checkSuite") or {}).get("branch") or {}).get("name")


def _listed_completed(listed: ListedRun) -> bool:
    return str((listed.node.get("checkSuite") or {}).get("status") or "").upper() == "COMPLETED"


async def _probe(session: _Session, workflows: list[WorkflowRef]) -> RunPage:
    """The first page of the cheap listing, sent together with concurrent syncs' (same token)."""
    async for page in list_runs(
        session.client,
        workflows,
        since=session.floor,
        with_jobs=False,
        sizes=PageSizes(),
        first_page_only=True,
        batcher=batcher_for(session.client.budget),
    ):
        return page
    return RunPage([], exhausted=True)


def _settled(session: _Session, page: RunPage) -> bool:
    """True when the page covers everything since the watermark and all of it is stored unchanged."""
    if not page.exhausted:
        return False
    if any(
        not session.stored.is_known(r.run_id, r.updated_at, None, _listed_completed(r)) for r in page.runs
    ):
        return False
    for listed in page.runs:
        session.see(listed.created_at, _listed_completed(listed))
    return True


async def _sync_graphql(session: _Session, workflows: list[WorkflowRef], *, first_sync: bool) -> None:
    if not first_sync and _settled(session, await _probe(session, workflows)):
        return
    target = session.target
    async for page in list_runs(
        session.client, workflows, since=session.floor, with_jobs=True, sizes=PageSizes()
    ):
        runs: list[WorkflowRun] = []
        jobs: list[Job] = []
        for listed in page.runs:
            session.see(listed.created_at, _listed_completed(listed))
            if not _matches(target.branches, _listed_branch(listed)):
                continue
            if session.stored.is_known(listed.run_id, listed.updated_at, None, _listed_completed(listed)):
                continue
            try:
                new_runs, new_jobs = records_from_graphql(
                    target.repository,
                    listed.workflow.database_id,
                    listed.workflow.name,
                    listed.node,
                    listed.check_runs or [],
                )
            except (PayloadError, KeyError, TypeError, ValueError) as exc:
                session.skip(listed.created_at, f"malformed run {listed.run_id}", exc)
                continue
            runs.extend(new_runs)
            jobs.extend(new_jobs)
        session.write(runs, jobs)


async def _sync_graphql_rest(session: _Session, workflows: list[WorkflowRef], *, first_sync: bool) -> None:
    if not first_sync and _settled(session, await _probe(session, workflows)):
        return
    workflow_ids = {w.database_id for w in workflows}
    now = datetime.now(UTC) + timedelta(days=1)
    pending: list[dict[str, Any]] = []
    async for payload in rest_api.list_runs_created_between(
        session.client, session.target.repository, session.floor, now
    ):
        if payload.get("workflow_id") not in workflow_ids:
            continue
        try:
            created = parse_time(payload.get("created_at"))
            run_id = int(payload["id"])
            updated = parse_time(payload.get("updated_at"))
            if created is None:
                raise PayloadError("listed run has no created_at")
        except (PayloadError, KeyError, TypeError, ValueError) as exc:
            session.skip(_created_or_none(payload), "a malformed listed run", exc)
            continue
        session.see(created, payload.get("status") == "completed")
        if not _matches(session.target.branches, payload.get("head_branch")):
            continue
        if session.stored.is_known(run_id, updated):
            continue
        pending.append(payload)
        if len(pending) >= REST_CONCURRENCY * 4:
            await _fetch_rest_runs(session, pending)
            pending = []
    await _fetch_rest_runs(session, pending)


async def _sync_reconcile(session: _Session, workflows: list[WorkflowRef], *, first_sync: bool) -> None:
    """Webhooks mode: list cheaply over GraphQL, check job counts of what webhooks wrote, and fetch
    over REST only the runs the store lacks, holds stale, or holds with jobs missing."""
    verified = verified_runs_for(session.client.budget)
    pages = [await _probe(session, workflows)] if not first_sync else []
    if not pages or not pages[0].exhausted:
        pages = [
            page
            async for page in list_runs(
                session.client, workflows, since=session.floor, with_jobs=False, sizes=PageSizes()
            )
        ]
    for page in pages:
        missing: list[int] = []
        to_verify: list[ListedRun] = []
        for listed in page.runs:
            session.see(listed.created_at, _listed_completed(listed))
            if not _matches(session.target.branches, _listed_branch(listed)):
                continue
            if not session.stored.is_known(listed.run_id, listed.updated_at, None, _listed_completed(listed)):
                missing.append(listed.run_id)
            elif (session.target.repository, listed.run_id, listed.updated_at) not in verified:
                to_verify.append(listed)
        if to_verify:
            counts = await batcher_for(session.client.budget).items(
                session.client, "run_job_counts", [str(r.node["id"]) for r in to_verify], {}
            )
            for listed, item in zip(to_verify, counts, strict=True):
                total = (((item or {}).get("checkSuite") or {}).get("checkRuns") or {}).get("totalCount")
                if session.stored.is_known(listed.run_id, listed.updated_at, total):
                    verified.add(session.target.repository, listed.run_id, listed.updated_at)
                else:
                    missing.append(listed.run_id)
        repository = session.target.repository
        payloads = await _gather_limited(
            [functools.partial(rest_api.get_run, session.client, repository, run_id) for run_id in missing]
        )
        await _fetch_rest_runs(session, payloads)


def _created_or_none(payload: dict[str, Any]) -> datetime | None:
    try:
        return parse_time(payload.get("created_at"))
    except (TypeError, ValueError):
        return None


async def _gather_limited(calls: Iterable[Callable[[], Awaitable[Any]]]) -> list[Any]:
    """Run the calls a few at a time; a call starts only when a slot frees up, so cancelling the whole
    gather never leaves created-but-unawaited coroutines behind."""
    semaphore = asyncio.Semaphore(REST_CONCURRENCY)

    async def limited(call: Callable[[], Awaitable[Any]]) -> Any:
        async with semaphore:
            return await call()

    return list(await asyncio.gather(*(limited(call) for call in calls)))


async def _fetch_rest_runs(session: _Session, payloads: list[dict[str, Any]]) -> None:
    """Jobs (every attempt) and earlier attempts of these runs, written run by run.

    `jobs?filter=all` has every attempt's jobs with exact times. An earlier attempt's run record is kept
    if already stored finished, fetched if stored unfinished, else built from the latest attempt's
    record (see `earlier_attempt`: its conclusion and times stay unknown), because a request per earlier
    attempt would make exact queue times cost more than a REST-only collector's run and job listing."""
    repository = session.target.repository

    async def one(payload: dict[str, Any]) -> None:
        try:
            run_id = int(payload["id"])
            latest = run_from_rest(payload, repository)
        except (PayloadError, KeyError, TypeError, ValueError) as exc:
            session.skip(_created_or_none(payload), "a malformed run", exc)
            return
        runs = [latest]
        finished = session.stored.completed_attempts(run_id)
        stored = session.stored.stored_attempts(run_id)
        for attempt in range(1, latest.run_attempt):
            if attempt in finished:
                continue  # a finished attempt never changes: the stored record stays
            if attempt not in stored:
                runs.append(earlier_attempt(latest, attempt))
                continue
            # Stored while it was still running: only GitHub has how it ended.
            answer = await session.client.rest_get(
                f"/repos/{repository}/actions/runs/{run_id}/attempts/{attempt}", conditional=False
            )
            try:
                runs.append(run_from_rest(answer.data, repository))
            except (PayloadError, KeyError, TypeError, ValueError) as exc:
                session.skip(latest.created_at, f"run {run_id} (attempt {attempt} is malformed)", exc)
                return
        job_payloads = await rest_api.list_jobs(session.client, repository, run_id)
        jobs = []
        for job_payload in job_payloads:
            try:
                jobs.append(job_from_rest(repository, job_payload, latest.workflow_name))
            except (PayloadError, KeyError, TypeError, ValueError) as exc:
                # Nothing of the run is written: stored without this job, it would pass for complete.
                session.skip(latest.created_at, f"run {run_id} (a job is malformed)", exc)
                return
        session.write(runs, jobs)
        verified_runs_for(session.client.budget).add(repository, run_id, latest.updated_at)

    await _gather_limited([functools.partial(one, payload) for payload in payloads])


__all__ = ["MODES", "GitHubError", "SyncResult", "SyncTarget", "sync_once"]
