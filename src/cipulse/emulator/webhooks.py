"""workflow_run and workflow_job webhook deliveries, signed the way GitHub signs them.

Deliveries are derived from the same plan as every other answer: a job sends `queued` when created,
`in_progress` when a runner picks it up and `completed` at the end; a run attempt sends `requested`,
`in_progress` and `completed`. Only events that happened by the emulator's clock are sent, each once per
target, so calling `deliver_for` again after new activity sends just the new ones. `lose` drops a share
of deliveries on purpose (GitHub does not retry), which polling must then reconcile.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from cipulse.emulator.model import AttemptPlan, JobPlan, RunPlan, attempt_at, job_at
from cipulse.emulator.shapes import Shapes
from cipulse.emulator.state import World

HOOK_ID = 4_242_001
_DELIVERY_NAMESPACE = uuid.UUID("6f1c3b2e-53a4-4f0e-9d11-2b6c7b5d8e90")


@dataclass(frozen=True)
class Delivery:
    delivery_id: str
    event: str
    action: str
    status_code: int | None  # None when the delivery was lost on purpose or could not connect
    lost: bool = False


def signature_256(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def headers_for(event: str, delivery_id: str, secret: str, body: bytes, repo_id: int) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/cipulse-emulator",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery_id,
        "X-GitHub-Hook-ID": str(HOOK_ID),
        "X-GitHub-Hook-Installation-Target-Type": "repository",
        "X-GitHub-Hook-Installation-Target-ID": str(repo_id),
        "X-Hub-Signature": "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest(),
        "X-Hub-Signature-256": signature_256(secret, body),
    }


@dataclass(frozen=True)
class PlannedEvent:
    at: datetime
    order: int
    key: str
    event: str
    action: str
    build: Callable[[], dict[str, Any]]


def planned_events(run: RunPlan, shapes: Shapes, until: datetime) -> list[PlannedEvent]:
    events: list[PlannedEvent] = []
    for attempt in run.attempts:
        if attempt.created > until:
            continue
        events.extend(_attempt_events(run, attempt, shapes, until))
        for job in attempt.jobs:
            events.extend(_job_events(run, job, shapes, until))
    return events


def _attempt_events(
    run: RunPlan, attempt: AttemptPlan, shapes: Shapes, until: datetime
) -> list[PlannedEvent]:
    started = [job.started for job in attempt.jobs if job.started > job.created]
    moments = [("requested", attempt.created, 0)]
    if started:
        moments.append(("in_progress", min(started), 1))
    moments.append(("completed", attempt.finished, 3))
    result = []
    for action, at, order in moments:
        if at <= until:
            key = f"workflow_run:{run.run_id}:{attempt.number}:{action}"

            def build(at: datetime = at, action: str = action) -> dict[str, Any]:
                view = attempt_at(attempt, at)
                assert view is not None
                return shapes.workflow_run_payload(action, view, run)

            result.append(PlannedEvent(at, order, key, "workflow_run", action, build))
    return result


def _job_events(run: RunPlan, job: JobPlan, shapes: Shapes, until: datetime) -> list[PlannedEvent]:
    moments = []
    if job.started > job.created:
        moments.append(("queued", job.created))
    if job.completed > job.started:
        moments.append(("in_progress", job.started))
    moments.append(("completed", job.completed))
    result = []
    for action, at in moments:
        if at <= until:
            key = f"workflow_job:{job.job_id}:{action}"

            def build(at: datetime = at, action: str = action) -> dict[str, Any]:
                view = job_at(job, at)
                assert view is not None
                return shapes.workflow_job_payload(action, view, run)

            result.append(PlannedEvent(at, 2, key, "workflow_job", action, build))
    return result


class WebhookSender:
    def __init__(self, world: World, shapes_source: Callable[[], Shapes]) -> None:
        self.world = world
        self._shapes = shapes_source
        self._sent: dict[str, set[str]] = {}
        self._lock = threading.Lock()
        self.sent_count = 0

    def send(
        self,
        url: str,
        secret: str,
        event: str,
        payload: dict[str, Any],
        *,
        delivery_id: str | None = None,
        client: httpx.Client | None = None,
    ) -> Delivery:
        """POSTs one signed delivery; returns the receiver's status (None if it could not be reached)."""
        body = json.dumps(payload).encode()
        delivery = delivery_id or str(uuid.uuid4())
        repo_id = int((payload.get("repository") or {}).get("id") or 0)
        headers = headers_for(event, delivery, secret, body, repo_id)
        owned = client is None
        http = client or httpx.Client(timeout=30.0)
        try:
            response = http.post(url, content=body, headers=headers)
            status: int | None = response.status_code
        except httpx.HTTPError:
            status = None
        finally:
            if owned:
                http.close()
        with self._lock:
            self.sent_count += 1
        return Delivery(delivery, event, str(payload.get("action", "")), status)

    def deliver_for(
        self, repo: str, url: str, secret: str, *, lose: float = 0.0, seed: int = 0, concurrency: int = 1
    ) -> list[Delivery]:
        """Sends every not-yet-sent workflow_run/workflow_job event of `repo` to `url`: in time order, or
        `concurrency` at a time (then out of order, as GitHub may deliver them)."""
        with self.world.lock:
            found = self.world.repo(repo)
            if found is None:
                raise KeyError(f"the emulator has no repository {repo!r}")
            clock = self.world.clock
            shapes = self._shapes()
            events = [
                e for run in self.world.repo_visible_runs(found) for e in planned_events(run, shapes, clock)
            ]
            events.sort(key=lambda e: (e.at, e.order, e.key))
            with self._lock:
                sent = self._sent.setdefault(url, set())
                events = [e for e in events if e.key not in sent]
                sent.update(e.key for e in events)
            payloads = [(e, e.build()) for e in events]
        chooser = random.Random(seed)
        lost = [bool(lose) and chooser.random() < lose for _ in payloads]
        with httpx.Client(timeout=30.0) as client:

            def deliver(index: int) -> Delivery:
                event, payload = payloads[index]
                delivery_id = str(uuid.uuid5(_DELIVERY_NAMESPACE, event.key))
                if lost[index]:
                    return Delivery(delivery_id, event.event, event.action, None, lost=True)
                return self.send(url, secret, event.event, payload, delivery_id=delivery_id, client=client)

            if concurrency <= 1:
                return [deliver(index) for index in range(len(payloads))]
            with ThreadPoolExecutor(max_workers=concurrency) as pool:
                return list(pool.map(deliver, range(len(payloads))))
