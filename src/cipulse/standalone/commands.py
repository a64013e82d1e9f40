"""Typer commands `cipulse up` and `cipulse operator run`; heavy imports happen inside the commands."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from cipulse.operator.outbox import DEFAULT_CAPACITY  # light: sqlite3 and dataclasses only

operator_app = typer.Typer(
    help="The Kubernetes operator (CiCdMonitor custom resources).", no_args_is_help=True
)


def up(
    file: Path | None = typer.Option(
        None,
        "-f",
        "--file",
        help="CiCdMonitor manifests (YAML); default: the built-in emulator's repositories.",
    ),
    store: str | None = typer.Option(
        None,
        "--store",
        help="Store URL (sqlite:///path.db or http(s)://search-host). "
        "Default: ./.cipulse/cipulse.db in a checkout, else ~/.local/share/cipulse/cipulse.db.",
    ),
    rounds: int | None = typer.Option(None, "--rounds", min=1, help="Stop after this many rounds of polls."),
    metrics_port: int = typer.Option(
        0, "--metrics-port", help="Port for /metrics on 127.0.0.1 (0: a free port)."
    ),
    seed: int = typer.Option(0, "--seed", help="Emulator seed (when no monitors file is given)."),
    max_concurrent_polls: int = typer.Option(
        8, "--max-concurrent-polls", min=1, help="Polls running at once."
    ),
) -> None:
    """Collect, store and judge CI health without Kubernetes; prints a table after every round."""
    import asyncio

    from cipulse.standalone.config import ConfigError
    from cipulse.standalone.up import UpOptions, run_up
    from cipulse.store.base import StoreUnavailable

    options = UpOptions(
        monitors_file=file,
        store_url=store,
        rounds=rounds,
        metrics_port=metrics_port,
        seed=seed,
        max_concurrent_polls=max_concurrent_polls,
    )
    try:
        code = asyncio.run(run_up(options))
    except (ConfigError, ValueError, StoreUnavailable) as error:
        typer.secho(str(error), fg="red", err=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        code = 0
    raise typer.Exit(code)


@operator_app.command("run")
def operator_run(
    store: str = typer.Option(
        os.environ.get("CIPULSE_STORE_URL", "sqlite:///./.cipulse/cipulse.db"),
        "--store",
        help="Store URL; search-store credentials from CIPULSE_STORE_USERNAME/PASSWORD.",
    ),
    namespace: list[str] = typer.Option(
        [], "--namespace", "-n", help="Serve only these namespaces (repeatable)."
    ),
    selector: str = typer.Option(
        "", "--selector", "-l", help="Shard by labels: 'shard=a', 'team', '!paused'."
    ),
    peering: str | None = typer.Option(None, "--peering", help="kopf peering name (one per shard)."),
    priority: int | None = typer.Option(None, "--priority", help="Peering priority (default: random)."),
    metrics_host: str = typer.Option("127.0.0.1", "--metrics-host"),
    metrics_port: int = typer.Option(8080, "--metrics-port", help="/metrics and /readyz (0: a free port)."),
    liveness: str | None = typer.Option(
        None, "--liveness", help="kopf liveness URL, e.g. http://0.0.0.0:8081/healthz"
    ),
    max_concurrent_polls: int = typer.Option(8, "--max-concurrent-polls", min=1, help="Polls at once."),
    outbox: str | None = typer.Option(
        None,
        "--outbox",
        help="SQLite file for pending sink deliveries (default: CIPULSE_OUTBOX_PATH, else beside the "
        "store or its spool).",
    ),
    outbox_capacity: int = typer.Option(
        DEFAULT_CAPACITY, "--outbox-capacity", min=1, help="Pending deliveries kept at most (all monitors)."
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Run the CiCdMonitor operator (kopf) against the cluster in KUBECONFIG or the pod's service account."""
    import asyncio
    import logging
    import sqlite3

    from kubernetes.config import ConfigException

    from cipulse.operator.run import OperatorOptions, run_operator
    from cipulse.store.base import StoreUnavailable

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    options = OperatorOptions(
        store_url=store,
        namespaces=list(namespace),
        selector=selector,
        peering=peering,
        priority=priority,
        metrics_host=metrics_host,
        metrics_port=metrics_port,
        liveness=liveness,
        max_concurrent_polls=max_concurrent_polls,
        outbox_path=outbox,
        outbox_capacity=outbox_capacity,
    )
    try:
        asyncio.run(run_operator(options))
    except (ValueError, OSError, sqlite3.Error, StoreUnavailable, ConfigException) as error:
        typer.secho(f"cipulse operator: {error}", fg="red", err=True)
        raise typer.Exit(2) from None
