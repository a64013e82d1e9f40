"""Build histories from every source, as chronological `(BuildEvent, failed)` sequences per project.

Sources: a TravisTorrent-style CSV file or a directory of them (one project per file), or a cipulse Store
(`training_rows()`), optionally enriched with change statistics from a local git clone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cipulse.predict import features
from cipulse.predict.columns import read_history_csv
from cipulse.predict.events import BuildEvent
from cipulse.records import FAILED_CONCLUSIONS, SUCCESS
from cipulse.redact import redact_url
from cipulse.store.base import TrainingRow

Labelled = list[tuple[BuildEvent, bool]]


@dataclass(frozen=True, slots=True)
class Project:
    """One project's builds in time order and their feature rows (computed once, from earlier builds only)."""

    name: str
    builds: Labelled
    rows: list[features.Vector]
    final_history: features.History

    @property
    def labels(self) -> list[int]:
        return [int(failed) for _, failed in self.builds]


def project_from_builds(name: str, builds: Labelled) -> Project:
    history = features.History()
    rows = list(features.walk(builds, history))
    return Project(name, builds, rows, history)


def load_csv_projects(path: Path) -> list[Project]:
    """One project per CSV file (a directory: every *.csv, sorted by name)."""
    if path.is_dir():
        files = sorted(path.glob("*.csv"))
        if not files:
            raise FileNotFoundError(f"no *.csv build histories in {path}")
    elif path.is_file():
        files = [path]
    else:
        raise FileNotFoundError(f"{path} does not exist")
    return [project_from_builds(file.stem, read_history_csv(file)) for file in files]


def outcome(row: TrainingRow) -> bool | None:
    """Failed, passed, or None for runs that say nothing about the code (cancelled, skipped, running)."""
    if row.status != "completed" or row.conclusion is None:
        return None
    if row.conclusion in FAILED_CONCLUSIONS:
        return True
    if row.conclusion == SUCCESS:
        return False
    return None


def event_from_training_row(
    row: TrainingRow, enrich: Callable[[str], BuildEvent | None] | None = None
) -> BuildEvent:
    """A stored run as a build event; `enrich(sha)` may add change statistics from a git clone."""
    base = enrich(row.head_sha) if enrich is not None else None
    return BuildEvent(
        started_at=row.created_at,
        branch=row.branch,
        author=row.actor,
        is_pr=row.event.startswith("pull_request"),
        change_id=row.head_sha,
        state_id=base.state_id if base else None,
        message=base.message if base else None,
        change=base.change if base else BuildEvent(started_at=row.created_at).change,
    )


def builds_from_training_rows(
    rows: Iterable[TrainingRow], enrich: Callable[[str], BuildEvent | None] | None = None
) -> dict[str, Labelled]:
    """Labelled builds per repository, keeping the store's (created_at) order; unlabelled runs dropped."""
    result: dict[str, Labelled] = {}
    for row in rows:
        failed = outcome(row)
        if failed is None:
            continue
        result.setdefault(row.repository, []).append((event_from_training_row(row, enrich), failed))
    return result


def load_store_projects(
    url: str, repository: str | None = None, git_dir: Path | None = None, min_builds: int = 50
) -> list[Project]:
    """Projects from a cipulse Store; `git_dir` (a clone of the repository) adds churn and file kinds."""
    from cipulse.store import open_store

    store = open_store(url)
    try:
        rows = store.training_rows(repository)
    finally:
        store.close()
    enrich = _git_enricher(git_dir) if git_dir is not None else None
    projects = [
        project_from_builds(name, builds)
        for name, builds in sorted(builds_from_training_rows(rows, enrich).items())
        if len(builds) >= min_builds
    ]
    if not projects:
        raise ValueError(
            f"the store at {redact_url(url)} has no repository with at least {min_builds} finished runs"
        )
    return projects


def _git_enricher(git_dir: Path) -> Callable[[str], BuildEvent | None]:
    from cipulse.predict.gitmeta import GitError, event_from_git

    cache: dict[str, BuildEvent | None] = {}

    def enrich(sha: str) -> BuildEvent | None:
        if sha not in cache:
            try:
                cache[sha] = event_from_git(git_dir, revision=sha)
            except GitError:
                cache[sha] = None
        return cache[sha]

    return enrich


def chronological_folds(size: int, folds: int = 10) -> list[range]:
    """`folds` contiguous, equal (±1) slices of 0..size-1, like numpy.array_split."""
    base, extra = divmod(size, folds)
    result, start = [], 0
    for index in range(folds):
        end = start + base + (1 if index < extra else 0)
        result.append(range(start, end))
        start = end
    return result


def start_times(project: Project) -> list[float]:
    """Build start times (epoch seconds), for weighting training rows by age."""
    return [event.started_at.timestamp() for event, _ in project.builds]


def as_matrix(rows: Sequence[features.Vector]) -> list[list[float]]:
    """Feature rows with unknown values as NaN (what LightGBM and scikit-learn expect)."""
    nan = float("nan")
    return [[nan if value is None else value for value in row] for row in rows]
