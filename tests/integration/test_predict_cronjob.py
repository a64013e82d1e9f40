"""The retraining CronJob manifest is accepted and stored by a real kube-apiserver."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from tests.services.kube import ControlPlane

pytestmark = pytest.mark.integration

MANIFEST = Path(__file__).resolve().parents[2] / "deploy" / "predict" / "retrain-cronjob.yaml"


def test_retrain_cronjob_is_valid_for_the_api_server(kube: ControlPlane) -> None:
    namespace = f"predict-{uuid.uuid4().hex[:8]}"
    kube.kubectl("create", "namespace", namespace)
    try:
        kube.kubectl("apply", "-n", namespace, "-f", str(MANIFEST))
        stored = json.loads(
            kube.kubectl("get", "cronjob", "cipulse-retrain", "-n", namespace, "-o", "json").stdout
        )
        assert stored["spec"]["concurrencyPolicy"] == "Forbid"
        pod = stored["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert "cipulse train --store" in container["args"][0]
        assert {e["name"] for e in container["env"]} >= {"CIPULSE_STORE_URL", "CIPULSE_REPOSITORY"}
        assert pod["volumes"][0]["persistentVolumeClaim"]["claimName"] == "cipulse-models"
        kube.kubectl("get", "pvc", "cipulse-models", "-n", namespace)
    finally:
        kube.kubectl("delete", "namespace", namespace, "--wait=false")
