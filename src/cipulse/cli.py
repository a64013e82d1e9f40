"""The `cipulse` command line.

Each capability registers its commands here; heavy imports stay inside the command functions so that
fast paths (`cipulse predict`, `cipulse --version`) do not pay for libraries they never use.
"""

from __future__ import annotations

import typer

from cipulse import __version__

app = typer.Typer(
    name="cipulse",
    help="AIOps for GitHub Actions: collect runs, jobs and steps; explain slow, flaky and failing pipelines.",
    no_args_is_help=True,
    add_completion=False,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"cipulse {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """cipulse command line."""


from cipulse.standalone.commands import operator_app, up  # noqa: E402  (light: typer only)

app.command("up")(up)
app.add_typer(operator_app, name="operator")

from cipulse.github.collect_command import collect  # noqa: E402  (light: typer only)

app.command("collect")(collect)

from cipulse.predict.cli_commands import (  # noqa: E402  (light: typer only)
    evaluate,
    predict,
    synthetic_history,
    train,
)

app.command("train")(train)
app.command("evaluate")(evaluate)
app.command("predict")(predict)
app.command("synthetic-history")(synthetic_history)

from cipulse.store.retention_command import retention  # noqa: E402  (light: typer only)

app.command("retention")(retention)


@app.command("emulator")
def emulator(
    port: int = typer.Option(8765, "--port", help="Port on 127.0.0.1 (0 picks a free one)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the generated CI history."),
    jobs_per_repo: int = typer.Option(1000, "--jobs-per-repo", help="Size of each repository's history."),
    live: bool = typer.Option(False, "--live", help="Follow real time: runs progress and new ones start."),
) -> None:
    """Serve the GitHub emulator (GraphQL, REST, rate limits) over a generated CI history."""
    from cipulse.emulator.server import serve_forever

    serve_forever(port=port, seed=seed, jobs_per_repo=jobs_per_repo, live=live, print_line=typer.echo)
