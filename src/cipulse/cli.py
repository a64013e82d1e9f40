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
