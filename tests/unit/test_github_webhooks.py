"""Webhook deliveries: signatures, deduplication, and every published workflow_run/workflow_job example."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import pytest

from cipulse.emulator.assets import ensure_github_assets
from cipulse.github.webhooks import ACTION_STATUS, DeliveryLog, handle_delivery, signature_for

SECRET = "It's a Secret to Everybody"


@cache
def webhook_examples() -> list[tuple[str, int, dict[str, Any]]]:
    index = json.loads(ensure_github_assets().webhook_examples_path.read_text())
    found = []
    for event in index:
        if event["name"] in ("workflow_run", "workflow_job"):
            found.extend((event["name"], i, example) for i, example in enumerate(event["examples"]))
    return found


def _headers(event: str, body: bytes, delivery: str = "d-1", secret: str = SECRET) -> dict[str, str]:
    return {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": signature_for(secret, body),
    }


def test_githubs_documented_signature_example() -> None:
    # From GitHub's docs "Validating webhook deliveries".
    assert (
        signature_for(SECRET, b"Hello, World!")
        == "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    )


def test_there_are_examples_of_both_events() -> None:
    events = [event for event, _, _ in webhook_examples()]
    assert events.count("workflow_run") >= 3 and events.count("workflow_job") >= 3


@pytest.mark.parametrize(
    ("event", "index", "example"), webhook_examples(), ids=[f"{e}-{i}" for e, i, _ in webhook_examples()]
)
def test_every_published_example_gets_a_clear_outcome(
    event: str, index: int, example: dict[str, Any]
) -> None:
    body = json.dumps(example).encode()
    outcome = handle_delivery(_headers(event, body, f"{event}-{index}"), body, SECRET)
    assert outcome.status == "accepted", outcome.reason
    item = example[event]
    records = outcome.runs if event == "workflow_run" else outcome.jobs
    assert len(records) == 1
    record: Any = records[0]
    assert record.repository == example["repository"]["full_name"]
    assert (record.run_id if event == "workflow_run" else record.job_id) == item["id"]
    assert record.status == item["status"]
    consistent = ACTION_STATUS.get(example["action"]) in (None, item["status"])
    # Inconsistent examples (e.g. action=completed with status=queued) are kept as sent and reported.
    assert bool(outcome.warnings) == (not consistent)


def test_the_inconsistent_example_exists_and_is_reported() -> None:
    inconsistent = [
        (e, x)
        for e, _, x in webhook_examples()
        if x["action"] == "completed" and x[e]["status"] != "completed"
    ]
    assert inconsistent
    event, example = inconsistent[0]
    body = json.dumps(example).encode()
    outcome = handle_delivery(_headers(event, body), body, SECRET)
    assert outcome.status == "accepted"
    assert "action 'completed' but status" in outcome.warnings[0]


def _sample() -> tuple[str, bytes]:
    event, _, example = next(x for x in webhook_examples() if x[0] == "workflow_job")
    return event, json.dumps(example).encode()


def test_missing_signature_is_rejected() -> None:
    event, body = _sample()
    headers = _headers(event, body)
    del headers["X-Hub-Signature-256"]
    outcome = handle_delivery(headers, body, SECRET)
    assert (outcome.status, outcome.http_status, outcome.reason) == ("rejected", 401, "missing signature")
    assert outcome.jobs == ()


@pytest.mark.parametrize("tamper", ["body", "secret", "prefix"])
def test_bad_signature_is_rejected(tamper: str) -> None:
    event, body = _sample()
    headers = _headers(event, body, secret="wrong" if tamper == "secret" else SECRET)
    if tamper == "body":
        body = body.replace(b'"completed"', b'"cancelled"', 1) + b" "
    if tamper == "prefix":
        headers["X-Hub-Signature-256"] = headers["X-Hub-Signature-256"].replace("sha256=", "sha1=")
    assert handle_delivery(headers, body, SECRET).status == "rejected"


def test_redelivery_is_deduplicated() -> None:
    event, body = _sample()
    deliveries = DeliveryLog()
    first = handle_delivery(_headers(event, body, "same"), body, SECRET, deliveries=deliveries)
    again = handle_delivery(_headers(event, body, "same"), body, SECRET, deliveries=deliveries)
    other = handle_delivery(_headers(event, body, "other"), body, SECRET, deliveries=deliveries)
    assert (first.status, again.status, other.status) == ("accepted", "duplicate", "accepted")


def test_unusable_payload_is_invalid_not_a_crash() -> None:
    for body in (b"{not json", b"[]", json.dumps({"action": "queued"}).encode()):
        outcome = handle_delivery(_headers("workflow_job", body), body, SECRET)
        assert outcome.status == "invalid" and outcome.reason


def test_other_events_are_ignored() -> None:
    body = b'{"zen": "Keep it logically awesome."}'
    assert handle_delivery(_headers("ping", body), body, SECRET).status == "ignored"
