"""Typer commands `train`, `evaluate` and `predict`; only typer at import time (cli.py imports this)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import typer

_CSV = typer.Option(
    None, "--csv", "--data", help="A TravisTorrent-style CSV, or a directory of them (one per project)."
)
_STORE = typer.Option(None, "--store", help="A cipulse store URL (sqlite:///path.db, http(s)://...).")
_REPOSITORY = typer.Option(None, "--repository", help="Only this repository of the store (owner/name).")
_GIT_DIR = typer.Option(
    None, "--git-dir", help="A clone of the repository: adds churn and file kinds to stored runs."
)
_RECALL = typer.Option(
    0.9, "--target-recall", min=0.01, max=1.0, help="Share of failing builds the gate must flag."
)


def train(
    csv: Path | None = _CSV,
    store: str | None = _STORE,
    repository: str | None = _REPOSITORY,
    git_dir: Path | None = _GIT_DIR,
    project: list[str] = typer.Option([], "--project", help="Train only on these projects (repeatable)."),
    out: Path = typer.Option(Path("cipulse-model.json"), "--out", help="Where to write the model artifact."),
    target_recall: float = _RECALL,
    scope: str = typer.Option(
        "global",
        "--scope",
        help="global: one model, calibrated per project; project: one model per project (OUT-NAME.json).",
    ),
) -> None:
    """Train the failure predictor (LightGBM, calibrated) and write versioned, hashed model files.

    One global model with a calibration and threshold per project is the default: it kept more failing
    builds at 30% skipped on the development protocol with F1(fail) goals met (docs/prediction.md);
    `--scope project` trains one model per project.
    """
    from cipulse.predict.commands import load_projects
    from cipulse.predict.progress import fit_progress
    from cipulse.predict.trainjob import fits_needed, train_artifact
    from cipulse.store.base import StoreUnavailable

    try:
        projects = load_projects(csv, store, repository, git_dir)
    except (ValueError, FileNotFoundError, StoreUnavailable) as error:
        typer.echo(f"cipulse train: {error}", err=True)
        raise typer.Exit(2) from None
    if project:
        unknown = sorted(set(project) - {p.name for p in projects})
        if unknown:
            typer.echo(f"cipulse train: unknown project(s) {', '.join(unknown)}", err=True)
            raise typer.Exit(2)
        projects = [p for p in projects if p.name in project]
    if scope not in ("project", "global"):
        typer.echo("cipulse train: --scope must be project or global", err=True)
        raise typer.Exit(2)
    if scope == "global" or len(projects) == 1:
        jobs = [(projects, out)]
    else:
        jobs = [([p], out.with_name(f"{out.stem}-{p.name.replace('/', '_')}{out.suffix}")) for p in projects]
    for group, path in jobs:
        builds = sum(len(p.builds) for p in group)
        with fit_progress(f"training on {builds:,} builds", fits_needed()) as advance:
            payload = train_artifact(group, path, target_recall=target_recall, on_fit=advance)
        thresholds = payload["thresholds"]
        typer.echo(
            f"wrote {path} (model {payload['model_version']}, sha256 {payload['sha256']}); "
            f"decision threshold {thresholds['decision']:.3f} for {target_recall:.0%} failure recall "
            "on held-out training blocks"
        )


def evaluate(
    csv: Path | None = _CSV,
    store: str | None = _STORE,
    repository: str | None = _REPOSITORY,
    git_dir: Path | None = _GIT_DIR,
    out: Path | None = typer.Option(None, "--out", help="Write the Markdown results here."),
    plots: Path | None = typer.Option(None, "--plots", help="Write PNG charts into this directory."),
    target_recall: float = _RECALL,
    forest: bool = typer.Option(
        True, "--forest/--no-forest", help="Also evaluate the RandomForest baseline."
    ),
    development: bool = typer.Option(
        False,
        "--development",
        help="Run the protocol on the first half of each project only (for choosing ideas and settings).",
    ),
) -> None:
    """Evaluate chronologically (10 folds; train on 1..k-1, test on k for k=6..10) against baselines.

    `--development` uses only data that precedes every test fold of the full protocol, so changes can be
    judged there without looking at the numbers that get published.
    """
    from cipulse.predict.commands import run_evaluate
    from cipulse.redact import redact_url
    from cipulse.store.base import StoreUnavailable

    arguments = [redact_url(argument) for argument in sys.argv[2:]]
    command = "cipulse evaluate " + shlex.join(arguments) if arguments else "cipulse evaluate"
    try:
        markdown = run_evaluate(
            csv, store, repository, git_dir, out, plots, target_recall, forest, command, development
        )
    except (ValueError, FileNotFoundError, StoreUnavailable) as error:
        typer.echo(f"cipulse evaluate: {error}", err=True)
        raise typer.Exit(2) from None
    if out is None:
        typer.echo(markdown)
    else:
        typer.echo(f"wrote {out}")


def predict(
    model: Path = typer.Option(
        Path("cipulse-model.json"), "--model", help="The model file from `cipulse train`."
    ),
    repo: Path = typer.Option(Path("."), "--repo", help="The git checkout to read the commit from."),
    revision: str = typer.Option("HEAD", "--revision", help="The commit about to be built."),
    base: str | None = typer.Option(
        None, "--base", help="Diff against this revision (default: first parent)."
    ),
    project: str | None = typer.Option(
        None, "--project", help="Project name in the model (default: the only one)."
    ),
    branch: str | None = typer.Option(
        None, "--branch", help="Branch (default: GITHUB_HEAD_REF/REF_NAME, git)."
    ),
    author: str | None = typer.Option(
        None, "--author", help="Author (default: GITHUB_ACTOR, commit author)."
    ),
    event: str | None = typer.Option(
        None, "--event", help="push or pull_request (default: GITHUB_EVENT_NAME)."
    ),
    store: str | None = typer.Option(None, "--store", help="Read the build history from this store instead."),
    no_git: bool = typer.Option(False, "--no-git", help="Do not read git; use only the flags."),
    threshold: float | None = typer.Option(
        None, "--threshold", help="Override the model's decision threshold."
    ),
    model_sha256: str | None = typer.Option(None, "--model-sha256", help="Refuse any model but this one."),
    advisory: bool = typer.Option(False, "--advisory", help="Report only: always exit 0."),
    fail_closed: bool = typer.Option(False, "--fail-closed", help="Exit 2 on internal errors instead of 0."),
    as_json: bool = typer.Option(False, "--json", help="Print the verdict as JSON."),
) -> None:
    """Predict whether this commit's build will fail.

    Exit 0: go on; 1: likely failure; 2: internal error with --fail-closed (default: fail open, exit 0).
    """
    from cipulse.predict.gate import GateOptions, run

    code = run(
        GateOptions(
            model=model,
            repo=repo,
            revision=revision,
            base=base,
            project=project,
            branch=branch,
            author=author,
            event=event,
            store=store,
            use_git=not no_git,
            threshold=threshold,
            model_sha256=model_sha256,
            advisory=advisory,
            fail_closed=fail_closed,
            as_json=as_json,
        )
    )
    raise typer.Exit(code)


def synthetic_history(
    out: Path = typer.Option(Path("build_history.csv"), "--out", help="Where to write the CSV."),
    builds: int = typer.Option(2000, "--builds", min=10, help="How many builds."),
    seed: int = typer.Option(0, "--seed", help="Same seed, same history."),
) -> None:
    """Write a seeded SYNTHETIC build history (TravisTorrent CSV layout) for demos, never as evidence."""
    from cipulse.predict.synthetic import write_csv

    typer.echo(f"wrote {write_csv(out, builds, seed)} (synthetic, for demos only)")
