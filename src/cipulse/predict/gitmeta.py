"""Commit metadata from the local git checkout: the gate's view of the build about to run.

The same function enriches stored runs for training (when their commit exists locally), so a feature
means the same thing at training time and in the gate. Only the standard library and the git binary.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cipulse.predict import filekinds
from cipulse.predict.events import BuildEvent, ChangeStats


class GitError(RuntimeError):
    """git is missing, the directory is not a repository, or the revision does not exist."""


@dataclass(frozen=True, slots=True)
class Commit:
    sha: str
    tree: str
    author: str
    message: str
    parents: tuple[str, ...]


def _git(repo: Path, *args: str) -> str:
    try:
        done = subprocess.run(
            ["git", "-C", str(repo), *args], capture_output=True, text=True, check=False, timeout=60
        )
    except FileNotFoundError:
        raise GitError("git is not installed or not on PATH") from None
    except subprocess.TimeoutExpired:
        raise GitError(f"git {' '.join(args)} timed out in {repo}") from None
    if done.returncode != 0:
        raise GitError(f"git {' '.join(args)} failed in {repo}: {done.stderr.strip()}")
    return done.stdout


def read_commit(repo: Path, revision: str = "HEAD") -> Commit:
    """Sha, tree, author, message and parents of one commit."""
    raw = _git(repo, "show", "-s", "--format=%H%x00%T%x00%an%x00%P%x00%B", revision, "--")
    sha, tree, author, parents, message = raw.split("\x00", 4)
    return Commit(sha, tree, author, message.strip(), tuple(parents.split()))


def change_stats(repo: Path, revision: str, base: str | None) -> ChangeStats:
    """Churn and touched file kinds of `base..revision` (base None: the root commit, all files added)."""
    rev_range = [base, revision] if base else ["--root", revision]
    diff = "diff-tree" if base is None else "diff"
    numstat = _git(repo, diff, "-r", "--no-renames", "--numstat", *rev_range, "--")
    name_status = _git(repo, diff, "-r", "--no-renames", "--name-status", *rev_range, "--")
    churn = {filekinds.SOURCE: 0.0, filekinds.TEST: 0.0}
    paths: list[str] = []
    for line in numstat.splitlines():
        parts = line.split("\t", 2)
        if len(parts) != 3:
            continue
        added, deleted, path = parts
        paths.append(path)
        kind = filekinds.classify_path(path)
        if kind in churn:
            churn[kind] += (float(added) if added.isdigit() else 0.0) + (float(deleted) if deleted.isdigit() else 0.0)
    statuses = [line.split("\t", 1)[0][:1] for line in name_status.splitlines() if "\t" in line]
    kinds = filekinds.count_kinds(paths)
    tests = [p for p in paths if filekinds.classify_path(p) == filekinds.TEST]
    test_status = {
        line.split("\t", 1)[1]: line[:1] for line in name_status.splitlines() if "\t" in line
    }
    commits = float(_git(repo, "rev-list", "--count", f"{base}..{revision}").strip()) if base else 1.0
    return ChangeStats(
        src_churn=churn[filekinds.SOURCE],
        test_churn=churn[filekinds.TEST],
        files_added=float(statuses.count("A")),
        files_deleted=float(statuses.count("D")),
        files_modified=float(len(statuses) - statuses.count("A") - statuses.count("D")),
        src_files=float(kinds[filekinds.SOURCE]),
        test_files=float(kinds[filekinds.TEST]),
        doc_files=float(kinds[filekinds.DOC]),
        ci_files=float(kinds[filekinds.CI]),
        dependency_files=float(kinds[filekinds.DEPENDENCY]),
        other_files=float(kinds[filekinds.OTHER]),
        tests_added=float(sum(1 for p in tests if test_status.get(p) == "A")),
        tests_deleted=float(sum(1 for p in tests if test_status.get(p) == "D")),
        commits=commits,
    )


def event_from_git(
    repo: Path,
    *,
    revision: str = "HEAD",
    base: str | None = None,
    started_at: datetime | None = None,
    branch: str | None = None,
    author: str | None = None,
    is_pr: bool | None = None,
) -> BuildEvent:
    """The build event of `revision`; `base` defaults to its first parent. Flags override git's answers."""
    commit = read_commit(repo, revision)
    diff_base = base if base is not None else (commit.parents[0] if commit.parents else None)
    return BuildEvent(
        started_at=started_at or datetime.now(UTC),
        branch=branch,
        author=author or commit.author,
        is_pr=is_pr,
        change_id=commit.sha,
        state_id=commit.tree,
        message=commit.message,
        change=change_stats(repo, commit.sha, diff_base),
    )


def current_branch(repo: Path) -> str | None:
    """The checked-out branch, or None on a detached HEAD (CI checkouts often are)."""
    name = _git(repo, "rev-parse", "--abbrev-ref", "HEAD").strip()
    return None if name == "HEAD" else name
