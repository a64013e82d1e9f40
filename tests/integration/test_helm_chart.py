"""The Helm chart: lint, server-side dry run against a real kube-apiserver, and least-privilege RBAC
checked with `kubectl auth can-i` as the chart's own ServiceAccount."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.integration.operator_harness import ROOT

pytestmark = pytest.mark.integration

CHART = ROOT / "deploy/helm/cipulse"


@pytest.fixture(scope="module")
def crds(kube: Any) -> None:
    for crd in ("deploy/crd/cicdmonitors.yaml", "deploy/helm/cipulse/crds/kopf-peering.yaml"):
        kube.kubectl("apply", "-f", str(ROOT / crd))
    for name in ("cicdmonitors.cipulse.io", "clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev"):
        kube.kubectl("wait", "--for=condition=Established", "--timeout=60s", f"crd/{name}")


def _namespace(kube: Any, name: str) -> None:
    doc = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    kube.kubectl("apply", "-f", "-", input=json.dumps(doc))


def _render(kube: Any, release: str, namespace: str, *sets: str) -> str:
    args = [item for value in sets for item in ("--set", value)]
    return str(kube.helm("template", release, str(CHART), "--namespace", namespace, *args).stdout)


def test_helm_lint(kube: Any) -> None:
    result = kube.helm("lint", str(CHART), "--strict")
    assert "0 chart(s) failed" in result.stdout


def test_crds_in_chart_match_the_generated_crd() -> None:
    assert (CHART / "crds/cicdmonitors.yaml").read_text() == (
        ROOT / "deploy/crd/cicdmonitors.yaml"
    ).read_text()


@pytest.mark.parametrize(
    "sets",
    [
        (),
        ("watchNamespaces={team-a,team-b}", "shard.selector=shard=a", "shard.peering=shard-a"),
        (
            "store.type=search",
            "store.search.url=https://search:9200",
            "store.search.existingSecret=search-creds",
        ),
    ],
    ids=["cluster-wide sqlite", "namespaced shard", "search store"],
)
def test_template_passes_server_side_dry_run(kube: Any, crds: None, sets: tuple[str, ...]) -> None:
    for namespace in ("cipulse-dry", "team-a", "team-b"):
        _namespace(kube, namespace)
    rendered = _render(kube, "dry", "cipulse-dry", *sets)
    result = kube.kubectl("apply", "--dry-run=server", "-f", "-", input=rendered)
    assert "Deployment" in result.stdout or "deployment" in result.stdout
    assert "created (server dry run)" in result.stdout


def test_sqlite_store_refuses_more_than_one_replica(kube: Any) -> None:
    result = kube.helm("template", "x", str(CHART), "--set", "replicaCount=2", check=False)
    assert result.returncode != 0 and "ReadWriteOnce" in result.stderr


def _can_i(kube: Any, kubeconfig: Path, *args: str) -> bool:
    result = kube.kubectl("--kubeconfig", str(kubeconfig), "auth", "can-i", *args, check=False)
    return result.stdout.strip() == "yes"


@pytest.fixture(scope="module")
def cluster_wide_account(kube: Any, crds: None) -> Path:
    _namespace(kube, "cipulse-rbac")
    kube.kubectl("apply", "-f", "-", input=_render(kube, "rbac", "cipulse-rbac"))
    return Path(kube.service_account_kubeconfig("cipulse-rbac", "rbac-cipulse"))


ALLOWED = [
    ("get", "cicdmonitors.cipulse.io", "-n", "anywhere"),
    ("list", "cicdmonitors.cipulse.io", "--all-namespaces"),
    ("watch", "cicdmonitors.cipulse.io", "--all-namespaces"),
    ("patch", "cicdmonitors.cipulse.io", "-n", "anywhere"),
    ("patch", "cicdmonitors.cipulse.io", "--subresource=status", "-n", "anywhere"),
    ("create", "events", "-n", "anywhere"),
    ("get", "secrets", "-n", "anywhere"),
    ("list", "clusterkopfpeerings.kopf.dev"),
    ("watch", "clusterkopfpeerings.kopf.dev"),
    ("patch", "clusterkopfpeerings.kopf.dev/cipulse"),
]
DENIED = [
    ("create", "cicdmonitors.cipulse.io", "-n", "anywhere"),
    ("delete", "cicdmonitors.cipulse.io", "-n", "anywhere"),
    ("update", "cicdmonitors.cipulse.io", "-n", "anywhere"),
    ("list", "secrets", "-n", "anywhere"),
    ("watch", "secrets", "--all-namespaces"),
    ("create", "secrets", "-n", "anywhere"),
    ("get", "configmaps", "-n", "anywhere"),
    ("create", "pods", "-n", "anywhere"),
    ("patch", "deployments.apps", "-n", "cipulse-rbac"),
    ("delete", "events", "-n", "anywhere"),
    ("patch", "clusterkopfpeerings.kopf.dev/someone-else"),
    ("delete", "clusterkopfpeerings.kopf.dev/cipulse"),
    ("create", "customresourcedefinitions.apiextensions.k8s.io"),
    ("create", "clusterrolebindings.rbac.authorization.k8s.io"),
    ("list", "namespaces"),
]


@pytest.mark.parametrize("check", ALLOWED, ids=[" ".join(c) for c in ALLOWED])
def test_service_account_can_do_what_the_operator_needs(
    kube: Any, cluster_wide_account: Path, check: tuple[str, ...]
) -> None:
    assert _can_i(kube, cluster_wide_account, *check)


@pytest.mark.parametrize("check", DENIED, ids=[" ".join(c) for c in DENIED])
def test_service_account_can_do_nothing_more(
    kube: Any, cluster_wide_account: Path, check: tuple[str, ...]
) -> None:
    assert not _can_i(kube, cluster_wide_account, *check)


def test_namespaced_install_is_confined_to_its_namespaces(kube: Any, crds: None) -> None:
    for namespace in ("cipulse-ns", "team-a", "team-b"):
        _namespace(kube, namespace)
    rendered = _render(kube, "scoped", "cipulse-ns", "watchNamespaces={team-a}", "shard.peering=scoped")
    kube.kubectl("apply", "-f", "-", input=rendered)
    account = Path(kube.service_account_kubeconfig("cipulse-ns", "scoped-cipulse"))
    assert _can_i(kube, account, "list", "cicdmonitors.cipulse.io", "-n", "team-a")
    assert _can_i(kube, account, "get", "secrets", "-n", "team-a")
    assert _can_i(kube, account, "patch", "kopfpeerings.kopf.dev/scoped", "-n", "team-a")
    assert not _can_i(kube, account, "list", "cicdmonitors.cipulse.io", "-n", "team-b")
    assert not _can_i(kube, account, "get", "secrets", "-n", "team-b")
    assert not _can_i(kube, account, "list", "cicdmonitors.cipulse.io", "--all-namespaces")
