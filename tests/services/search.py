"""Real Elasticsearch and OpenSearch for tests and benchmarks, started from the cached integ-test zips.

Each server gets a private config copy, data and log directories in a temporary folder, a free port on
127.0.0.1 and a 512 MB heap. Elasticsearch 8 and OpenSearch 2 run on JDK 17 (picked explicitly: another JDK
on the machine is too new for them); OpenSearch 3 needs Java 21+ and runs on the JDK that
`scripts/provision/20-search.sh` chose. That script fetches the distributions pinned in
`scripts/versions.env`.

- `running_elasticsearch()` / `running_opensearch()` / `running_opensearch3()`: context managers yielding the
  base URL (bench scripts).
- `SearchServer`: the same thing as an object that can also be stopped and started again on the same port and
  data (outage tests).
- pytest fixtures `elasticsearch_url` / `opensearch_url` / `opensearch3_url`: one server per test session,
  started on first use.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import httpx
import pytest

Engine = Literal["elasticsearch", "opensearch"]
# What a test asks for: an engine at one major version. Also the prefix of its pytest fixture (`NAME_url`).
Service = Literal["elasticsearch", "opensearch", "opensearch3"]

REPO_ROOT = Path(__file__).resolve().parents[2]
VERSIONS_FILE = REPO_ROOT / "scripts" / "versions.env"
PROVISION_SCRIPT = REPO_ROOT / "scripts" / "provision" / "20-search.sh"
JAVA_HOME = Path(os.environ.get("CIPULSE_SEARCH_JAVA_HOME", "/usr/lib/jvm/java-17-openjdk-amd64"))
HEAP = "512m"
START_TIMEOUT_S = 240.0
STOP_TIMEOUT_S = 60.0
PR_SET_PDEATHSIG = 1
BIND_FAILURE_MARKERS = (
    "BindException",
    "Address already in use",
    "BindTransportException",
    "BindHttpException",
)


class SearchServerError(RuntimeError):
    """The engine did not come up (or went away); the message carries the tail of its logs."""


def read_versions() -> dict[str, str]:
    """KEY=VALUE pairs of scripts/versions.env, with $HOME expanded like the shell does."""
    values: dict[str, str] = {}
    for line in VERSIONS_FILE.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        values[key.strip()] = os.path.expandvars(value.strip())
    return values


def cache_dir() -> Path:
    versions = read_versions()
    root = os.environ.get("CIPULSE_CACHE_DIR") or versions.get("CACHE_DIR_DEFAULT") or "~/.cache/cipulse"
    return Path(root).expanduser() / "search"


@dataclass(frozen=True)
class Distribution:
    """One provisioned engine build and the JDK it runs on."""

    service: Service
    engine: Engine
    home: Path
    java_home: Path


SERVICE_ENGINES: dict[Service, tuple[Engine, str]] = {
    "elasticsearch": ("elasticsearch", "ES_VERSION"),
    "opensearch": ("opensearch", "OPENSEARCH_VERSION"),
    "opensearch3": ("opensearch", "OPENSEARCH3_VERSION"),
}
# Written by the provisioning script next to the distribution: the JDK it chose for that build.
JAVA_HOME_FILE = "cipulse-java-home"


def distribution(service: Service) -> Distribution:
    """The unpacked distribution and its JDK, provisioned on first use (the script is a no-op when cached)."""
    engine, key = SERVICE_ENGINES[service]
    home = cache_dir() / f"{engine}-{read_versions()[key]}"
    if not _provisioned(service, home):
        result = subprocess.run(
            ["bash", str(PROVISION_SCRIPT)], capture_output=True, text=True, check=False, timeout=1800
        )
        if result.returncode != 0 or not _provisioned(service, home):
            raise SearchServerError(
                f"provisioning {service} failed (exit {result.returncode}):\n{result.stdout}\n{result.stderr}"
            )
    return Distribution(service, engine, home, _java_home(service, home))


def _java_home(service: Service, home: Path) -> Path:
    if service != "opensearch3":
        return JAVA_HOME
    chosen = os.environ.get("CIPULSE_OPENSEARCH3_JAVA_HOME") or (home / JAVA_HOME_FILE).read_text().strip()
    return Path(chosen)


def _provisioned(service: Service, home: Path) -> bool:
    engine = SERVICE_ENGINES[service][0]
    if not (home / "bin" / engine).exists():
        return False
    if service != "opensearch3":
        return True
    # the JDK chosen at provisioning time may have gone since: choose again
    recorded = home / JAVA_HOME_FILE
    return recorded.exists() and (Path(recorded.read_text().strip()) / "bin" / "java").exists()


def distribution_home(engine: Engine) -> Path:
    """The unpacked Elasticsearch 8 / OpenSearch 2 distribution (bench scripts call this)."""
    return distribution(engine).home


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tail(path: Path, lines: int = 60) -> str:
    if not path.exists():
        return f"({path} does not exist)"
    text = path.read_text(errors="replace").splitlines()
    return "\n".join(text[-lines:])


class SearchServer:
    """One engine process owned by this object; `stop()`/`start()` keep the port and the data directory."""

    def __init__(self, service: Service, *, workdir: Path | None = None) -> None:
        """Without `workdir`: a temporary one, removed by `close()`. With one: kept, so its data survives
        for the next run (benchmarks reuse a loaded million-job index this way)."""
        self.distribution = distribution(service)
        self.service: Service = service
        self.engine: Engine = self.distribution.engine
        self.home = self.distribution.home
        self._owns_workdir = workdir is None
        if workdir is None:
            _remove_abandoned_workdirs(service)
            workdir = Path(tempfile.mkdtemp(prefix=f"cipulse-{service}-{os.getpid()}-"))
        self.workdir = workdir
        self.http_port = free_port()
        self.transport_port = free_port()
        self.cluster_name = f"cipulse-{service}-{os.getpid()}" if self._owns_workdir else f"cipulse-{service}"
        self._process: subprocess.Popen[bytes] | None = None
        self._prepare_dirs()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _prepare_dirs(self) -> None:
        for sub in ("data", "logs", "tmp"):
            (self.workdir / sub).mkdir(parents=True, exist_ok=True)
        config = self.workdir / "config"
        if not config.exists():
            shutil.copytree(self.home / "config", config)

    def _settings(self) -> dict[str, str]:
        settings = {
            "cluster.name": self.cluster_name,
            "node.name": "node-1",
            "discovery.type": "single-node",
            "network.host": "127.0.0.1",
            "http.port": str(self.http_port),
            "transport.port": str(self.transport_port),
            "path.data": str(self.workdir / "data"),
            "path.logs": str(self.workdir / "logs"),
            "cluster.routing.allocation.disk.threshold_enabled": "false",
            "action.auto_create_index": "true",
        }
        if self.engine == "elasticsearch":
            settings["xpack.security.enabled"] = "false"
        return settings

    def _environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ES_", "OPENSEARCH_", "JAVA_"))}
        prefix = "ES" if self.engine == "elasticsearch" else "OPENSEARCH"
        env["JAVA_HOME"] = str(self.distribution.java_home)
        env[f"{prefix}_JAVA_HOME"] = str(self.distribution.java_home)
        env[f"{prefix}_PATH_CONF"] = str(self.workdir / "config")
        env[f"{prefix}_TMPDIR"] = str(self.workdir / "tmp")
        # Last -Xms/-Xmx win over the distribution's jvm.options; GC logs are not needed for tests.
        env[f"{prefix}_JAVA_OPTS"] = f"-Xms{HEAP} -Xmx{HEAP} -Xlog:disable -Xlog:all=warning:stderr"
        return env

    @property
    def console_log(self) -> Path:
        return self.workdir / "logs" / "console.log"

    @property
    def server_log(self) -> Path:
        return self.workdir / "logs" / f"{self.cluster_name}.log"

    def log_tail(self, lines: int = 60) -> str:
        return (
            f"--- {self.console_log} ---\n{_tail(self.console_log, lines)}\n"
            f"--- {self.server_log} ---\n{_tail(self.server_log, lines)}"
        )

    def start(self, timeout: float = START_TIMEOUT_S) -> None:
        """Start the process and wait for a yellow or green cluster; raise with the log tail otherwise."""
        if self.running:
            return
        for attempt in range(3):
            try:
                self._start_once(timeout)
                return
            except SearchServerError:
                bind_failure = any(marker in self.log_tail(200) for marker in BIND_FAILURE_MARKERS)
                self.stop()
                if not bind_failure or attempt == 2 or not self._owns_workdir:
                    raise
                # Another process took a port between choosing and binding it: choose again.
                self.http_port, self.transport_port = free_port(), free_port()

    def _start_once(self, timeout: float) -> None:
        command = [*_unprivileged_prefix(), str(self.home / "bin" / self.engine)]
        command += [f"-E{key}={value}" for key, value in self._settings().items()]
        with self.console_log.open("ab") as console:
            self._process = subprocess.Popen(
                command,
                cwd=self.workdir,
                env=self._environment(),
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group: stop() reaches the launcher and the server JVM
                preexec_fn=_die_with_parent,
            )
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=5.0) as client:
            while time.monotonic() < deadline:
                if self._process.poll() is not None:
                    raise SearchServerError(
                        f"{self.engine} exited with code {self._process.returncode} while starting\n"
                        + self.log_tail()
                    )
                with contextlib.suppress(httpx.HTTPError):
                    response = client.get(
                        f"{self.url}/_cluster/health", params={"wait_for_status": "yellow", "timeout": "2s"}
                    )
                    if response.status_code == 200 and response.json().get("status") in ("green", "yellow"):
                        return
                time.sleep(0.5)
        raise SearchServerError(
            f"{self.engine} not healthy after {timeout:.0f}s at {self.url}\n" + self.log_tail()
        )

    def stop(self) -> None:
        """Graceful stop, then kill whatever is left of this server's own process group."""
        process, self._process = self._process, None
        if process is None:
            return
        pgid = process.pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            process.wait(timeout=STOP_TIMEOUT_S)
        # The launcher may exit before the server JVM it spawned: wait for the group to be empty.
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while _group_alive(pgid):
            if time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pgid, signal.SIGKILL)
            time.sleep(0.2)

    def kill(self) -> None:
        """Abrupt stop (SIGKILL to the whole group), as a crash or an OOM kill would do."""
        process, self._process = self._process, None
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=STOP_TIMEOUT_S)
        while _group_alive(process.pid):
            time.sleep(0.1)

    def close(self) -> None:
        self.stop()
        if self._owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> SearchServer:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _remove_abandoned_workdirs(service: Service) -> None:
    """Temporary directories of test sessions that were killed before they could clean up."""
    for path in Path(tempfile.gettempdir()).glob(f"cipulse-{service}-*-*"):
        owner = path.name.split("-")[2]
        if owner.isdigit() and not Path(f"/proc/{owner}").exists():
            shutil.rmtree(path, ignore_errors=True)


def _die_with_parent() -> None:
    """Runs in the child before exec: if this Python process dies without stopping the engine (killed,
    crashed), the kernel sends the engine SIGTERM, so no JVM outlives its test session. Linux only; the
    thread that starts the server must live as long as the server (it does: tests start them on the main
    thread)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _unprivileged_prefix() -> list[str]:
    """Both engines refuse to run as root (CI containers often are): run them as an unprivileged user.

    A user namespace maps an ordinary uid inside onto root outside, so the engine sees a non-root user while
    files under root's cache stay readable through owner permissions; no chown or copy is needed.
    """
    if os.geteuid() != 0:
        return []
    unshare = shutil.which("unshare")
    if unshare is None:
        raise SearchServerError("running as root and `unshare` (util-linux) is missing: cannot drop root")
    return [unshare, "--user", "--map-user=1000", "--map-group=1000"]


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def running_elasticsearch() -> Iterator[str]:
    """A fresh single-node Elasticsearch; yields "http://127.0.0.1:PORT"."""
    with SearchServer("elasticsearch") as server:
        yield server.url


@contextlib.contextmanager
def running_opensearch() -> Iterator[str]:
    """A fresh single-node OpenSearch; yields "http://127.0.0.1:PORT"."""
    with SearchServer("opensearch") as server:
        yield server.url


@contextlib.contextmanager
def running_opensearch3() -> Iterator[str]:
    """A fresh single-node OpenSearch 3 (on its Java 21+ JDK); yields "http://127.0.0.1:PORT"."""
    with SearchServer("opensearch3") as server:
        yield server.url


@pytest.fixture(scope="session")
def elasticsearch_url() -> Iterator[str]:
    with running_elasticsearch() as url:
        yield url


@pytest.fixture(scope="session")
def opensearch_url() -> Iterator[str]:
    with running_opensearch() as url:
        yield url


@pytest.fixture(scope="session")
def opensearch3_url() -> Iterator[str]:
    with running_opensearch3() as url:
        yield url
