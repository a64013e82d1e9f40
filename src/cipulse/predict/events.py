"""What the predictor knows about one build before its tests run.

Every source (TravisTorrent CSVs, the Store, the local git checkout) is mapped to `BuildEvent`, and
features are computed from `BuildEvent`s only: one definition for training and for the gate.
An event never carries its own outcome; outcomes are handed to the history separately, after the
event's features were computed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class ChangeStats:
    """Size and kind of the change under test; None means "this source does not know"."""

    src_churn: float | None = None
    test_churn: float | None = None
    files_added: float | None = None
    files_deleted: float | None = None
    files_modified: float | None = None
    src_files: float | None = None
    test_files: float | None = None
    doc_files: float | None = None
    ci_files: float | None = None
    dependency_files: float | None = None
    other_files: float | None = None
    tests_added: float | None = None
    tests_deleted: float | None = None
    commits: float | None = None


@dataclass(frozen=True, slots=True)
class ProjectContext:
    """Facts about the repository at this commit that some sources provide (TravisTorrent does)."""

    team_size: float | None = None
    sloc: float | None = None
    test_lines_per_kloc: float | None = None
    test_cases_per_kloc: float | None = None
    asserts_per_kloc: float | None = None
    previous_commit_resolution: float | None = None


@dataclass(frozen=True, slots=True)
class BuildEvent:
    """One build as seen before it runs.

    `change_id` identifies the change being built (head commit sha; for TravisTorrent a signature of the
    diff), so a rebuild of the same change is recognised. `state_id` identifies the code state (git tree;
    for TravisTorrent a fingerprint of the code metrics).
    """

    started_at: datetime
    branch: str | None = None
    author: str | None = None
    is_pr: bool | None = None
    change_id: str | None = None
    state_id: str | None = None
    message: str | None = None
    change: ChangeStats = field(default_factory=ChangeStats)
    context: ProjectContext = field(default_factory=ProjectContext)
