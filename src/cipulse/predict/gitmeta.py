"""Commit metadata from the local git checkout: the gate's view of the build about to run.

The same function enriches stored runs for training (when their commit exists locally), so a feature
means the same thing at training time and in the gate. Only the standard library and the git binary.
"""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cipulse.predict import filekinds
from cipulse.predict.events import BuildEvent, ChangeStats

_FULL_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


class GitError(RuntimeError):
    """git is missing, the directory is not a repository, or the revision does not exist."""


@dataclass(frozen=True, slots=True)
class Commit:
    sha: str
    tree: str
    author: str
    message: str
    parents: tuple[str, ...]


def _git(repo: Path, *args: str, stdin: str | None = None, what: str | None = None) -> str:
    """stdout of one git command in `repo`; a failure is a `GitError` named by `what` (or the command)."""
    described = what or f"git {' '.join(args)}"
    try:
        done = subprocess.run(
            ["git", "-C", str(repo), *args],
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
    except FileNotFoundError:
        raise GitError("git is not installed or not on PATH") from None
    except subprocess.TimeoutExpired:
        raise GitError(f"{described} timed out in {repo}") from None
    if done.returncode != 0:
        raise GitError(f"{described} failed in {repo}: {done.stderr.strip()}")
    return done.stdout


def read_commit(repo: Path, revision: str = "HEAD") -> Commit:
    """Sha, tree, author, message and parents of one commit."""
    raw = _git(repo, "show", "-s", "--format=%H%x00%T%x00%an%x00%P%x00%B", revision, "--")
    sha, tree, author, parents, message = raw.split("\x00", 4)
    return Commit(sha, tree, author, message.strip(), tuple(parents.split()))


def trees_of(repo: Path, shas: Iterable[str]) -> dict[str, str]:
    """The tree of each commit in `shas` that `repo` has, in one git process (commits it lacks are left
    out, as `read_commit` failing on them leaves a training build without a code state)."""
    wanted = sorted({sha for sha in shas if _FULL_SHA.fullmatch(sha)})
    if not wanted:
        return {}
    listing = _git(
        repo,
        "log",
        "--no-walk=unsorted",
        "--ignore-missing",
        "--stdin",
        "--format=%H %T",
        stdin="\n".join(wanted) + "\n",
        what=f"git log of {len(wanted)} commits",
    )
    return dict(line.split(" ", 1) for line in listing.splitlines() if " " in line)


def change_stats(repo: Path, revision: str, base: str | None) -> ChangeStats:
    """Churn and touched file kinds of `base..revision` (base None: the root commit, all files added)."""
    command = ["diff", base, revision] if base else ["diff-tree", "--root", revision]
    options = ["-r", "--no-renames"]
    churn: dict[str, float] = {}
    for line in _git(repo, *command[:1], *options, "--numstat", *command[1:], "--").splitlines():
        added, deleted, path = [*line.split("\t", 2), "", "", ""][:3]
        if path:  # binary files report "-": no line churn
            churn[path] = (float(added) if added.isdigit() else 0.0) + (
                float(deleted) if deleted.isdigit() else 0.0
            )
    status: dict[str, str] = {}
    for line in _git(repo, *command[:1], *options, "--name-status", *command[1:], "--").splitlines():
        code, _, path = line.partition("\t")
        if path:
            status[path] = code[:1]
    kinds = {path: filekinds.classify_path(path) for path in status}
    counts = Counter(kinds.values())
    codes = Counter(status.values())

    def churn_of(kind: str) -> float:
        return sum(churn.get(path, 0.0) for path, found in kinds.items() if found == kind)

    def tests_with(code: str) -> float:
        return float(
            sum(1 for path, found in kinds.items() if found == filekinds.TEST and status[path] == code)
        )

    commits = float(_git(repo, "rev-list", "--count", f"{base}..{revision}").strip()) if base else 1.0
    return ChangeStats(
        src_churn=churn_of(filekinds.SOURCE),
        test_churn=churn_of(filekinds.TEST),
        files_added=float(codes["A"]),
        files_deleted=float(codes["D"]),
        files_modified=float(len(status) - codes["A"] - codes["D"]),
        src_files=float(counts[filekinds.SOURCE]),
        test_files=float(counts[filekinds.TEST]),
        doc_files=float(counts[filekinds.DOC]),
        ci_files=float(counts[filekinds.CI]),
        dependency_files=float(counts[filekinds.DEPENDENCY]),
        other_files=float(counts[filekinds.OTHER]),
        tests_added=tests_with("A"),
        tests_deleted=tests_with("D"),
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
