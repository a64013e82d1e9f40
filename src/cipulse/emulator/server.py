"""`Emulator`: a GitHub stand-in on 127.0.0.1 for tests, benchmarks and demos.

    with Emulator(seed=0, jobs_per_repo=10_000) as github:
        github.api_url            # http://127.0.0.1:PORT/api/v3 (GHES layout); GraphQL at .url + /api/graphql
        github.truth.jobs("octo-org/payments-api")
        github.faults.inject("502", count=2)

It runs uvicorn in a background thread on a port chosen at start.
"""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from cipulse.emulator.assets import GitHubAssets, ensure_github_assets
from cipulse.emulator.faults import Faults
from cipulse.emulator.graph_nodes import NodeFactory
from cipulse.emulator.graphql_api import load_schema
from cipulse.emulator.http_app import build_app
from cipulse.emulator.model import RunPlan
from cipulse.emulator.ratelimit import RateLimits
from cipulse.emulator.shapes import Shapes
from cipulse.emulator.state import DEFAULT_REPOSITORIES, World
from cipulse.emulator.truth import Truth
from cipulse.emulator.usage import Usage
from cipulse.emulator.webhooks import Delivery, WebhookSender


class Emulator:
    """GitHub's GraphQL, REST and webhooks over a seeded, deterministic CI history.

    Limits are GitHub's: 5,000 REST requests and 5,000 GraphQL points per hour per token, at most 100
    requests in flight; the per-minute secondary limits apply only when asked for
    (`per_minute=ratelimit.GITHUB_PER_MINUTE`), since they would slow every test down.

    The history's clock stands still (answers stay reproducible) until `advance` or `add_activity`
    moves it; with `live=True` it follows real time and new runs start every `live_new_run_every`
    seconds per repository (for demos).
    """

    def __init__(
        self,
        seed: int = 0,
        repos: list[str] | tuple[str, ...] | dict[str, int] | None = None,
        jobs_per_repo: int = 1000,
        *,
        days: float = 14.0,
        failure_rate: float = 0.1,
        token: str | None = None,
        rate_limit: int = 5000,
        graphql_rate_limit: int = 5000,
        rate_window_seconds: float = 3600.0,
        max_concurrent: int = 100,
        per_minute: dict[str, int] | None = None,
        hang_seconds: float = 5.0,
        graphql_timeout_seconds: float = 10.0,
        host: str = "127.0.0.1",
        port: int = 0,
        assets: GitHubAssets | None = None,
        live: bool = False,
        live_new_run_every: float = 120.0,
    ) -> None:
        if isinstance(repos, dict):
            sizes = dict(repos)
        else:
            sizes = dict.fromkeys(repos or DEFAULT_REPOSITORIES, jobs_per_repo)
        for name in sizes:
            if name.count("/") != 1:
                raise ValueError(f"repositories are named OWNER/NAME, not {name!r}")
        self.assets = assets or ensure_github_assets()
        self.schema = load_schema(Path(self.assets.graphql_schema_path))
        self.world = World(seed=seed, repos=sizes, days=days, failure_rate=failure_rate)
        self.token = token or "ghp_" + hashlib.sha256(f"cipulse-emulator-{seed}".encode()).hexdigest()[:36]
        self.tokens = {self.token}
        self.limits = RateLimits(
            core_limit=rate_limit,
            graphql_limit=graphql_rate_limit,
            window_seconds=rate_window_seconds,
            max_concurrent=max_concurrent,
            per_minute=per_minute,
        )
        self.faults = Faults()
        self.usage = Usage(faults=self.faults.injected)
        self.hang_seconds = hang_seconds
        self.graphql_timeout_seconds = graphql_timeout_seconds
        self._host = host
        self._port = port
        self.url = ""
        self.shapes = self._shapes_for("http://127.0.0.1", "https://api.github.com")
        self.nodes = NodeFactory(self.world, "http://127.0.0.1")
        self.truth = Truth(self.world, "http://127.0.0.1")
        self.webhooks = WebhookSender(self.world, lambda: self.shapes)
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.live = live
        self.live_new_run_every = live_new_run_every
        self._live_stop = threading.Event()
        self._live_thread: threading.Thread | None = None

    def _shapes_for(self, html_base: str, api_base: str) -> Shapes:
        return Shapes(
            Path(self.assets.openapi_path), Path(self.assets.webhook_examples_path), api_base, html_base
        )

    # ---- lifecycle -------------------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        """REST base URL in GitHub Enterprise Server layout."""
        return self.url + "/api/v3"

    @property
    def graphql_url(self) -> str:
        return self.url + "/api/graphql"

    @property
    def repositories(self) -> list[str]:
        return [repo.full_name for repo in self.world.repos.values()]

    def start(self) -> Emulator:
        import uvicorn

        if self._thread is not None:
            return self
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._host, self._port))
        port = sock.getsockname()[1]
        self.url = f"http://{self._host}:{port}"
        self.shapes = self._shapes_for(self.url, self.api_url)
        self.nodes = NodeFactory(self.world, self.url)
        self.truth = Truth(self.world, self.url)
        config = uvicorn.Config(
            build_app(self),
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
        server = uvicorn.Server(config)
        self._server = server
        self._thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the GitHub emulator's HTTP server did not start")
            time.sleep(0.01)
        self._socket = sock
        if self.live:
            self._live_stop.clear()
            self._live_thread = threading.Thread(target=self._follow_real_time, daemon=True)
            self._live_thread.start()
        return self

    def _follow_real_time(self) -> None:
        while not self._live_stop.wait(1.0):
            self.world.follow_real_time(self.live_new_run_every)

    def stop(self) -> None:
        if self._thread is None:
            return
        self._live_stop.set()
        if self._live_thread is not None:
            self._live_thread.join(timeout=5)
            self._live_thread = None
        self._server.should_exit = True
        self._thread.join(timeout=15)
        self._socket.close()
        self._thread = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    # ---- changing the world ----------------------------------------------------------------------

    def add_activity(self, repo: str, runs: int = 1, failure_rate: float | None = None) -> list[int]:
        """New runs in `repo` (time moves on until they finish); returns their run ids."""
        planned: list[RunPlan] = self.world.add_activity(repo, runs, failure_rate)
        return [run.run_id for run in planned]

    def set_failure_rate(self, repo: str, rate: float) -> None:
        self.world.set_failure_rate(repo, rate)

    def advance(self, seconds: float) -> None:
        """Moves the emulator's clock: queued and running jobs progress as planned."""
        self.world.advance(seconds)

    def add_token(self, token: str) -> None:
        self.tokens.add(token)

    # ---- webhooks --------------------------------------------------------------------------------

    def send_webhook(self, url: str, secret: str, event: str, payload: dict[str, Any]) -> Delivery:
        return self.webhooks.send(url, secret, event, payload)

    def deliver_webhooks_for(
        self,
        repo: str,
        target_url: str,
        secret: str,
        *,
        lose: float = 0.0,
        seed: int = 0,
        concurrency: int = 1,
    ) -> list[Delivery]:
        """Signed workflow_run/workflow_job deliveries for everything in `repo` not yet sent to
        `target_url`; `lose` drops that share on purpose (seeded) so reconciliation can be tested."""
        return self.webhooks.deliver_for(
            repo, target_url, secret, lose=lose, seed=seed, concurrency=concurrency
        )


def serve_forever(
    port: int, seed: int, jobs_per_repo: int, live: bool = False, print_line: Any = print
) -> None:
    """The `cipulse emulator` command: serve until interrupted."""
    emulator = Emulator(seed=seed, jobs_per_repo=jobs_per_repo, port=port, live=live)
    with emulator:
        print_line(f"GitHub emulator on {emulator.url}")
        print_line(f"  REST (GHES layout): {emulator.api_url}")
        print_line(f"  GraphQL:            {emulator.graphql_url}")
        print_line(f"  token:              {emulator.token}")
        print_line(f"  repositories:       {', '.join(emulator.repositories)}")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
