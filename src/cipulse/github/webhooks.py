"""Receives `workflow_run` and `workflow_job` webhooks and turns them into the same records as polling.

Every delivery is authenticated with X-Hub-Signature-256 (HMAC-SHA256 of the raw body with the shared
secret, compared in constant time) before its JSON is even parsed, and deduplicated by X-GitHub-Delivery
(GitHub redelivers). Deliveries can be lost or arrive out of order; the reconciling sync (mode
"webhooks") repairs both, so the receiver stays simple: verify, parse, upsert.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from cipulse.github.parse_rest import PayloadError, job_from_rest, repository_of, run_from_rest
from cipulse.records import Job, WorkflowRun
from cipulse.store.base import Store

log = logging.getLogger(__name__)

HANDLED_EVENTS = ("workflow_run", "workflow_job")
# The status a delivery's action implies; GitHub's own examples sometimes disagree (kept, and reported).
ACTION_STATUS = {
    "requested": "queued",
    "queued": "queued",
    "waiting": "waiting",
    "in_progress": "in_progress",
    "completed": "completed",
}

Status = Literal["accepted", "duplicate", "ignored", "rejected", "invalid"]
HTTP_STATUS: dict[str, int] = {
    "accepted": 202,
    "duplicate": 200,
    "ignored": 200,
    "rejected": 401,
    "invalid": 400,
}


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    """What happened to one delivery; `reason` explains every status except a clean "accepted"."""

    status: Status
    event: str | None = None
    delivery_id: str | None = None
    runs: tuple[WorkflowRun, ...] = ()
    jobs: tuple[Job, ...] = ()
    reason: str = ""
    warnings: tuple[str, ...] = field(default=())

    @property
    def http_status(self) -> int:
        return HTTP_STATUS[self.status]


class DeliveryLog:
    """Delivery ids whose records are stored (bounded: GitHub redelivers within days, not forever).

    An id is marked only once its write succeeded: a redelivery arriving while the first attempt is still
    being written (or after it failed) is written again, which upserts by identity make harmless."""

    def __init__(self, capacity: int = 100_000) -> None:
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._capacity = capacity
        self._lock = threading.Lock()

    def seen(self, delivery_id: str) -> bool:
        with self._lock:
            return delivery_id in self._seen

    def mark(self, delivery_id: str) -> None:
        with self._lock:
            self._seen[delivery_id] = None
            while len(self._seen) > self._capacity:
                self._seen.popitem(last=False)


def signature_for(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_valid(secret: str, body: bytes, header: str | None) -> bool:
    if not secret or not header or not header.startswith("sha256="):
        return False
    return hmac.compare_digest(signature_for(secret, body), header.strip())


def parse_delivery(event: str, payload: Mapping[str, Any]) -> tuple[list[WorkflowRun], list[Job], list[str]]:
    """Records and warnings from a verified delivery's payload. Raises PayloadError when unusable."""
    action = payload.get("action")
    key = "workflow_run" if event == "workflow_run" else "workflow_job"
    item = payload.get(key)
    if not isinstance(item, Mapping):
        raise PayloadError(f"{event} delivery has no {key!r} object")
    repository = repository_of(payload) or repository_of(item)
    if not repository:
        raise PayloadError(f"{event} delivery has no repository.full_name")
    warnings = []
    expected = ACTION_STATUS.get(str(action))
    if expected is not None and item.get("status") != expected:
        warnings.append(
            f"{event} action {action!r} but status {item.get('status')!r}: recorded with the status "
            "as sent; the next reconciling sync corrects it if GitHub says otherwise"
        )
    if event == "workflow_run":
        return [run_from_rest(item, repository)], [], warnings
    return [], [job_from_rest(repository, item)], warnings


def handle_delivery(
    headers: Mapping[str, str],
    body: bytes,
    secret: str,
    *,
    deliveries: DeliveryLog | None = None,
    mark_accepted: bool = True,
) -> DeliveryOutcome:
    """Verify, deduplicate and parse one delivery. Never raises on bad input: the outcome says why.

    An accepted delivery is marked in `deliveries` here unless `mark_accepted` is False: a caller that
    writes the records marks it itself once the write succeeded."""
    lowered = {k.lower(): v for k, v in headers.items()}
    event = lowered.get("x-github-event")
    delivery_id = lowered.get("x-github-delivery")
    if not signature_valid(secret, body, lowered.get("x-hub-signature-256")):
        reason = "missing signature" if not lowered.get("x-hub-signature-256") else "signature does not match"
        return DeliveryOutcome("rejected", event, delivery_id, reason=reason)
    if event not in HANDLED_EVENTS:
        return DeliveryOutcome("ignored", event, delivery_id, reason=f"event {event!r} is not collected")
    if deliveries is not None and delivery_id and deliveries.seen(delivery_id):
        return DeliveryOutcome("duplicate", event, delivery_id, reason="delivery already handled")
    try:
        payload = json.loads(body)
        if not isinstance(payload, dict):
            raise PayloadError("payload is not a JSON object")
        runs, jobs, warnings = parse_delivery(event, payload)
    except (ValueError, PayloadError, TypeError, KeyError) as exc:
        return DeliveryOutcome("invalid", event, delivery_id, reason=f"unusable payload: {exc}")
    if deliveries is not None and delivery_id and mark_accepted:
        deliveries.mark(delivery_id)
    return DeliveryOutcome("accepted", event, delivery_id, tuple(runs), tuple(jobs), warnings=tuple(warnings))


class WebhookReceiver:
    """Handles deliveries and writes their records to a store (the operator and `cipulse serve` use it)."""

    def __init__(self, store: Store, secret: str) -> None:
        self.store = store
        self._secret = secret
        self.deliveries = DeliveryLog()

    def __repr__(self) -> str:
        return "WebhookReceiver(secret=***)"

    def receive(self, headers: Mapping[str, str], body: bytes) -> DeliveryOutcome:
        """Blocks while the store writes: call it from a worker thread in async code."""
        outcome = handle_delivery(
            headers, body, self._secret, deliveries=self.deliveries, mark_accepted=False
        )
        if outcome.status == "accepted":
            # If this raises, the id stays unmarked: GitHub's redelivery (or the reconciling sync) brings
            # the records back.
            self.store.upsert(list(outcome.runs), list(outcome.jobs))
            if outcome.delivery_id:
                self.deliveries.mark(outcome.delivery_id)
        for warning in outcome.warnings:
            log.warning("delivery %s: %s", outcome.delivery_id, warning)
        return outcome


def webhook_router(receiver: WebhookReceiver, path: str = "/webhooks/github") -> Any:
    """A FastAPI router that feeds POSTed deliveries to `receiver` (see webhook_http.py)."""
    from cipulse.github.webhook_http import webhook_router as build

    return build(receiver, path)
