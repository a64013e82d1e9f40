"""The test control plane is a real API server: it enforces CRD schemas, stores objects, applies RBAC."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest

from tests.services.kube import ControlPlane, KubectlError, read_versions

pytestmark = pytest.mark.integration

GROUP = "smoke.cipulse.test"
CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": f"widgets.{GROUP}"},
    "spec": {
        "group": GROUP,
        "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "required": ["size"],
                                "properties": {
                                    "size": {"type": "integer", "minimum": 1, "maximum": 10},
                                    "color": {"type": "string", "enum": ["red", "blue"]},
                                },
                            }
                        },
                    }
                },
            }
        ],
    },
}


def widget(name: str, namespace: str, spec: dict[str, object]) -> str:
    return json.dumps(
        {
            "apiVersion": f"{GROUP}/v1",
            "kind": "Widget",
            "metadata": {"name": name, "namespace": namespace},
            "spec": spec,
        }
    )


@pytest.fixture
def namespace(kube: ControlPlane) -> Iterator[str]:
    name = f"smoke-{uuid.uuid4().hex[:8]}"
    kube.kubectl("create", "namespace", name)
    yield name
    # Without a namespace controller the namespace stays Terminating; do not wait for it to disappear.
    kube.kubectl("delete", "namespace", name, "--wait=false")


@pytest.fixture(scope="module")
def widget_crd(kube: ControlPlane) -> str:
    kube.kubectl("apply", "-f", "-", input=json.dumps(CRD))
    kube.kubectl("wait", "--for=condition=Established", f"crd/widgets.{GROUP}", "--timeout=60s")
    return f"widgets.{GROUP}"


def names_of(kube: ControlPlane, resource: str, namespace: str) -> list[str]:
    listing = json.loads(kube.kubectl("get", resource, "--namespace", namespace, "-o", "json").stdout)
    return sorted(item["metadata"]["name"] for item in listing["items"])


def test_server_reports_the_pinned_kubernetes_version(kube: ControlPlane) -> None:
    version = json.loads(kube.kubectl("version", "-o", "json").stdout)
    assert version["serverVersion"]["gitVersion"] == "v" + read_versions()["KUBE_VERSION"]


def test_crd_schema_rejects_invalid_objects_and_accepts_valid_ones(
    kube: ControlPlane, widget_crd: str, namespace: str
) -> None:
    too_big = kube.kubectl("create", "-f", "-", input=widget("too-big", namespace, {"size": 42}), check=False)
    assert too_big.returncode != 0
    assert "spec.size" in too_big.stderr
    assert "less than or equal to 10" in too_big.stderr

    missing = kube.kubectl(
        "create", "-f", "-", input=widget("no-size", namespace, {"color": "red"}), check=False
    )
    assert missing.returncode != 0
    assert "spec.size: Required value" in missing.stderr

    wrong_enum = widget("green", namespace, {"size": 3, "color": "green"})
    rejected = kube.kubectl("create", "-f", "-", input=wrong_enum, check=False)
    assert rejected.returncode != 0
    assert "spec.color" in rejected.stderr
    assert 'supported values: "red", "blue"' in rejected.stderr

    kube.kubectl("create", "-f", "-", input=widget("valid", namespace, {"size": 3, "color": "blue"}))
    assert names_of(kube, widget_crd, namespace) == ["valid"]
    stored = json.loads(kube.kubectl("get", widget_crd, "valid", "-n", namespace, "-o", "json").stdout)
    assert stored["spec"] == {"size": 3, "color": "blue"}


def test_structural_schema_prunes_unknown_fields(kube: ControlPlane, widget_crd: str, namespace: str) -> None:
    extra = widget("extra", namespace, {"size": 2, "flavour": "lemon"})
    strict = kube.kubectl("create", "-f", "-", input=extra, check=False)
    assert strict.returncode != 0
    assert 'unknown field "spec.flavour"' in strict.stderr

    kube.kubectl("create", "--validate=false", "-f", "-", input=extra)
    stored = json.loads(kube.kubectl("get", widget_crd, "extra", "-n", namespace, "-o", "json").stdout)
    assert stored["spec"] == {"size": 2}


def test_create_list_delete_namespaced_object(kube: ControlPlane, namespace: str) -> None:
    assert names_of(kube, "configmaps", namespace) == []
    kube.kubectl("create", "configmap", "settings", "-n", namespace, "--from-literal=interval=60s")
    kube.kubectl("create", "configmap", "extra", "-n", namespace, "--from-literal=a=b")
    assert names_of(kube, "configmaps", namespace) == ["extra", "settings"]
    stored = json.loads(kube.kubectl("get", "configmap", "settings", "-n", namespace, "-o", "json").stdout)
    assert stored["data"] == {"interval": "60s"}

    kube.kubectl("delete", "configmap", "settings", "-n", namespace)
    assert names_of(kube, "configmaps", namespace) == ["extra"]
    with pytest.raises(KubectlError, match="NotFound"):
        kube.kubectl("get", "configmap", "settings", "-n", namespace)


def test_service_account_kubeconfig_is_subject_to_rbac(kube: ControlPlane, namespace: str) -> None:
    kube.kubectl("create", "serviceaccount", "reader", "-n", namespace)
    kube.kubectl(
        "create", "role", "read-configmaps", "-n", namespace, "--verb=get,list", "--resource=configmaps"
    )
    kube.kubectl(
        "create", "rolebinding", "reader", "-n", namespace, "--role=read-configmaps",
        f"--serviceaccount={namespace}:reader",
    )  # fmt: skip
    config = kube.service_account_kubeconfig(namespace, "reader")

    def can_i(*args: str) -> str:
        result = kube.kubectl("auth", "can-i", *args, "-n", namespace, "--kubeconfig", config, check=False)
        return result.stdout.strip()

    assert can_i("list", "configmaps") == "yes"
    assert can_i("delete", "configmaps") == "no"
    assert can_i("list", "secrets") == "no"
    whoami = json.loads(kube.kubectl("auth", "whoami", "-o", "json", "--kubeconfig", config).stdout)
    assert whoami["status"]["userInfo"]["username"] == f"system:serviceaccount:{namespace}:reader"
    denied = kube.kubectl("get", "secrets", "-n", namespace, "--kubeconfig", config, check=False)
    assert denied.returncode != 0
    assert "forbidden" in denied.stderr.lower()
