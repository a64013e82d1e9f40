"""A real Kubernetes control plane (etcd + kube-apiserver) for tests and benchmarks.

The binaries come from `scripts/provision/10-kube.sh` (built from the Go module proxy, cached per version
under ~/.cache/cipulse/kube/). Each control plane gets a fresh temporary directory, free ports on 127.0.0.1,
its own CA and serving certificate, a service-account signing key pair and an admin token in `system:masters`.
RBAC is on, so ServiceAccount kubeconfigs from `service_account_kubeconfig()` get real authorization answers.

As in controller-runtime's envtest there is no controller-manager, scheduler or kubelet: objects are stored
and validated, but pods never run, ownerReference garbage collection does not happen and a deleted namespace
stays `Terminating` (delete namespaces with `--wait=false`).

- `running_control_plane()`: context manager yielding a `ControlPlane` (bench scripts, ad-hoc use).
- pytest fixture `kube`: one control plane per test session.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.services.versions import cache_root, read_versions

START_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 20.0
START_ATTEMPTS = 3
LOG_TAIL_LINES = 40
SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"
ADMIN_USER = "cipulse-admin"
PORT_IN_USE_MARKERS = ("address already in use", "bind: address already in use")


class ControlPlaneError(RuntimeError):
    """The control plane could not be provisioned or started; the message says why (with the log tail)."""


class KubectlError(subprocess.CalledProcessError):
    """A kubectl/helm call failed; unlike CalledProcessError its message includes what the tool printed."""

    def __str__(self) -> str:
        return f"{super().__str__()}\nstdout:\n{self.stdout}\nstderr:\n{self.stderr}"


def binaries_dir() -> Path:
    """Where 10-kube.sh puts etcd, kube-apiserver, kubectl and helm for the pinned Kubernetes version."""
    return cache_root() / "kube" / read_versions()["KUBE_VERSION"] / "bin"


def _required_binary(name: str) -> Path:
    path = binaries_dir() / name
    if not os.access(path, os.X_OK):
        raise ControlPlaneError(
            f"{path} is missing: run `make services` (or `bash scripts/provision/10-kube.sh`) to build the "
            "Kubernetes test control plane first"
        )
    return path


@dataclass(frozen=True)
class Tool:
    """A CLI bound to one kubeconfig: a path (os.PathLike, usable in argv) that can also be called directly.

    `kube.kubectl("get", "pods", "-A")` runs it; `[kube.kubectl, "get", "pods"]` works in subprocess argv too.
    """

    path: Path
    env: dict[str, str]

    def __fspath__(self) -> str:
        return str(self.path)

    def __str__(self) -> str:
        return str(self.path)

    def __call__(
        self,
        *args: str | os.PathLike[str],
        input: str | None = None,
        check: bool = True,
        timeout: float = 120.0,
    ) -> subprocess.CompletedProcess[str]:
        """Run the tool with `args`; by default raise KubectlError (stdout and stderr included) on failure."""
        argv = [str(self.path), *(os.fspath(arg) for arg in args)]
        result = subprocess.run(
            argv, input=input, capture_output=True, text=True, env=self.env, timeout=timeout, check=False
        )
        if check and result.returncode != 0:
            raise KubectlError(result.returncode, argv, result.stdout, result.stderr)
        return result


@dataclass
class ControlPlane:
    """A running etcd + kube-apiserver pair and the admin credentials for it."""

    server: str
    token: str
    kubeconfig: Path
    ca_file: Path
    workdir: Path
    kubectl: Tool
    helm: Tool
    versions: dict[str, str] = field(default_factory=dict)

    @property
    def kubectl_path(self) -> Path:
        return self.kubectl.path

    @property
    def helm_path(self) -> Path:
        return self.helm.path

    def service_account_kubeconfig(
        self, namespace: str, name: str, *, duration: str = "1h", path: Path | None = None
    ) -> Path:
        """A kubeconfig authenticating as ServiceAccount `namespace/name` (token from the TokenRequest API).

        The ServiceAccount must exist. Used for RBAC checks such as `kubectl auth can-i --kubeconfig <it>`.
        """
        token = self.kubectl("create", "token", name, "--namespace", namespace, "--duration", duration).stdout
        target = path or self.workdir / f"sa-{namespace}-{name}.kubeconfig"
        write_kubeconfig(
            target, self.server, self.ca_file, f"system:serviceaccount:{namespace}:{name}", token.strip()
        )
        return target


def write_kubeconfig(path: Path, server: str, ca_file: Path, user: str, token: str) -> None:
    """A one-context kubeconfig, readable by its owner only (JSON is valid YAML: every client reads it)."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "cipulse-test", "cluster": {"server": server, "certificate-authority": str(ca_file)}}
        ],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": "cipulse-test", "context": {"cluster": "cipulse-test", "user": user}}],
        "current-context": "cipulse-test",
    }
    path.write_text(json.dumps(config, indent=2))
    path.chmod(0o600)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _openssl(*args: str) -> None:
    if shutil.which("openssl") is None:
        raise ControlPlaneError("openssl is needed to make the test control plane's certificates and keys")
    result = subprocess.run(["openssl", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ControlPlaneError(f"openssl {' '.join(args[:2])} failed:\n{result.stderr}")


def make_pki(pki: Path) -> None:
    """A throwaway CA, a serving certificate for 127.0.0.1 signed by it, a service-account key pair."""
    pki.mkdir(parents=True)
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2")
    _openssl(
        "req",
        "-x509",
        *ec,
        "-keyout",
        str(pki / "ca.key"),
        "-out",
        str(pki / "ca.crt"),
        "-subj",
        "/CN=cipulse-test-ca",
    )
    _openssl(
        "req",
        "-x509",
        *ec,
        "-CA",
        str(pki / "ca.crt"),
        "-CAkey",
        str(pki / "ca.key"),
        "-keyout",
        str(pki / "apiserver.key"),
        "-out",
        str(pki / "apiserver.crt"),
        "-subj",
        "/CN=kube-apiserver",
        "-addext",
        "subjectAltName=IP:127.0.0.1,DNS:localhost",
        "-addext",
        "basicConstraints=critical,CA:FALSE",
        "-addext",
        "extendedKeyUsage=serverAuth",
    )
    _openssl(
        "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(pki / "sa.key")
    )
    _openssl("pkey", "-in", str(pki / "sa.key"), "-pubout", "-out", str(pki / "sa.pub"))


def _die_with_parent() -> None:
    """Child-side: have Linux kill the server if the test process dies without cleaning up (no strays).

    SIGKILL, not SIGTERM: kube-apiserver's graceful shutdown never finishes once etcd is gone too.
    """
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG


@dataclass
class _Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def tail(self, lines: int = LOG_TAIL_LINES) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def failure(self, what: str) -> ControlPlaneError:
        return ControlPlaneError(f"{self.name} {what}; last lines of {self.log}:\n{self.tail()}")

    def port_was_taken(self) -> bool:
        return any(marker in self.tail(200).lower() for marker in PORT_IN_USE_MARKERS)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(STOP_TIMEOUT_S)


def _spawn(name: str, argv: Sequence[object], log: Path) -> _Process:
    with log.open("wb") as out:
        popen = subprocess.Popen(
            [str(arg) for arg in argv],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,  # only calls prctl: safe between fork and exec
        )
    return _Process(name, popen, log)


def _wait_until(process: _Process, ready: Callable[[], bool], deadline: float) -> None:
    """Poll `ready()` until it returns True; fail with the log tail if the process exits or time runs out."""
    while time.monotonic() < deadline:
        if process.popen.poll() is not None:
            raise process.failure(f"exited with code {process.popen.returncode} before becoming ready")
        with contextlib.suppress(httpx.HTTPError, OSError):
            if ready():
                return
        time.sleep(0.25)
    raise process.failure(f"was not ready within {START_TIMEOUT_S:.0f} s")


def _start_etcd(etcd: Path, workdir: Path) -> tuple[_Process, str]:
    client, peer = f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"
    argv = [
        etcd,
        "--name=cipulse-test",
        f"--data-dir={workdir / 'etcd-data'}",
        f"--listen-client-urls={client}",
        f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=cipulse-test={peer}",
        "--unsafe-no-fsync=true",  # throwaway data: durability would only slow tests down
        "--log-level=warn",
    ]
    process = _spawn("etcd", argv, workdir / "etcd.log")
    deadline = time.monotonic() + START_TIMEOUT_S

    def ready() -> bool:
        return httpx.get(f"{client}/health", timeout=2).json().get("health") == "true"

    try:
        _wait_until(process, ready, deadline)
    except BaseException:
        process.stop()
        raise
    return process, client


def _start_apiserver(apiserver: Path, workdir: Path, etcd_url: str, token: str) -> tuple[_Process, str]:
    pki = workdir / "pki"
    port = free_port()
    server = f"https://127.0.0.1:{port}"
    tokens = workdir / "tokens.csv"
    tokens.write_text(f'{token},{ADMIN_USER},{ADMIN_USER},"system:masters"\n')
    tokens.chmod(0o600)
    argv = [
        apiserver,
        f"--etcd-servers={etcd_url}",
        "--advertise-address=127.0.0.1",
        "--bind-address=127.0.0.1",
        f"--secure-port={port}",
        f"--tls-cert-file={pki / 'apiserver.crt'}",
        f"--tls-private-key-file={pki / 'apiserver.key'}",
        f"--client-ca-file={pki / 'ca.crt'}",
        f"--token-auth-file={tokens}",
        f"--service-account-key-file={pki / 'sa.pub'}",
        f"--service-account-signing-key-file={pki / 'sa.key'}",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        "--authorization-mode=RBAC",
        f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
        "--allow-privileged=true",
        # As envtest: no controller-manager creates the `default` ServiceAccounts this plugin insists on.
        "--disable-admission-plugins=ServiceAccount",
        "--v=1",
    ]
    process = _spawn("kube-apiserver", argv, workdir / "kube-apiserver.log")
    context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    deadline = time.monotonic() + START_TIMEOUT_S

    def ready() -> bool:
        response = httpx.get(
            f"{server}/readyz", headers={"Authorization": f"Bearer {token}"}, verify=context, timeout=5
        )
        return response.status_code == 200 and response.text.strip() == "ok"

    try:
        _wait_until(process, ready, deadline)
    except BaseException:
        process.stop()
        raise
    return process, server


def _retrying_port_clashes(start: Callable[[], tuple[_Process, str]]) -> tuple[_Process, str]:
    """Free ports are picked before the server binds them; another service may win the race, so try again."""
    for attempt in range(START_ATTEMPTS):
        try:
            return start()
        except ControlPlaneError as error:
            if attempt == START_ATTEMPTS - 1 or not any(m in str(error).lower() for m in PORT_IN_USE_MARKERS):
                raise
    raise AssertionError("unreachable")


def tool_versions(etcd: Path, apiserver: Path, kubectl: Tool, helm: Tool) -> dict[str, str]:
    """What each binary says about itself, for reports and for tests that depend on a version."""

    def first_line(argv: Sequence[str | Path]) -> str:
        out = subprocess.run([str(a) for a in argv], capture_output=True, text=True, check=False, timeout=30)
        return (
            (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr).strip() else ""
        )

    return {
        "kube-apiserver": first_line([apiserver, "--version"]),
        "etcd": first_line([etcd, "--version"]),
        "kubectl": kubectl("version", "--client").stdout.strip().splitlines()[0],
        "helm": helm("version", "--short").stdout.strip(),
    }


@contextlib.contextmanager
def running_control_plane() -> Iterator[ControlPlane]:
    """Start etcd and kube-apiserver on free 127.0.0.1 ports; stop both (and delete their data) on exit.

    If either fails to start, the error carries the tail of its log; the work directory stays for the rest.
    """
    etcd, apiserver = _required_binary("etcd"), _required_binary("kube-apiserver")
    kubectl_path, helm_path = _required_binary("kubectl"), _required_binary("helm")
    workdir = Path(tempfile.mkdtemp(prefix="cipulse-kube-"))
    processes: list[_Process] = []
    started = False
    try:
        make_pki(workdir / "pki")
        token = secrets.token_urlsafe(32)
        etcd_process, etcd_url = _retrying_port_clashes(lambda: _start_etcd(etcd, workdir))
        processes.append(etcd_process)
        api_process, server = _retrying_port_clashes(
            lambda: _start_apiserver(apiserver, workdir, etcd_url, token)
        )
        processes.append(api_process)
        kubeconfig = workdir / "admin.kubeconfig"
        write_kubeconfig(kubeconfig, server, workdir / "pki" / "ca.crt", ADMIN_USER, token)
        helm_home = workdir / "helm"
        env = {
            **os.environ,
            "KUBECONFIG": str(kubeconfig),
            "KUBECACHEDIR": str(workdir / "kube-cache"),  # discovery cache dies with this control plane
            "HELM_CACHE_HOME": str(helm_home / "cache"),
            "HELM_CONFIG_HOME": str(helm_home / "config"),
            "HELM_DATA_HOME": str(helm_home / "data"),
        }
        kubectl, helm = Tool(kubectl_path, env), Tool(helm_path, env)
        plane = ControlPlane(
            server=server,
            token=token,
            kubeconfig=kubeconfig,
            ca_file=workdir / "pki" / "ca.crt",
            workdir=workdir,
            kubectl=kubectl,
            helm=helm,
            versions=tool_versions(etcd, apiserver, kubectl, helm),
        )
        started = True
        yield plane
    finally:
        for process in reversed(processes):
            process.stop()
        if started:
            shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def kube() -> Iterator[ControlPlane]:
    """One real control plane for the whole test session (admin kubeconfig at `kube.kubeconfig`)."""
    with running_control_plane() as plane:
        yield plane
