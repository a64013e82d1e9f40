"""Helpers for the operator's integration tests: the operator as a real subprocess, a signed-webhook
receiver, and waiting on CiCdMonitor status through kubectl."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cipulse.operator.sinks import SIGNATURE_HEADER, verify

ROOT = Path(__file__).resolve().parents[2]
RELEASE_NAMESPACE = "cipulse-system"
MONITORS = "monitors"
SERVICE_ACCOUNT = "cipulse"


def install_chart(kube: Any) -> Path:
    """CRDs plus the Helm chart applied for real (idempotent); returns the chart ServiceAccount's kubeconfig.

    Operators started with it prove the chart's RBAC is enough for everything they do.
    """

    def apply(manifest: str) -> None:
        kube.kubectl("apply", "-f", "-", input=manifest)

    for crd in ("deploy/crd/cicdmonitors.yaml", "deploy/helm/cipulse/crds/kopf-peering.yaml"):
        kube.kubectl("apply", "-f", str(ROOT / crd))
    kube.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd/cicdmonitors.cipulse.io")
    kube.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd/clusterkopfpeerings.kopf.dev")
    for namespace in (RELEASE_NAMESPACE, MONITORS):
        apply(json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}))
    rendered = kube.helm(
        "template", SERVICE_ACCOUNT, str(ROOT / "deploy/helm/cipulse"), "--namespace", RELEASE_NAMESPACE
    ).stdout
    apply(rendered)
    return Path(kube.service_account_kubeconfig(RELEASE_NAMESPACE, SERVICE_ACCOUNT, duration="2h"))


class OperatorProcess:
    """`cipulse operator run` in its own process group, logging to a file the tests can read."""

    def __init__(self, kubeconfig: Path, store_path: Path, log_path: Path, *args: str) -> None:
        self.kubeconfig, self.store_path, self.log_path, self.args = kubeconfig, store_path, log_path, args
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> OperatorProcess:
        argv = [
            sys.executable,
            "-m",
            "cipulse",
            "operator",
            "run",
            "--store",
            f"sqlite:///{self.store_path}",
            "--metrics-port",
            "0",
            *self.args,
        ]
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig)}
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        return self

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def metrics_url(self, timeout: float = 60) -> str:
        found = wait_for(
            lambda: re.search(r"metrics at (http://\S+/metrics)", self.log), timeout, "metrics URL"
        )
        return found.group(1)

    def kill(self) -> None:
        """SIGKILL: no cleanup handlers run, exactly like an OOM kill or a node loss."""
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=45)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def wait_for(probe: Callable[[], Any], timeout: float, what: str, interval: float = 0.5) -> Any:
    """Poll until `probe` returns something truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes


@dataclass
class WebhookReceiver:
    """A real HTTP server on 127.0.0.1 that records deliveries and checks their HMAC signatures."""

    secret: bytes
    port: int = 0  # 0: a free port; a fixed one brings a receiver back at the same URL
    deliveries: list[Delivery] = field(default_factory=list)
    rejected: int = 0  # requests whose signature did not verify
    server: ThreadingHTTPServer | None = None

    def __enter__(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                ok = verify(receiver.secret, body, self.headers.get(SIGNATURE_HEADER))
                if ok:
                    receiver.deliveries.append(Delivery(dict(self.headers.items()), body))
                else:
                    receiver.rejected += 1
                self.send_response(204 if ok else 401)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/cipulse"

    def payloads(self) -> list[dict[str, Any]]:
        return [json.loads(d.body) for d in self.deliveries]


def monitor_manifest(
    name: str, namespace: str, spec: dict[str, Any], labels: dict[str, str] | None = None
) -> str:
    doc = {
        "apiVersion": "cipulse.io/v1alpha1",
        "kind": "CiCdMonitor",
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
        "spec": spec,
    }
    return json.dumps(doc)


def secret_manifest(
    name: str, namespace: str, data: dict[str, str], labels: dict[str, str] | None = None
) -> str:
    doc = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
        "stringData": data,
    }
    return json.dumps(doc)


def get_monitor(kube: Any, namespace: str, name: str) -> dict[str, Any]:
    return dict(json.loads(kube.kubectl("get", "cicdmonitor", name, "-n", namespace, "-o", "json").stdout))


def condition(monitor: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for found in monitor.get("status", {}).get("conditions", []):
        if found.get("type") == kind:
            return dict(found)
    return None
