"""The chart's retention CronJob: rendered only for a search store, accepted by a real kube-apiserver
(server-side dry run), non-root, without Kubernetes API credentials, with the store credentials the
operator uses."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from tests.integration.operator_harness import ROOT

pytestmark = pytest.mark.integration

CHART = ROOT / "deploy/helm/cipulse"
TEMPLATE = "templates/retention-cronjob.yaml"
SEARCH = (
    "store.type=search",
    "store.search.url=https://search:9200",
    "store.search.existingSecret=search-creds",
)


def _namespace(kube: Any, name: str) -> None:
    doc = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    kube.kubectl("apply", "-f", "-", input=json.dumps(doc))


def _render(kube: Any, *sets: str, check: bool = True, only_cronjob: bool = False) -> Any:
    args = [item for value in sets for item in ("--set", value)]
    if only_cronjob:
        args += ["--show-only", TEMPLATE]
    return kube.helm("template", "ret", str(CHART), "--namespace", "cipulse-ret", *args, check=check)


def _cronjobs(kube: Any, *sets: str) -> list[dict[str, Any]]:
    docs = yaml.safe_load_all(_render(kube, *sets).stdout)
    return [doc for doc in docs if doc and doc.get("kind") == "CronJob"]


def test_search_store_gets_a_retention_cronjob_the_api_server_accepts(kube: Any) -> None:
    _namespace(kube, "cipulse-ret")
    rendered = _render(kube, *SEARCH, "retention.keepDays=90", only_cronjob=True).stdout
    result = kube.kubectl("apply", "--dry-run=server", "-f", "-", input=rendered)
    assert "cronjob.batch/ret-cipulse-retention created (server dry run)" in result.stdout

    (cronjob,) = _cronjobs(kube, *SEARCH, "retention.keepDays=90")
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"  # two runs never race on the same indices
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["args"] == ["retention", "--keep-days=90"]
    env = {item["name"]: item for item in container["env"]}
    assert env["CIPULSE_STORE_URL"]["value"] == "https://search:9200"
    for name, key in (("CIPULSE_STORE_USERNAME", "username"), ("CIPULSE_STORE_PASSWORD", "password")):
        assert env[name]["valueFrom"]["secretKeyRef"] == {"name": "search-creds", "key": key}
    # least privilege: no Kubernetes API token, no operator ServiceAccount, non-root, read-only root
    assert pod["automountServiceAccountToken"] is False and "serviceAccountName" not in pod
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]


def test_the_jobs_identity_cannot_touch_the_cluster(kube: Any) -> None:
    _namespace(kube, "cipulse-ret")
    identity = "system:serviceaccount:cipulse-ret:default"
    for verb, resource in (
        ("get", "secrets"),
        ("list", "secrets"),
        ("create", "pods"),
        ("list", "cicdmonitors"),
    ):
        answer = kube.kubectl(
            "auth", "can-i", verb, resource, "-n", "cipulse-ret", "--as", identity, check=False
        )
        assert answer.stdout.strip() == "no"


@pytest.mark.parametrize(
    "sets",
    [(), ("store.type=sqlite",), (*SEARCH, "retention.enabled=false")],
    ids=["default sqlite", "explicit sqlite", "search, disabled"],
)
def test_no_cronjob_without_a_search_store_or_when_disabled(kube: Any, sets: tuple[str, ...]) -> None:
    assert _cronjobs(kube, *sets) == []


@pytest.mark.parametrize("days", ["0", "-1", "soon"])
def test_nonsense_retention_is_refused_at_render_time(kube: Any, days: str) -> None:
    result = _render(kube, *SEARCH, f"retention.keepDays={days}", check=False)
    assert result.returncode != 0 and "retention.keepDays must be at least 1" in result.stderr


def test_a_bad_schedule_is_refused_by_the_api_server(kube: Any) -> None:
    _namespace(kube, "cipulse-ret")
    rendered = _render(kube, *SEARCH, "retention.schedule=every night", only_cronjob=True).stdout
    result = kube.kubectl("apply", "--dry-run=server", "-f", "-", input=rendered, check=False)
    assert result.returncode != 0 and "schedule" in result.stderr
