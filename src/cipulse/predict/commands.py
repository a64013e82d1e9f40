"""Implementations of `cipulse train` and `cipulse evaluate` (heavy imports live here, not in cli.py)."""

from __future__ import annotations

import sys
from pathlib import Path

from cipulse.predict.dataset import Project, load_csv_projects, load_store_projects


def load_projects(
    csv: Path | None, store: str | None, repository: str | None, git_dir: Path | None
) -> list[Project]:
    if (csv is None) == (store is None):
        raise ValueError("give exactly one data source: --csv PATH (file or directory) or --store URL")
    if csv is not None:
        return load_csv_projects(csv)
    assert store is not None
    return load_store_projects(store, repository, git_dir)


def run_evaluate(
    data: Path | None,
    store: str | None,
    repository: str | None,
    git_dir: Path | None,
    out: Path | None,
    plots: Path | None,
    target_recall: float,
    with_forest: bool,
    command: str,
    development: bool = False,
) -> str:
    """Run the protocol (on the first halves with `development`); write the Markdown (and PNGs)."""
    from cipulse.predict.evaluation import development_projects, evaluate, fit_count
    from cipulse.predict.progress import fit_progress
    from cipulse.predict.report import render
    from cipulse.redact import redact_url

    projects = load_projects(data, store, repository, git_dir)
    if development:
        projects = development_projects(projects)
    with_global = len(projects) > 1
    total = fit_count(projects, with_global, with_forest)
    with fit_progress(f"evaluating {len(projects)} project(s)", total) as advance:
        evaluation = evaluate(
            projects,
            target_recall=target_recall,
            with_global=with_global,
            with_forest=with_forest,
            development=development,
            on_fit=advance,
        )
    source = f"the cipulse store at `{redact_url(store)}`" if store else f"`{data}`"
    markdown = render(evaluation, command, source)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(markdown, encoding="utf-8")
    if plots is not None:
        from cipulse.predict.plots import write_plots

        for path in write_plots(evaluation, plots):
            print(f"wrote {path}", file=sys.stderr)
    return markdown
