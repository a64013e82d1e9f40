"""Flaky jobs: the same job on the same commit both passed and failed.

Two kinds of evidence, both on one (repository, workflow, job name, head_sha):

- ``rerun_recovered``: an attempt failed and a later attempt of the same run succeeded (the classic
  "re-run failed jobs" fix);
- otherwise ``mixed_on_commit``: different runs of the same commit disagree (e.g. push and pull_request).

Only verdicts count (success / failure incl. timed_out): a cancelled or skipped attempt says nothing about
flakiness, and a failure never followed by success on that commit is a plain failure, not a flake.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from cipulse.metrics.outcome import classify
from cipulse.records import Job

Evidence = Literal["rerun_recovered", "mixed_on_commit"]


@dataclass(frozen=True, slots=True)
class FlakyCommit:
    repository: str
    workflow: str
    job: str
    head_sha: str
    successes: int
    failures: int
    evidence: Evidence


@dataclass(frozen=True, slots=True)
class FlakyJobSummary:
    """Per job: on how many of the commits it reached a verdict on was it flaky."""

    repository: str
    workflow: str
    job: str
    commits: int
    flaky_commits: int
    rerun_recoveries: int

    @property
    def flake_rate(self) -> float:
        return self.flaky_commits / self.commits if self.commits else 0.0


def flaky_commits(jobs: Iterable[Job]) -> list[FlakyCommit]:
    """Every (job, commit) with both a success and a failure, sorted by repository, workflow, job, sha."""
    verdicts: dict[tuple[str, str, str, str], list[tuple[int, int, str]]] = defaultdict(list)
    for job in jobs:
        outcome = classify(job.status, job.conclusion)
        if outcome in ("success", "failure"):
            key = (job.repository, job.workflow_name, job.name, job.head_sha)
            verdicts[key].append((job.run_id, job.run_attempt, outcome))
    result = []
    for key in sorted(verdicts):
        attempts = verdicts[key]
        successes = sum(1 for _, _, o in attempts if o == "success")
        failures = len(attempts) - successes
        if successes and failures:
            evidence: Evidence = "rerun_recovered" if _recovered_on_rerun(attempts) else "mixed_on_commit"
            result.append(FlakyCommit(*key, successes=successes, failures=failures, evidence=evidence))
    return result


def _recovered_on_rerun(attempts: list[tuple[int, int, str]]) -> bool:
    by_run: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for run_id, attempt, outcome in attempts:
        by_run[run_id].append((attempt, outcome))
    for tries in by_run.values():
        failed_at = [a for a, o in tries if o == "failure"]
        passed_at = [a for a, o in tries if o == "success"]
        if failed_at and passed_at and min(failed_at) < max(passed_at):
            return True
    return False


def flaky_jobs(jobs: Iterable[Job]) -> list[FlakyJobSummary]:
    """Flakiness per job, most flaky first (flaky commits, then rate)."""
    materialised = list(jobs)
    commits: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for job in materialised:
        if classify(job.status, job.conclusion) in ("success", "failure"):
            commits[(job.repository, job.workflow_name, job.name)].add(job.head_sha)
    flaky: dict[tuple[str, str, str], list[FlakyCommit]] = defaultdict(list)
    for commit in flaky_commits(materialised):
        flaky[(commit.repository, commit.workflow, commit.job)].append(commit)
    summaries = [
        FlakyJobSummary(
            repository=key[0],
            workflow=key[1],
            job=key[2],
            commits=len(commits[key]),
            flaky_commits=len(found),
            rerun_recoveries=sum(1 for c in found if c.evidence == "rerun_recovered"),
        )
        for key, found in flaky.items()
    ]
    return sorted(summaries, key=lambda s: (-s.flaky_commits, -s.flake_rate, s.repository, s.workflow, s.job))
