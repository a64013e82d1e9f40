"""The CiCdMonitor operator against a real kube-apiserver and the GitHub emulator.

The operator runs as a real subprocess (`cipulse operator run`) authenticated as the Helm chart's
ServiceAccount, so these tests also prove the chart's RBAC is enough for everything it does.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cipulse.emulator import Emulator
from cipulse.operator.secret_labels import GITHUB_TOKEN, SINK_SECRET
from cipulse.store import open_store
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
from tests.unit.test_operator_spec import INVALID_SPECS, UNKNOWN_FIELD_SPECS, VALID_SPECS

pytestmark = [pytest.mark.integration, pytest.mark.slow]

WEBHOOK_SECRET = b"receiver-shared-secret"


def _apply(kube: Any, manifest: str, *args: str) -> Any:
    return kube.kubectl("apply", "-f", "-", *args, input=manifest)


@pytest.fixture(scope="module")
def cluster(kube: Any) -> Path:
    """CRDs plus the Helm chart applied for real; returns the chart ServiceAccount's kubeconfig."""
    return install_chart(kube)


@pytest.fixture(scope="module")
def emulator() -> Iterator[Any]:
    with Emulator(seed=11) as running:
        yield running


@pytest.fixture(scope="module")
def operator(cluster: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    """The main instance: cluster-wide, peering "cipulse", serving monitors without a `shard` label."""
    workdir = tmp_path_factory.mktemp("operator")
    process = OperatorProcess(
        cluster,
        workdir / "cipulse.db",
        workdir / "operator.log",
        "--peering",
        "cipulse",
        "--selector",
        "!shard",
    ).start()
    try:
        process.metrics_url()
        yield process
    finally:
        process.stop()
        print(process.log[-4000:])


def _token_secret(kube: Any, name: str, token: str, namespace: str = MONITORS) -> None:
    """A token Secret offered to cipulse with the opt-in label (see cipulse.operator.secret_labels)."""
    _apply(kube, secret_manifest(name, namespace, {"token": token}, {GITHUB_TOKEN.label: "true"}))


def _ready(kube: Any, name: str, namespace: str = MONITORS) -> dict[str, Any] | None:
    monitor = get_monitor(kube, namespace, name)
    ready = condition(monitor, "Ready")
    return monitor if ready and ready["status"] == "True" else None


def _job_rows(store_path: Path, repository: str) -> list[tuple[Any, ...]]:
    store = open_store(f"sqlite:///{store_path}")
    try:
        return sorted(
            (
                j.job_id,
                j.run_id,
                j.run_attempt,
                j.status,
                j.conclusion,
                j.created_at,
                j.started_at,
                j.completed_at,
            )
            for j in store.iter_jobs(repository)
        )
    finally:
        store.close()


def _truth_rows(emulator: Any, repository: str) -> list[tuple[Any, ...]]:
    return sorted(
        (
            j.job_id,
            j.run_id,
            j.run_attempt,
            j.status,
            j.conclusion,
            j.created_at,
            j.started_at,
            j.completed_at,
        )
        for j in emulator.truth.jobs(repository)
    )


# --- validation by the API server -------------------------------------------------------------------


@pytest.mark.parametrize("name", INVALID_SPECS)
def test_api_server_rejects_invalid_spec(kube: Any, cluster: Path, name: str) -> None:
    manifest = monitor_manifest("invalid", MONITORS, INVALID_SPECS[name])
    result = kube.kubectl("apply", "--dry-run=server", "-f", "-", input=manifest, check=False)
    assert result.returncode != 0, f"{name} was accepted"
    assert (
        "Invalid value" in result.stderr
        or "Unsupported value" in result.stderr
        or "should be" in result.stderr
    )


@pytest.mark.parametrize("name", VALID_SPECS)
def test_api_server_accepts_valid_spec(kube: Any, cluster: Path, name: str) -> None:
    manifest = monitor_manifest("valid", MONITORS, VALID_SPECS[name])
    kube.kubectl("apply", "--dry-run=server", "-f", "-", input=manifest)


@pytest.mark.parametrize("name", UNKNOWN_FIELD_SPECS)
def test_api_server_rejects_unknown_fields(kube: Any, cluster: Path, name: str) -> None:
    manifest = monitor_manifest("unknown", MONITORS, UNKNOWN_FIELD_SPECS[name])
    result = kube.kubectl(
        "apply", "--dry-run=server", "--validate=strict", "-f", "-", input=manifest, check=False
    )
    assert result.returncode != 0
    assert "unknown field" in result.stderr


# --- the operator ----------------------------------------------------------------------------------


def test_monitor_reaches_ready_and_store_holds_the_emulator_truth(
    kube: Any, emulator: Any, operator: OperatorProcess
) -> None:
    repository = emulator.repositories[0]
    _token_secret(kube, "emulator-token", emulator.token)
    spec = {
        "repository": repository,
        "apiUrl": emulator.api_url,
        "tokenSecretRef": {"name": "emulator-token", "key": "token"},
        "pollInterval": "30s",
        "backfillDays": 60,
    }
    _apply(kube, monitor_manifest("truth", MONITORS, spec))
    monitor = wait_for(lambda: _ready(kube, "truth"), 180, "Ready=True")
    truth_jobs = emulator.truth.jobs(repository)
    status = monitor["status"]
    assert status["jobs"] == len(truth_jobs)
    assert status["runs"] == len(emulator.truth.runs(repository))
    assert status["health"] in ("Healthy", "Degraded", "Failing")
    assert status["healthReasons"]
    assert _job_rows(operator.store_path, repository) == _truth_rows(emulator, repository)

    table = kube.kubectl("get", "cicdmonitors", "-n", MONITORS).stdout
    header = table.splitlines()[0].split()
    assert header[:6] == ["NAME", "REPOSITORY", "HEALTH", "LAST", "SYNC", "AGE"]
    assert repository in table

    url = operator.metrics_url()
    assert urllib.request.urlopen(url.replace("/metrics", "/readyz"), timeout=10).status == 200
    metrics = urllib.request.urlopen(url, timeout=10).read().decode()
    assert (
        f'cipulse_stored_jobs{{monitor="{MONITORS}/truth",repository="{repository}"}} {len(truth_jobs)}.0'
        in metrics
    )


def test_missing_token_secret_is_a_condition_not_a_crash(
    kube: Any, emulator: Any, operator: OperatorProcess
) -> None:
    spec = {
        "repository": emulator.repositories[0],
        "apiUrl": emulator.api_url,
        "tokenSecretRef": {"name": "not-created-yet", "key": "token"},
        "pollInterval": "30s",
    }
    _apply(kube, monitor_manifest("nosecret", MONITORS, spec))

    def missing() -> dict[str, Any] | None:
        ready = condition(get_monitor(kube, MONITORS, "nosecret"), "Ready")
        return ready if ready and ready["reason"] == "TokenSecretNotFound" else None

    ready = wait_for(missing, 60, "TokenSecretNotFound")
    assert ready["status"] == "False"
    assert "not-created-yet" in ready["message"] and "kubectl" in ready["message"]
    assert operator.alive()
    events = kube.kubectl(
        "get", "events", "-n", MONITORS, "--field-selector", "involvedObject.name=nosecret"
    ).stdout
    assert "TokenSecretNotFound" in events

    _token_secret(kube, "not-created-yet", emulator.token)
    wait_for(lambda: _ready(kube, "nosecret"), 120, "Ready after the Secret appeared")
    assert operator.alive()


def test_failing_repository_flips_health_with_event_and_signed_webhook(
    kube: Any, emulator: Any, operator: OperatorProcess
) -> None:
    repository = emulator.repositories[-1]
    _token_secret(kube, "emulator-token", emulator.token)
    hook_labels = {SINK_SECRET.label: "true"}
    _apply(kube, secret_manifest("hook", MONITORS, {"secret": WEBHOOK_SECRET.decode()}, hook_labels))
    with WebhookReceiver(WEBHOOK_SECRET) as receiver:
        spec = {
            "repository": repository,
            "apiUrl": emulator.api_url,
            "tokenSecretRef": {"name": "emulator-token"},
            "pollInterval": "30s",
            "health": {"windowHours": 1, "minFinishedJobs": 5},
            "sinks": [{"webhook": {"url": receiver.url, "secretRef": {"name": "hook", "key": "secret"}}}],
        }
        _apply(kube, monitor_manifest("flaky", MONITORS, spec))
        before = wait_for(lambda: _ready(kube, "flaky"), 180, "Ready=True")
        assert before["status"]["health"] == "Healthy", before["status"]["healthReasons"]

        emulator.set_failure_rate(repository, 1.0)
        emulator.add_activity(repository, runs=12, failure_rate=1.0)

        def unhealthy() -> dict[str, Any] | None:
            monitor = get_monitor(kube, MONITORS, "flaky")
            return monitor if monitor.get("status", {}).get("health") in ("Degraded", "Failing") else None

        after = wait_for(unhealthy, 120, "health Degraded or Failing")
        health = after["status"]["health"]
        degraded = condition(after, "Degraded")
        assert degraded is not None and degraded["status"] == "True" and degraded["reason"] == health
        assert any("success rate" in reason for reason in after["status"]["healthReasons"]), after["status"]

        events = json.loads(
            kube.kubectl(
                "get", "events", "-n", MONITORS, "--field-selector", "involvedObject.name=flaky", "-o", "json"
            ).stdout
        )["items"]
        changes = [e for e in events if e["reason"] == "HealthChanged"]
        assert changes and changes[-1]["type"] == "Warning"
        assert f"Healthy -> {health}" in changes[-1]["message"]

        payloads = wait_for(receiver.payloads, 30, "a signed webhook delivery")
        assert payloads[-1]["health"] == health and payloads[-1]["previous"] == "Healthy"
        assert payloads[-1]["repository"] == repository
        assert receiver.deliveries[-1].headers["X-Cipulse-Event"] == "health_transition"


def test_delete_stops_the_monitor_cleanly(kube: Any, emulator: Any, operator: OperatorProcess) -> None:
    _token_secret(kube, "emulator-token", emulator.token)
    spec = {
        "repository": emulator.repositories[0],
        "apiUrl": emulator.api_url,
        "tokenSecretRef": {"name": "emulator-token"},
    }
    _apply(kube, monitor_manifest("shortlived", MONITORS, spec))
    wait_for(lambda: _ready(kube, "shortlived"), 180, "Ready=True")
    kube.kubectl("delete", "cicdmonitor", "shortlived", "-n", MONITORS, "--timeout=60s")
    gone = kube.kubectl("get", "cicdmonitor", "shortlived", "-n", MONITORS, check=False)
    assert gone.returncode != 0 and "NotFound" in gone.stderr
    wait_for(lambda: f"stopped monitoring {MONITORS}/shortlived" in operator.log, 30, "the daemon to stop")
    assert operator.alive()


# --- restarts and peering -----------------------------------------------------------------------------


def test_sigkill_mid_sync_then_restart_keeps_store_exact(kube: Any, cluster: Path, tmp_path: Path) -> None:
    """A shard of its own (label shard=kill) so killing this operator does not disturb the main one."""
    with Emulator(seed=23, jobs_per_repo=3000) as big:
        repository = big.repositories[0]
        _token_secret(kube, "big-token", big.token)
        spec = {
            "repository": repository,
            "apiUrl": big.api_url,
            "tokenSecretRef": {"name": "big-token"},
            "pollInterval": "30s",
            "backfillDays": 90,
        }
        store_path = tmp_path / "kill.db"
        args = ("--selector", "shard=kill")
        first = OperatorProcess(cluster, store_path, tmp_path / "first.log", *args).start()
        try:
            _apply(kube, monitor_manifest("killme", MONITORS, spec, labels={"shard": "kill"}))

            def some_jobs_stored() -> int:
                return len(_job_rows(store_path, repository)) if store_path.exists() else 0

            partial = wait_for(some_jobs_stored, 120, "the backfill to be under way", interval=0.2)
            first.kill()
        finally:
            first.stop()
        truth = _truth_rows(big, repository)
        assert partial < len(truth), "the sync finished before the kill: make the repository bigger"

        second = OperatorProcess(cluster, store_path, tmp_path / "second.log", *args).start()
        try:
            monitor = wait_for(lambda: _ready(kube, "killme"), 300, "Ready=True after the restart")
            kube.kubectl("delete", "cicdmonitor", "killme", "-n", MONITORS, "--timeout=60s")
        finally:
            second.stop()
        rows = _job_rows(store_path, repository)
        assert len(rows) == len({row[0] for row in rows}), "duplicate job ids in the store"
        assert rows == truth
        assert monitor["status"]["jobs"] == len(truth)


def test_peering_keeps_one_instance_active_per_shard(
    kube: Any, cluster: Path, emulator: Any, tmp_path: Path
) -> None:
    """Two instances of one shard: only the higher priority one works; the other takes over when it stops."""
    peering = {"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering", "metadata": {"name": "peer-shard"}}
    _apply(kube, json.dumps(peering))
    _token_secret(kube, "emulator-token", emulator.token)
    repository = emulator.repositories[0]
    args = ("--selector", "shard=peer", "--peering", "peer-shard")
    high = OperatorProcess(
        kube.kubeconfig, tmp_path / "high.db", tmp_path / "high.log", *args, "--priority", "200"
    )
    low = OperatorProcess(
        kube.kubeconfig, tmp_path / "low.db", tmp_path / "low.log", *args, "--priority", "100"
    )

    def peers() -> int:
        found = json.loads(kube.kubectl("get", "clusterkopfpeering", "peer-shard", "-o", "json").stdout)
        return len(found.get("status") or {})

    try:
        high.start()
        wait_for(lambda: "Resuming operations" in high.log, 90, "the first instance to become active")
        low.start()
        wait_for(lambda: peers() == 2, 90, "both instances in the peering")
        spec = {
            "repository": repository,
            "apiUrl": emulator.api_url,
            "tokenSecretRef": {"name": "emulator-token"},
        }
        _apply(kube, monitor_manifest("peered", MONITORS, spec, labels={"shard": "peer"}))
        wait_for(lambda: _ready(kube, "peered"), 180, "Ready=True")
        assert len(_job_rows(tmp_path / "high.db", repository)) == len(emulator.truth.jobs(repository))
        assert "Resuming operations" not in low.log
        assert "monitoring monitors/peered" not in low.log
        assert not (tmp_path / "low.db").exists() or _job_rows(tmp_path / "low.db", repository) == []

        high.stop()  # a clean stop withdraws from the peering: the standby takes over at once
        wait_for(lambda: "Resuming operations" in low.log, 90, "the standby to take over")
        wait_for(lambda: "monitoring monitors/peered" in low.log, 90, "the standby to serve the monitor")
        truth = len(emulator.truth.jobs(repository))
        wait_for(
            lambda: (
                (tmp_path / "low.db").exists() and len(_job_rows(tmp_path / "low.db", repository)) == truth
            ),
            120,
            "the standby to collect",
        )
        kube.kubectl("delete", "cicdmonitor", "peered", "-n", MONITORS, "--timeout=60s")
    finally:
        high.stop()
        low.stop()
