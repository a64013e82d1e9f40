"""A health transition that happens while the webhook receiver is down survives a SIGKILL of the operator.

Real kube-apiserver, the operator as a real process with the chart's ServiceAccount, the project's GitHub
emulator and a real HTTP receiver that checks HMAC signatures. The receiver is down when the repository
starts failing; the operator is killed with the delivery pending and restarted after the receiver is back
on the same URL. The delivery must arrive signed, with the id it was given before the kill, and the
restart must not announce the same transition again under a new id.
"""

from __future__ import annotations

import json
import socket
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from cipulse.operator.secret_labels import GITHUB_TOKEN, SINK_SECRET
from cipulse.operator.sinks import DELIVERY_HEADER
from tests.integration.operator_harness import (
    MONITORS,
    OperatorProcess,
    WebhookReceiver,
    condition,
    get_monitor,
    install_chart,
    monitor_manifest,
    secret_manifest,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HOOK_KEY = "outbox-test-signing-key"
NAME = "durable"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pending(outbox: Path) -> list[tuple[str, str, bytes]]:
    """(delivery id, sink, body) rows, read-only: the operator owns the file."""
    if not outbox.exists():
        return []
    with sqlite3.connect(f"file:{outbox}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT delivery_id, sink, body FROM deliveries ORDER BY seq").fetchall()
    return [(str(r[0]), str(r[1]), bytes(r[2])) for r in rows]


def _sinks_condition(kube: Any, reason: str) -> dict[str, Any] | None:
    monitor = get_monitor(kube, MONITORS, NAME)
    found = condition(monitor, "SinksReady")
    return monitor if found and found["reason"] == reason else None


def test_pending_delivery_survives_sigkill_and_keeps_its_id(
    kube: Any, fresh_emulator: Any, tmp_path: Path
) -> None:
    kubeconfig = install_chart(kube)
    repository = fresh_emulator.repositories[-1]
    offered_token = {GITHUB_TOKEN.label: "true"}
    offered_hook = {SINK_SECRET.label: "true"}
    kube.kubectl(
        "apply",
        "-f",
        "-",
        input=secret_manifest("outbox-token", MONITORS, {"token": fresh_emulator.token}, offered_token),
    )
    kube.kubectl(
        "apply", "-f", "-", input=secret_manifest("outbox-hook", MONITORS, {"secret": HOOK_KEY}, offered_hook)
    )
    port = _free_port()  # nothing listens here until the receiver starts: "down" is a refused connection
    hook_url = f"http://127.0.0.1:{port}/hooks/cipulse"
    store = tmp_path / "cipulse.db"
    outbox = tmp_path / "cipulse-outbox.db"  # the default: beside the SQLite store
    args = ("--selector", "shard=outbox")
    spec = {
        "repository": repository,
        "apiUrl": fresh_emulator.api_url,
        "tokenSecretRef": {"name": "outbox-token"},
        "pollInterval": "30s",
        "health": {"windowHours": 1, "minFinishedJobs": 5},
        "sinks": [{"webhook": {"url": hook_url, "secretRef": {"name": "outbox-hook", "key": "secret"}}}],
    }

    first = OperatorProcess(kubeconfig, store, tmp_path / "first.log", *args).start()
    try:
        kube.kubectl(
            "apply", "-f", "-", input=monitor_manifest(NAME, MONITORS, spec, labels={"shard": "outbox"})
        )
        healthy = wait_for(lambda: _sinks_condition(kube, "Delivered"), 180, "the first poll")
        assert healthy["status"]["health"] == "Healthy", healthy["status"]

        fresh_emulator.set_failure_rate(repository, 1.0)
        fresh_emulator.add_activity(repository, runs=12, failure_rate=1.0)
        stuck = wait_for(lambda: _sinks_condition(kube, "DeliveryFailed"), 120, "a failed delivery")
        health = stuck["status"]["health"]
        assert health in ("Degraded", "Failing")
        assert stuck["status"]["pendingDeliveries"] == 1
        [(delivery_id, sink, body)] = _pending(outbox)
        assert sink == f"webhook {hook_url}"
        assert json.loads(body)["delivery"] == delivery_id
        assert delivery_id in condition(stuck, "SinksReady")["message"]  # type: ignore[index]
        assert HOOK_KEY.encode() not in b"".join(f.read_bytes() for f in tmp_path.glob("cipulse-outbox.db*"))
        first.kill()  # SIGKILL with the delivery pending
    finally:
        first.stop()

    with WebhookReceiver(HOOK_KEY.encode(), port=port) as receiver:
        second = OperatorProcess(kubeconfig, store, tmp_path / "second.log", *args).start()
        try:
            wait_for(lambda: receiver.deliveries, 120, "the pending delivery after the restart")
            wait_for(
                lambda: _sinks_condition(kube, "Delivered") if not _pending(outbox) else None,
                120,
                "the outbox to drain",
            )
            assert second.alive()
        finally:
            kube.kubectl("delete", "cicdmonitor", NAME, "-n", MONITORS, "--timeout=60s")
            second.stop()
    assert receiver.rejected == 0, "every request carried a valid signature"
    payloads = receiver.payloads()
    ids_by_event: dict[tuple[str, str], set[str]] = {}
    for delivery, payload in zip(receiver.deliveries, payloads, strict=True):
        assert delivery.headers[DELIVERY_HEADER] == payload["delivery"]
        ids_by_event.setdefault((payload["previous"], payload["health"]), set()).add(payload["delivery"])
    assert ids_by_event[("Healthy", health)] == {delivery_id}, "announced again under a new id"
    assert all(len(ids) == 1 for ids in ids_by_event.values()), ids_by_event
    first_delivery = payloads[0]
    assert (first_delivery["delivery"], first_delivery["repository"]) == (delivery_id, repository)
