"""Against a real kube-apiserver: the operator uses only Secrets offered to cipulse with the opt-in label,
and the API server refuses a spec that would send the token over plain http to another machine.

Without the label, someone who may create CiCdMonitors but not read Secrets could name any Secret and
point `apiUrl` at their own server. These tests run their own operator (at DEBUG log level, the most
talkative) on the shard `shard=secrets`, with the Helm chart's ServiceAccount, and a dedicated emulator
whose request counters prove the token was not sent anywhere before the Secret was labelled.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from cipulse.operator.secret_labels import GITHUB_TOKEN, SINK_SECRET
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

SHARD = {"shard": "secrets"}
HOOK_KEY = "signing-key-for-the-secrets-tests"
HOOK_REF = {"name": "unoffered-hook", "key": "secret"}


@pytest.fixture(scope="module")
def secrets_operator(kube: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    kubeconfig = install_chart(kube)
    workdir = tmp_path_factory.mktemp("secrets-operator")
    process = OperatorProcess(
        kubeconfig,
        workdir / "cipulse.db",
        workdir / "operator.log",
        "--selector",
        "shard=secrets",
        "--verbose",
    ).start()
    try:
        process.metrics_url()
        yield process
    finally:
        process.stop()
        print(process.log[-4000:])


def _apply(kube: Any, manifest: str) -> None:
    kube.kubectl("apply", "-f", "-", input=manifest)


def _events(kube: Any, name: str) -> list[dict[str, Any]]:
    found = kube.kubectl(
        "get", "events", "-n", MONITORS, "--field-selector", f"involvedObject.name={name}", "-o", "json"
    ).stdout
    return list(json.loads(found)["items"])


def _condition_with_reason(kube: Any, name: str, kind: str, reason: str) -> dict[str, Any] | None:
    found = condition(get_monitor(kube, MONITORS, name), kind)
    return found if found and found["reason"] == reason else None


def _delete(kube: Any, name: str) -> None:
    kube.kubectl("delete", "cicdmonitor", name, "-n", MONITORS, "--timeout=60s", "--ignore-not-found")


def test_an_unlabelled_token_secret_is_never_read_or_sent(
    kube: Any, fresh_emulator: Any, secrets_operator: OperatorProcess
) -> None:
    token = fresh_emulator.token
    _apply(kube, secret_manifest("unoffered-token", MONITORS, {"token": token}))
    spec = {
        "repository": fresh_emulator.repositories[0],
        "apiUrl": fresh_emulator.api_url,
        "tokenSecretRef": {"name": "unoffered-token"},
        "pollInterval": "30s",
    }
    _apply(kube, monitor_manifest("unoffered", MONITORS, spec, labels=SHARD))
    try:
        ready = wait_for(
            lambda: _condition_with_reason(kube, "unoffered", "Ready", GITHUB_TOKEN.unlabelled_reason),
            90,
            "Ready=False TokenSecretNotLabelled",
        )
        assert ready["status"] == "False"
        assert ready["message"] == (
            f"Secret {MONITORS}/unoffered-token is not labelled cipulse.io/github-token=true for use by "
            f"cipulse as a GitHub token; if monitors in {MONITORS} may use it: "
            f"kubectl -n {MONITORS} label secret unoffered-token cipulse.io/github-token=true"
        )
        warnings = [e for e in _events(kube, "unoffered") if e["reason"] == "TokenSecretNotLabelled"]
        assert warnings and warnings[0]["type"] == "Warning"
        assert warnings[0]["message"] == ready["message"]
        assert secrets_operator.alive()
        usage = fresh_emulator.usage
        assert (usage.graphql_requests, usage.rest_requests) == (0, 0), "nothing was sent with the token"

        kube.kubectl("label", "secret", "unoffered-token", "-n", MONITORS, f"{GITHUB_TOKEN.label}=true")
        wait_for(
            lambda: _condition_with_reason(kube, "unoffered", "Ready", "Synced"), 180, "Ready after labelling"
        )
        after = fresh_emulator.usage
        assert after.graphql_requests + after.rest_requests > 0, "the labelled token is used"
        assert secrets_operator.alive()
        monitor = get_monitor(kube, MONITORS, "unoffered")
        assert token not in json.dumps(monitor)
        assert token not in json.dumps(_events(kube, "unoffered"))
        assert token not in secrets_operator.log
    finally:
        _delete(kube, "unoffered")


def test_an_unlabelled_sink_secret_is_a_condition_until_labelled(
    kube: Any, fresh_emulator: Any, secrets_operator: OperatorProcess
) -> None:
    _apply(
        kube,
        secret_manifest(
            "sinks-token", MONITORS, {"token": fresh_emulator.token}, {GITHUB_TOKEN.label: "true"}
        ),
    )
    _apply(kube, secret_manifest("unoffered-hook", MONITORS, {"secret": HOOK_KEY}))
    with WebhookReceiver(HOOK_KEY.encode()) as receiver:
        spec = {
            "repository": fresh_emulator.repositories[0],
            "apiUrl": fresh_emulator.api_url,
            "tokenSecretRef": {"name": "sinks-token"},
            "pollInterval": "30s",
            "sinks": [
                {"webhook": {"url": receiver.url, "secretRef": {"name": "unoffered-hook", "key": "secret"}}}
            ],
        }
        _apply(kube, monitor_manifest("hooked", MONITORS, spec, labels=SHARD))
        try:
            sinks = wait_for(
                lambda: _condition_with_reason(kube, "hooked", "SinksReady", SINK_SECRET.unlabelled_reason),
                180,
                "SinksReady=False SinkSecretNotLabelled",
            )
            assert sinks["status"] == "False"
            expected = f"Secret {MONITORS}/unoffered-hook is not labelled cipulse.io/sink-secret=true for use"
            assert expected in sinks["message"]
            assert (
                f"kubectl -n {MONITORS} label secret unoffered-hook cipulse.io/sink-secret=true"
                in (sinks["message"])
            )
            ready = condition(get_monitor(kube, MONITORS, "hooked"), "Ready")
            assert ready is not None and ready["status"] == "True", "collection goes on meanwhile"
            reasons = {e["reason"] for e in _events(kube, "hooked")}
            assert SINK_SECRET.unlabelled_reason in reasons

            kube.kubectl("label", "secret", "unoffered-hook", "-n", MONITORS, f"{SINK_SECRET.label}=true")
            fixed = wait_for(
                lambda: _condition_with_reason(kube, "hooked", "SinksReady", "Delivered"),
                120,
                "SinksReady=True after labelling",
            )
            assert fixed["status"] == "True"
            assert HOOK_KEY not in secrets_operator.log
        finally:
            _delete(kube, "hooked")


def test_api_server_refuses_a_plain_http_api_url_to_another_host(kube: Any, secrets_operator: Any) -> None:
    spec = {"repository": "a/b", "apiUrl": "http://ghe.example.com/api/v3"}
    result = kube.kubectl(
        "apply", "-f", "-", input=monitor_manifest("plainhttp", MONITORS, spec, labels=SHARD), check=False
    )
    assert result.returncode != 0
    assert "apiUrl must use https:// because the GitHub token is sent there" in result.stderr
    assert "loopback hosts (localhost, 127.0.0.1, [::1])" in result.stderr
