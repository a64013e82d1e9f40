"""Webhooks mode end to end: the emulator delivers (some lost, some out of order) to a real receiver over
HTTP, then the reconciling sync repairs exactly what was lost, at a fraction of a full REST sync's cost."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from cipulse.emulator import Emulator
from cipulse.github.sync import SyncTarget, sync_once
from cipulse.github.webhook_server import serving_receiver
from cipulse.github.webhooks import WebhookReceiver, signature_for
from cipulse.records import Job, WorkflowRun
from cipulse.store.base import StoreUnavailable
from cipulse.store.sqlite import SqliteStore
from tests.integration.test_collect_sync import assert_same, assert_same_runs, documents, fast_budget

pytestmark = pytest.mark.integration

REPO = "octo-org/web-frontend"
SECRET = "webhook-secret-for-tests"


def test_lost_and_reordered_deliveries_are_reconciled(github_assets: Any, tmp_path: Path) -> None:
    with Emulator(seed=21, repos={REPO: 800}) as emulator, SqliteStore(tmp_path / "w.db") as store:
        receiver = WebhookReceiver(store, SECRET)
        with serving_receiver(receiver) as url:
            deliveries = emulator.deliver_webhooks_for(REPO, url, SECRET, lose=0.02, seed=3, concurrency=4)
        lost = [d for d in deliveries if d.lost]
        assert lost and len(lost) < len(deliveries)
        assert {d.status_code for d in deliveries if not d.lost} == {202}
        truth_jobs = documents(emulator.truth.jobs(REPO))
        assert documents(store.iter_jobs(REPO)) != truth_jobs  # losses and reordering left gaps

        target = SyncTarget(
            REPO, api_url=emulator.api_url, token=emulator.token, mode="webhooks", backfill_days=400
        )
        budget = fast_budget()
        before = emulator.usage.snapshot()
        result = asyncio.run(sync_once(target, store, monitor="hooks", budget=budget))
        spent = emulator.usage.snapshot() - before
        assert_same(truth_jobs, documents(store.iter_jobs(REPO)))
        assert_same_runs(documents(emulator.truth.runs(REPO)), documents(store.iter_runs(REPO)))
        runs = len({job.run_id for job in emulator.truth.jobs(REPO)})
        refetched = result.runs
        # Only runs touched by a lost or stale delivery were fetched over REST (REST-only needs > runs).
        assert 0 < refetched < runs
        assert spent.rest_requests < runs

        # Nothing new: one point, no REST beyond 304s.
        before = emulator.usage.snapshot()
        again = asyncio.run(sync_once(target, store, monitor="hooks", budget=budget))
        spent = emulator.usage.snapshot() - before
        assert (again.runs, again.jobs, spent.graphql_points, spent.rest_requests) == (0, 0, 1, 0)


def test_receiver_rejects_forgeries_and_deduplicates_redeliveries(github_assets: Any, tmp_path: Path) -> None:
    with Emulator(seed=22, repos={REPO: 200}) as emulator, SqliteStore(tmp_path / "r.db") as store:
        receiver = WebhookReceiver(store, SECRET)
        with serving_receiver(receiver) as url:
            delivered = emulator.deliver_webhooks_for(REPO, url, SECRET)
            first = next(d for d in delivered if d.event == "workflow_job")
            jobs_before = store.count_jobs(REPO)
            payload = {
                "action": "completed",
                "workflow_job": {"id": 1, "run_id": 2, "name": "forged", "status": "completed"},
                "repository": {"full_name": REPO},
            }
            forged = emulator.send_webhook(url, "not-the-secret", "workflow_job", payload)
            assert forged.status_code == 401
            redelivered = emulator.webhooks.send(
                url, SECRET, "workflow_job", payload, delivery_id=first.delivery_id
            )
            assert redelivered.status_code == 200  # already handled: acknowledged, not applied again
            assert store.count_jobs(REPO) == jobs_before
            assert not any(job.name == "forged" for job in store.iter_jobs(REPO))
        assert json.dumps(repr(receiver)).count(SECRET) == 0


class FirstWriteFails:
    """The real store, except that its first upsert waits until released and then fails (an outage
    while a delivery is being written)."""

    def __init__(self, store: SqliteStore) -> None:
        self._store = store
        self._calls = 0
        self._lock = threading.Lock()
        self.writing = threading.Event()
        self.release = threading.Event()

    def upsert(self, runs: Sequence[WorkflowRun], jobs: Sequence[Job]) -> None:
        with self._lock:
            self._calls += 1
            first = self._calls == 1
        if first:
            self.writing.set()
            self.release.wait(60)
            raise StoreUnavailable("simulated outage while writing")
        self._store.upsert(runs, jobs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def _workflow_job_example(github_assets: Any) -> dict[str, Any]:
    index = json.loads(github_assets.webhook_examples_path.read_text())
    examples = next(event["examples"] for event in index if event["name"] == "workflow_job")
    return next(e for e in examples if e.get("action") == "completed")


def test_a_redelivery_during_a_failing_write_is_stored_not_called_a_duplicate(
    github_assets: Any, tmp_path: Path
) -> None:
    payload = _workflow_job_example(github_assets)
    body = json.dumps(payload).encode()
    headers = {
        "X-GitHub-Event": "workflow_job",
        "X-GitHub-Delivery": "delivery-1",
        "X-Hub-Signature-256": signature_for(SECRET, body),
        "Content-Type": "application/json",
    }
    repository = payload["repository"]["full_name"]
    with SqliteStore(tmp_path / "w.db") as store:
        flaky = FirstWriteFails(store)
        receiver = WebhookReceiver(flaky, SECRET)  # type: ignore[arg-type]
        with serving_receiver(receiver) as url, ThreadPoolExecutor(1) as pool:
            try:
                first = pool.submit(httpx.post, url, content=body, headers=headers, timeout=60)
                assert flaky.writing.wait(30)
                # Served while the first write is still blocked (the write runs off the event loop).
                redelivery = httpx.post(url, content=body, headers=headers, timeout=20)
            finally:
                flaky.release.set()
            assert first.result().status_code == 503
            assert redelivery.status_code == 202, redelivery.text
            assert store.count_jobs(repository) == 1
            again = httpx.post(url, content=body, headers=headers, timeout=20)
            assert (again.status_code, again.json()["status"]) == (200, "duplicate")
            assert store.count_jobs(repository) == 1
