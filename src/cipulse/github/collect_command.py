"""`cipulse collect OWNER/REPO`: one sync of one repository into a store, with a progress bar.

The token comes only from the GITHUB_TOKEN environment variable: a command-line option would show up
in shell history and process listings. It is never printed; errors print GitHubError messages, which are
built without it. A store that cannot be opened or reached is one line and exit code 2, with any
`user:password@` in a URL masked.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime

import typer

DEFAULT_STORE = "sqlite:///cipulse.db"
_URL_CREDENTIALS = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)[^/\s'\"]*@")


def without_credentials(text: str) -> str:
    """Mask `user:password@` in every URL of a message (store errors quote the URL they were given)."""
    return _URL_CREDENTIALS.sub(r"\1***@", text)


def _parse_since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise typer.BadParameter(
            f"expected a date like 2024-05-01 or 2024-05-01T12:00:00Z, not {value!r}"
        ) from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def collect(
    repository: str = typer.Argument(..., help="OWNER/REPO to collect."),
    since: str | None = typer.Option(None, help="Collect runs created since this date (first sync only)."),
    api_url: str = typer.Option(
        "https://api.github.com", "--api-url", help="REST base URL; GitHub Enterprise: https://HOST/api/v3."
    ),
    store: str = typer.Option(
        DEFAULT_STORE, envvar="CIPULSE_STORE", help="sqlite:///path.db or http(s)://search-host:port."
    ),
    mode: str = typer.Option("graphql+rest", help="graphql | graphql+rest | webhooks."),
    monitor: str | None = typer.Option(None, help="Watermark name (default: cli:OWNER/REPO)."),
    backfill_days: int = typer.Option(30, help="How far back the first sync goes without --since."),
) -> None:
    """Collect workflow runs, jobs (every attempt) and steps of one repository."""
    import asyncio

    from rich.console import Console
    from rich.markup import escape
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from cipulse.github.errors import GitHubError
    from cipulse.github.sync import MODES, SyncTarget, sync_once
    from cipulse.store import StoreUnavailable, open_store
    from cipulse.store.search_client import SearchRequestError

    console = Console(stderr=True)
    if mode not in MODES:
        raise typer.BadParameter(f"mode must be one of {', '.join(MODES)}", param_hint="--mode")
    try:
        target = SyncTarget(
            repository=repository,
            api_url=api_url,
            token=os.environ.get("GITHUB_TOKEN") or None,
            backfill_days=backfill_days,
            mode=mode,
            since=_parse_since(since),
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc

    def fail(message: str) -> typer.Exit:
        console.print(f"[red]error:[/red] {escape(without_credentials(message))}")
        return typer.Exit(2)

    try:
        opened = open_store(store)
    except ValueError as exc:
        raise fail(f"bad --store: {exc}") from None
    except (StoreUnavailable, SearchRequestError) as exc:
        raise fail(f"cannot open the store {store}: {exc}") from None
    try:
        with Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            TextColumn("{task.fields[runs]} runs, {task.fields[jobs]} jobs"),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            task = progress.add_task(f"collecting {repository}", total=None, runs=0, jobs=0)
            result = asyncio.run(
                sync_once(
                    target,
                    opened,
                    monitor=monitor or f"cli:{repository}",
                    progress=lambda runs, jobs: progress.update(task, runs=runs, jobs=jobs),
                )
            )
    except GitHubError as exc:
        raise fail(str(exc)) from None
    except (StoreUnavailable, SearchRequestError) as exc:
        raise fail(f"the store {store} failed: {exc}") from None
    finally:
        opened.close()
    typer.echo(
        f"{repository}: {result.runs} runs, {result.jobs} jobs written; watermark "
        f"{result.watermark.isoformat() if result.watermark else '-'}; spent {result.graphql_points} GraphQL "
        f"points and {result.rest_requests} REST requests ({result.rest_not_modified} answered 304)"
    )
    if result.skipped:
        console.print(
            f"[yellow]warning:[/yellow] {result.skipped} runs skipped: GitHub's answer for them did not"
            " parse (see the log); the watermark stays at the oldest, so the next sync tries them again"
        )
