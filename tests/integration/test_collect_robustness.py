"""The collector loses nothing when a store write stops half-way, when GitHub's answer for one run does
not parse, or when a run shows up in listings only after newer ones were listed."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from cipulse.emulator import Emulator
from cipulse.github.sync import LISTING_OVERLAP, SyncResult, SyncTarget, sync_once
from cipulse.records import Job, WorkflowRun
from cipulse.store.base import StoreUnavailable
from cipulse.store.sqlite import SqliteStore
from tests.integration.test_collect_sync import (
    GRAPHQL_JOB_GAPS,
    assert_same,
    documents,
    fast_budget,
)

pytestmark = pytest.mark.integration

REPO = "octo-org/payments-api"
JOBS_PATH = re.compile(r"/actions/runs/(\d+)/jobs$")
RUNS_PATH = re.compile(r"/repos/[^/]+/[^/]+/actions/runs$")

Rewrite = Callable[[str, Any], Any]
"""Given a request path and the parsed JSON answer, the answer to send instead (or the same object)."""


class RunsBeforeJobsStore:
    """The real store, written the way a search store's separate bulk requests land: run records first,
    then jobs. The n-th upsert that carries jobs stops after its runs and half of its jobs (a crash)."""

    def __init__(self, store: SqliteStore, fail_at: int) -> None:
        self._store = store
        self._left = fail_at

    def upsert(self, runs: Sequence[WorkflowRun], jobs: Sequence[Job]) -> None:
        if runs:
            self._store.upsert(runs, [])
        if jobs:
            self._left -= 1
            if self._left == 0:
                self._store.upsert([], jobs[: len(jobs) // 2])
                raise StoreUnavailable("simulated crash between two bulk requests")
            self._store.upsert([], jobs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


@contextmanager
def rewriting_proxy(upstream: str, rewrite: Rewrite) -> Iterator[str]:
    """A real HTTP hop in front of the emulator that can change its JSON answers; yields the proxy's URL.
    A changed answer loses its ETag, so no client caches it as if the emulator had sent it."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    client = httpx.AsyncClient(timeout=30)
    dropped = {"host", "content-length", "content-encoding", "transfer-encoding", "connection"}

    async def forward(request: Request) -> Response:
        answer = await client.request(
            request.method,
            upstream + request.url.path,
            params=request.url.query,
            headers={k: v for k, v in request.headers.items() if k.lower() not in dropped},
            content=await request.body(),
        )
        headers = {k: v for k, v in answer.headers.items() if k.lower() not in dropped}
        body = answer.content
        if answer.status_code == 200 and answer.headers.get("content-type", "").startswith(
            "application/json"
        ):
            data = answer.json()
            changed = rewrite(request.url.path, data)
            if changed is not data:
                body = json.dumps(changed).encode()
                headers = {k: v for k, v in headers.items() if k.lower() != "etag"}
        return Response(body, status_code=answer.status_code, headers=headers)

    app = Starlette(routes=[Route("/{path:path}", forward, methods=["GET", "POST"])])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the proxy did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


def _sync(api_url: str, token: str, store: Any, mode: str = "graphql+rest") -> SyncResult:
    target = SyncTarget(REPO, api_url=api_url, token=token, mode=mode, backfill_days=400)
    return asyncio.run(sync_once(target, store, monitor="m", budget=fast_budget()))


@pytest.fixture(scope="module")
def emulator(github_assets: Any) -> Iterator[Emulator]:
    with Emulator(seed=23, repos={REPO: 300}) as running:
        yield running


@pytest.mark.parametrize("mode", ["graphql+rest", "graphql"])
@pytest.mark.parametrize("fail_at", [1, 3])
def test_a_crash_between_run_and_job_writes_is_resumed_with_every_job(
    emulator: Emulator, mode: str, fail_at: int, tmp_path: Path
) -> None:
    with SqliteStore(tmp_path / "partial.db") as store:
        with pytest.raises(StoreUnavailable, match="simulated crash"):
            _sync(emulator.api_url, emulator.token, RunsBeforeJobsStore(store, fail_at), mode)
        assert store.get_watermark("m") is None
        _sync(emulator.api_url, emulator.token, store, mode)
        gaps = GRAPHQL_JOB_GAPS if mode == "graphql" else frozenset()
        assert_same(documents(emulator.truth.jobs(REPO), gaps), documents(store.iter_jobs(REPO), gaps))


def test_a_run_whose_jobs_do_not_parse_is_counted_and_collected_once_they_do(
    emulator: Emulator, tmp_path: Path
) -> None:
    runs = sorted(emulator.truth.runs(REPO), key=lambda run: run.created_at)
    broken = runs[len(runs) // 2]
    breaking = True

    def break_one_job(path: str, data: Any) -> Any:
        match = JOBS_PATH.search(path)
        if not breaking or match is None or int(match.group(1)) != broken.run_id or not data.get("jobs"):
            return data
        jobs = [
            {k: v for k, v in job.items() if k != "id"} if i == 0 else job
            for i, job in enumerate(data["jobs"])
        ]
        return {**data, "jobs": jobs}

    with (
        rewriting_proxy(emulator.url, break_one_job) as proxy,
        SqliteStore(tmp_path / "malformed.db") as store,
    ):
        first = _sync(proxy + "/api/v3", emulator.token, store)
        assert first.skipped == 1
        assert first.watermark is not None and first.watermark <= broken.created_at
        assert not [job for job in store.iter_jobs(REPO) if job.run_id == broken.run_id]
        assert store.count_runs(REPO) < len(runs)

        breaking = False
        second = _sync(proxy + "/api/v3", emulator.token, store)
        assert second.skipped == 0
        assert_same(documents(emulator.truth.jobs(REPO)), documents(store.iter_jobs(REPO)))
        assert {run.run_id for run in store.iter_runs(REPO)} == {run.run_id for run in runs}


def test_a_run_listed_late_behind_a_newer_one_is_still_collected(github_assets: Any, tmp_path: Path) -> None:
    repo = "octo-org/late"
    with Emulator(seed=29, repos={repo: 60}) as emulator, SqliteStore(tmp_path / "late.db") as store:
        target = SyncTarget(repo, api_url=emulator.api_url, token=emulator.token, backfill_days=400)
        asyncio.run(sync_once(target, store, monitor="m", budget=fast_budget()))
        new_ids = emulator.add_activity(repo, runs=3)
        emulator.advance(6 * 3600)  # every run finished: no unfinished run holds the watermark back
        new_runs = sorted(
            (run for run in emulator.truth.runs(repo) if run.run_id in set(new_ids)),
            key=lambda r: r.created_at,
        )
        late = new_runs[-2]
        assert new_runs[-1].created_at - late.created_at < LISTING_OVERLAP
        hiding = True

        def hide_late_run(path: str, data: Any) -> Any:
            if not hiding or RUNS_PATH.search(path) is None or "workflow_runs" not in data:
                return data
            kept = [run for run in data["workflow_runs"] if run.get("id") != late.run_id]
            return {
                **data,
                "workflow_runs": kept,
                "total_count": data["total_count"] - (len(kept) < len(data["workflow_runs"])),
            }

        with rewriting_proxy(emulator.url, hide_late_run) as proxy:
            proxied = SyncTarget(repo, api_url=proxy + "/api/v3", token=emulator.token, backfill_days=400)
            asyncio.run(sync_once(proxied, store, monitor="m", budget=fast_budget()))
            assert late.run_id not in {run.run_id for run in store.iter_runs(repo)}
            hiding = False
            asyncio.run(sync_once(proxied, store, monitor="m", budget=fast_budget()))
        assert late.run_id in {run.run_id for run in store.iter_runs(repo)}
        assert_same(documents(emulator.truth.jobs(repo)), documents(store.iter_jobs(repo)))
