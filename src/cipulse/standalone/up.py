"""`cipulse up`: poll every monitor on its interval, store into SQLite, print what was found.

With no monitors file and no GITHUB_TOKEN it starts the built-in GitHub emulator and watches its
repositories, so a fresh clone shows real collected data in well under a minute.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from rich.console import Console
from rich.panel import Panel
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

from cipulse.operator.engine import MonitorEngine
from cipulse.operator.monitor_store import default_outbox_path, open_monitor_store, release_freed_memory
from cipulse.operator.notify import Notifier
from cipulse.operator.outbox import Outbox
from cipulse.operator.report import PollReport
from cipulse.operator.spec import MonitorSpec, SecretKeyRef
from cipulse.operator.telemetry import Telemetry, http_app, serve
from cipulse.standalone.config import MonitorEntry, load_monitors, resolve_secret, resolve_token
from cipulse.standalone.table import summary_table

EMULATOR_POLL = "30s"


def default_store_url() -> str:
    """./.cipulse/cipulse.db inside a checkout (next to pyproject.toml), else ~/.local/share/cipulse."""
    here = Path.cwd()
    base = here / ".cipulse" if (here / "pyproject.toml").exists() or (here / ".cipulse").exists() else None
    if base is None:
        base = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local/share")) / "cipulse"
    return f"sqlite:///{base / 'cipulse.db'}"


@dataclass
class UpOptions:
    monitors_file: Path | None = None
    store_url: str | None = None
    rounds: int | None = None  # None: until interrupted
    metrics_port: int | None = 0  # None: no metrics server; 0: a free port
    seed: int = 0
    max_concurrent_polls: int = 8


@dataclass
class Running:
    entry: MonitorEntry
    engine: MonitorEngine
    notifier: Notifier
    token: str | None = field(repr=False)
    due: datetime
    last: PollReport | None = None


@contextlib.contextmanager
def _emulator(seed: int) -> Iterator[object]:
    from cipulse.emulator import Emulator

    with Emulator(seed=seed) as emulator:
        yield emulator


def emulator_monitors(emulator: object) -> list[tuple[MonitorEntry, str | None]]:
    api_url: str = emulator.api_url  # type: ignore[attr-defined]
    token: str = emulator.token  # type: ignore[attr-defined]
    entries: list[tuple[MonitorEntry, str | None]] = []
    for repository in emulator.repositories:  # type: ignore[attr-defined]
        spec = MonitorSpec(repository=repository, api_url=api_url, poll_interval=EMULATOR_POLL)
        name = repository.rsplit("/", 1)[-1].lower()
        entries.append((MonitorEntry(name=name, namespace="emulator", spec=spec), token))
    return entries


def _sqlite_path(url: str) -> Path | None:
    return Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite:///") else None


async def _poll(item: Running, telemetry: Telemetry, console: Console, slots: asyncio.Semaphore) -> None:
    started = asyncio.get_running_loop().time()
    try:
        async with slots:
            report = await item.engine.poll(item.token)
    except Exception as error:  # one monitor's bug must not stop the others
        console.print(f"[red]{item.entry.key}: poll failed: {type(error).__name__}: {error}[/]")
        item.due = datetime.now(UTC) + timedelta(seconds=item.entry.spec.poll_seconds)
        return
    telemetry.observe(report, asyncio.get_running_loop().time() - started)
    item.last = report
    item.due = report.retry_at or report.at + timedelta(seconds=item.entry.spec.poll_seconds)
    sinks = item.entry.spec.sinks
    try:
        recorded = item.notifier.record(report, sinks)  # durable before it is printed or delivered
    except Exception:
        if report.transition is not None:
            item.engine.last_health = report.transition.previous  # detect it again next round
        raise
    if report.transition is not None:
        t = report.transition
        console.print(f"[bold]{t.monitor}[/]: health {t.previous} -> {t.current} ({'; '.join(t.reasons)})")
        if recorded is not None and recorded.refused:
            console.print(f"[red]{item.entry.key}: outbox full, transition not queued for its sinks[/]")
    state = await item.notifier.flush(sinks)
    for problem in state.problems:
        console.print(f"[yellow]{item.entry.key}: {problem}[/]")


async def _round(
    console: Console, running: list[Running], telemetry: Telemetry, first: bool, slots: asyncio.Semaphore
) -> None:
    """Poll every due monitor concurrently; the first round (backfill) shows live progress."""
    now = datetime.now(UTC)
    due = [item for item in running if item.due <= now]
    if first:
        columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
        with Progress(*columns, console=console, transient=True) as progress:
            for item in due:
                task = progress.add_task(f"{item.entry.key}: backfilling")

                def show(runs: int, jobs: int, task: TaskID = task, key: str = item.entry.key) -> None:
                    progress.update(task, description=f"{key}: {runs} runs, {jobs} jobs")

                item.engine.progress = show
            await asyncio.gather(*(_poll(item, telemetry, console, slots) for item in due))
        for item in due:
            item.engine.progress = None
        release_freed_memory()  # the backfill's parsed pages are stored; give their memory back
    else:
        await asyncio.gather(*(_poll(item, telemetry, console, slots) for item in due))
    reports = [item.last for item in running if item.last is not None]
    console.print(summary_table(reports, f"cipulse - {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC"))


async def run_up(options: UpOptions, console: Console | None = None) -> int:
    """Returns a process exit code: 0 when the last round of every monitor synced."""
    console = console or Console()
    store_url = options.store_url or os.environ.get("CIPULSE_STORE_URL") or default_store_url()
    sqlite_path = _sqlite_path(store_url)
    if sqlite_path is not None:
        sqlite_path.parent.mkdir(parents=True, exist_ok=True)

    with contextlib.ExitStack() as stack:
        lines: list[str] = []
        if options.monitors_file is not None:
            monitors = [(entry, resolve_token(entry.spec)) for entry in load_monitors(options.monitors_file)]
            lines.append(f"monitors  {options.monitors_file} ({len(monitors)})")
        elif os.environ.get("GITHUB_TOKEN"):
            console.print("[red]GITHUB_TOKEN is set but no monitors file was given: pass -f monitors.yaml[/]")
            return 2
        else:
            emulator = stack.enter_context(_emulator(options.seed))
            monitors = emulator_monitors(emulator)
            console.print(
                "[bold yellow]No GITHUB_TOKEN and no monitors file: watching the built-in GitHub emulator, "
                "not GitHub.[/] Set GITHUB_TOKEN and pass -f monitors.yaml to watch real repositories."
            )
            lines.append(f"emulator  {emulator.url} (GitHub API at {emulator.api_url})")  # type: ignore[attr-defined]

        store = open_monitor_store(store_url)
        stack.callback(store.close)
        outbox_path = default_outbox_path(store_url)
        outbox = Outbox(outbox_path)
        stack.callback(outbox.close)
        lines.insert(0, f"store     {store_url}")
        lines.insert(1, f"outbox    {outbox_path} (pending sink deliveries)")
        return await _serve(console, options, store, outbox, monitors, lines)
    return 0  # pragma: no cover - the with block always returns


async def _serve(
    console: Console,
    options: UpOptions,
    store: object,
    outbox: Outbox,
    monitors: list[tuple[MonitorEntry, str | None]],
    lines: list[str],
) -> int:
    telemetry = Telemetry()
    server = None
    if options.metrics_port is not None:
        server, port = await serve(http_app(telemetry, lambda: True), "127.0.0.1", options.metrics_port)
        lines.append(f"metrics   http://127.0.0.1:{port}/metrics")
    async with httpx.AsyncClient(timeout=30) as http:

        async def secret(ref: SecretKeyRef) -> str:
            return resolve_secret(ref)

        now = datetime.now(UTC)
        running = []
        for entry, token in monitors:
            notifier = Notifier(http, secret, outbox, entry.key)
            # The health last recorded survives restarts, so a transition is announced (and given an id) once.
            engine = MonitorEngine(entry.key, entry.spec, store, last_health=notifier.last_health)  # type: ignore[arg-type]
            running.append(Running(entry, engine, notifier, token, now))
        for item in running:
            spec = item.entry.spec
            lines.append(
                f"monitor   {item.entry.key}: {spec.repository} every {spec.poll_interval} via {spec.api_url}"
            )
        console.print(Panel("\n".join(lines), title="cipulse up", expand=False))
        telemetry.monitors.set(len(running))
        slots = asyncio.Semaphore(options.max_concurrent_polls)
        rounds = 0
        try:
            while options.rounds is None or rounds < options.rounds:
                await _round(console, running, telemetry, rounds == 0, slots)
                rounds += 1
                if options.rounds is not None and rounds >= options.rounds:
                    break
                next_due = min(item.due for item in running)
                await asyncio.sleep(max(0.0, (next_due - datetime.now(UTC)).total_seconds()))
        finally:
            if server is not None:
                await server.cleanup()
    failed = [item for item in running if item.last is None or not item.last.ok]
    return 1 if failed else 0
