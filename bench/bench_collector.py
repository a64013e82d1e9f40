"""GitHub rate-limit units (GraphQL points + REST requests) spent by each collection mode, against the
emulator, side by side in one run:

  (a) a full sync, per 1,000 jobs collected;
  (b) one sweep over 100 repositories in which nothing is new.

Modes: cipulse "graphql", "graphql+rest", "webhooks" (deliveries, then the reconciling sync), and a REST-only
collector written here as the baseline: it lists runs and fetches jobs run by run (`filter=all`, so it gets
every attempt too), without conditional requests, which is what most collectors in this field do.
Units are read from the emulator's own counters, which charge like GitHub (points by requested page sizes,
one unit per REST request, 304 answers free).

    .venv/bin/python bench/bench_collector.py [--jobs 4000] [--repos 100]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from cipulse.emulator import Emulator
from cipulse.github.budget import RateBudget
from cipulse.github.etag_cache import EtagCache
from cipulse.github.sync import SyncTarget, sync_once
from cipulse.github.webhook_server import serving_receiver
from cipulse.github.webhooks import WebhookReceiver
from cipulse.records import WorkflowRun
from cipulse.store.sqlite import SqliteStore

MODES = ("graphql", "graphql+rest", "webhooks")
BASELINE = "REST-only"
BASELINE_ATTEMPTS = "REST-only, a run record per attempt"
SECRET = "bench-secret"
SINCE = datetime(2000, 1, 1, tzinfo=UTC)


class RestOnlyCollector:
    """The baseline: page through the run list, then ask for every run's jobs. No ETags.

    With `attempts`, it also fetches each earlier attempt of a re-run run (`/attempts/{n}`), so it stores
    one run record per attempt like cipulse does; without, it keeps only the latest attempt's run record.
    """

    def __init__(self, emulator: Emulator, *, attempts: bool = False) -> None:
        self.emulator = emulator
        self.attempts = attempts
        self.watermarks: dict[str, datetime] = {}
        self.jobs = 0
        self.http: httpx.AsyncClient

    def sync_all(self, repos: list[str]) -> None:
        """One sweep over `repos` (a fresh event loop and connection pool, like a scheduled job)."""

        async def sweep() -> None:
            headers = {"Authorization": f"Bearer {self.emulator.token}"}
            async with httpx.AsyncClient(base_url=self.emulator.api_url, headers=headers, timeout=60) as http:
                self.http = http
                await asyncio.gather(*(self.sync(repo) for repo in repos))

        asyncio.run(sweep())

    async def _get(self, path: str, **params: Any) -> Any:
        for _ in range(5):
            response = await self.http.get(path, params=params)
            if response.status_code == 200:
                return response.json()
            await asyncio.sleep(1)
        response.raise_for_status()

    async def sync(self, repo: str) -> None:
        since = self.watermarks.get(repo, SINCE)
        runs: list[dict[str, Any]] = []
        page = 1
        while True:
            data = await self._get(f"/repos/{repo}/actions/runs", per_page=100, page=page)
            batch = [r for r in data["workflow_runs"] if datetime.fromisoformat(r["created_at"]) > since]
            runs.extend(batch)
            if len(batch) < len(data["workflow_runs"]) or len(data["workflow_runs"]) < 100:
                break
            page += 1
        semaphore = asyncio.Semaphore(8)

        async def jobs_of(run: dict[str, Any]) -> None:
            async with semaphore:
                if self.attempts:
                    for attempt in range(1, int(run.get("run_attempt") or 1)):
                        await self._get(f"/repos/{repo}/actions/runs/{run['id']}/attempts/{attempt}")
                page = 1
                while True:
                    data = await self._get(
                        f"/repos/{repo}/actions/runs/{run['id']}/jobs", filter="all", per_page=100, page=page
                    )
                    self.jobs += len(data["jobs"])
                    if page * 100 >= data["total_count"]:
                        return
                    page += 1

        await asyncio.gather(*(jobs_of(run) for run in runs))
        if runs:
            self.watermarks[repo] = max(datetime.fromisoformat(r["created_at"]) for r in runs)


def units(emulator: Emulator, action: Callable[[], Any]) -> tuple[int, int, int, float]:
    """(GraphQL points, REST requests, 304 answers, seconds) that `action` cost."""
    before = emulator.usage.snapshot()
    started = time.perf_counter()
    action()
    spent = emulator.usage.snapshot() - before
    return spent.graphql_points, spent.rest_requests, spent.rest_not_modified, time.perf_counter() - started


def target(emulator: Emulator, repo: str, mode: str) -> SyncTarget:
    return SyncTarget(repo, api_url=emulator.api_url, token=emulator.token, mode=mode, since=SINCE)


NOTES: list[str] = []


def earlier_attempts_note(mode: str, runs: list[WorkflowRun]) -> str:
    """How many earlier attempts' run records a mode stored, and how many of them lack conclusion/times."""
    latest: dict[int, int] = {}
    for run in runs:
        latest[run.run_id] = max(latest.get(run.run_id, 0), run.run_attempt)
    earlier = [run for run in runs if run.run_attempt < latest[run.run_id]]
    unknown = sum(1 for run in earlier if run.conclusion is None and run.updated_at is None)
    return f"{mode}: {len(earlier)} earlier-attempt run records, {unknown} with conclusion and times unknown"


def full_sync(jobs: int, workdir: Path, progress: Progress) -> dict[str, tuple[int, int, int, float, int]]:
    repo = "octo-org/bench-monorepo"
    results: dict[str, tuple[int, int, int, float, int]] = {}
    task = progress.add_task("full sync, each mode", total=len(MODES) + 1)
    with Emulator(seed=3, repos={repo: jobs}) as emulator:
        truth = len(emulator.truth.jobs(repo))
        for mode in MODES:
            with SqliteStore(workdir / f"full-{mode}.db") as store:

                def run(mode: str = mode, store: SqliteStore = store) -> None:
                    asyncio.run(
                        sync_once(target(emulator, repo, mode), store, monitor="bench", budget=RateBudget())
                    )

                if mode == "webhooks":
                    with serving_receiver(WebhookReceiver(store, SECRET)) as url:
                        emulator.deliver_webhooks_for(repo, url, SECRET, lose=0.01, seed=1, concurrency=8)
                points, rest, not_modified, seconds = units(emulator, run)
                assert store.count_jobs(repo) == truth, (mode, store.count_jobs(repo), truth)
                NOTES.append(earlier_attempts_note(mode, list(store.iter_runs(repo))))
                results[mode] = (points, rest, not_modified, seconds, truth)
            progress.advance(task)
        baseline = RestOnlyCollector(emulator)
        points, rest, not_modified, seconds = units(emulator, lambda: baseline.sync_all([repo]))
        assert baseline.jobs == truth, (baseline.jobs, truth)
        results[BASELINE] = (points, rest, not_modified, seconds, truth)
        complete = RestOnlyCollector(emulator, attempts=True)
        points, rest, not_modified, seconds = units(emulator, lambda: complete.sync_all([repo]))
        results[BASELINE_ATTEMPTS] = (points, rest, not_modified, seconds, truth)
        progress.advance(task)
    return results


def sweep(repos: int, workdir: Path, progress: Progress) -> dict[str, tuple[int, int, int, float, int]]:
    names = [f"bench-org/service-{i:03d}" for i in range(repos)]
    results: dict[str, tuple[int, int, int, float, int]] = {}
    task = progress.add_task(f"nothing-new sweep over {repos} repos", total=2 * len(MODES) + 1)
    with Emulator(seed=4, repos=dict.fromkeys(names, 40)) as emulator:
        for mode in MODES:
            with SqliteStore(workdir / f"sweep-{mode}.db") as store:
                etag_file = workdir / f"etags-{mode}.json"

                def sweep_all(budget: RateBudget, store: SqliteStore = store, mode: str = mode) -> None:
                    async def go() -> None:
                        syncs = [
                            sync_once(target(emulator, n, mode), store, monitor=n, budget=budget)
                            for n in names
                        ]
                        await asyncio.gather(*syncs)

                    asyncio.run(go())

                sweep_all(RateBudget(etags=EtagCache(etag_file)))  # the initial collection, not measured
                progress.advance(task)
                # A sweep by a new process (only the ETag file carries over), then steady state.
                budget = RateBudget(etags=EtagCache(etag_file))
                measured = units(emulator, lambda b=budget: sweep_all(b))
                units(emulator, lambda b=budget: sweep_all(b))
                steady = units(emulator, lambda b=budget: sweep_all(b))
                results[f"{mode} (new process)"] = (*measured, repos)
                results[mode] = (*steady, repos)
                progress.advance(task)
        baseline = RestOnlyCollector(emulator)
        baseline.sync_all(names)  # the initial collection, not measured
        measured = units(emulator, lambda: baseline.sync_all(names))
        results[BASELINE] = (*measured, repos)
        progress.advance(task)
    return results


def report(
    console: Console, title: str, results: dict[str, tuple[int, int, int, float, int]], per: str
) -> None:
    table = Table(title=title)
    for column in (
        "collector",
        "GraphQL points",
        "REST requests",
        "304 (free)",
        "units",
        per,
        "vs REST-only",
    ):
        table.add_column(column, justify="right" if column != "collector" else "left")
    base_units = results[BASELINE][0] + results[BASELINE][1]
    for name, (points, rest, not_modified, _seconds, size) in results.items():
        total = points + rest
        scaled = total * 1000 / size if per == "units per 1,000 jobs" else total
        ratio = base_units / total if total else float("inf")
        table.add_row(
            name,
            str(points),
            str(rest),
            str(not_modified),
            str(total),
            f"{scaled:.1f}",
            f"{ratio:.1f}x fewer",
        )
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=4000, help="jobs in the full-sync repository")
    parser.add_argument("--repos", type=int, default=100, help="repositories in the nothing-new sweep")
    args = parser.parse_args()
    console = Console(width=150)
    with tempfile.TemporaryDirectory() as scratch, Progress(console=console) as progress:
        full = full_sync(args.jobs, Path(scratch), progress)
        nothing_new = sweep(args.repos, Path(scratch), progress)
    report(console, f"(a) full sync of {full[BASELINE][4]:,} jobs", full, "units per 1,000 jobs")
    report(console, f"(b) one sweep over {args.repos} repositories, nothing new", nothing_new, "units")
    base_full = sum(full[BASELINE][:2])
    base_sweep = sum(nothing_new[BASELINE][:2])
    graphql_full = sum(full["graphql"][:2])
    graphql_sweep = sum(nothing_new["graphql"][:2])
    console.print(
        f"goal (a) GraphQL-only full sync >= 5x fewer units than REST-only: {base_full / graphql_full:.1f}x"
    )
    worst_sweep = max(sum(v[:2]) for k, v in nothing_new.items() if k != BASELINE)
    console.print(
        f"goal (b) nothing-new sweep >= 10x fewer: graphql {base_sweep / max(1, graphql_sweep):.1f}x, "
        f"worst cipulse mode {base_sweep / max(1, worst_sweep):.1f}x"
    )
    for note in NOTES:
        console.print(note)
    complete = sum(full[BASELINE_ATTEMPTS][:2])
    for mode in ("graphql+rest", "webhooks"):
        spent = sum(full[mode][:2])
        console.print(
            f"exact queue times, {mode}: {spent} units = {spent / base_full:.2f} of REST-only ({base_full}), "
            f"{spent / complete:.2f} of REST-only with a run record per attempt ({complete})"
        )


if __name__ == "__main__":
    main()
