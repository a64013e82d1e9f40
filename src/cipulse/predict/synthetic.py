"""A seeded synthetic build history in the TravisTorrent CSV layout, for demos and tests only.

It is NOT evidence of model quality: its failure mechanism (a hidden "main is broken" state that big,
test-less changes tend to start and later builds tend to fix) was written by us, so a model that learns it
proves nothing about real projects. Results in docs/prediction-results.md come from real histories only.
"""

from __future__ import annotations

import csv
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

COLUMNS = (
    "build_Failed",
    "gh_is_pr",
    "git_prev_commit_resolution_status",
    "gh_team_size",
    "gh_num_commit_comments",
    "git_diff_src_churn",
    "git_diff_test_churn",
    "gh_diff_files_added",
    "gh_diff_files_deleted",
    "gh_diff_files_modified",
    "gh_diff_tests_added",
    "gh_diff_tests_deleted",
    "gh_diff_src_files",
    "gh_diff_doc_files",
    "gh_diff_other_files",
    "gh_sloc",
    "gh_test_lines_per_kloc",
    "gh_test_cases_per_kloc",
    "gh_asserts_cases_per_kloc",
    "tr_build_id",
    "gh_build_started_at",
)


def generate_rows(builds: int = 2000, seed: int = 0) -> list[dict[str, str]]:
    """`builds` rows in time order; the same seed always gives the same rows."""
    rng = random.Random(seed)
    when = datetime(2024, 1, 1, 8, 0, tzinfo=UTC)
    broken = False
    sloc = 40_000
    rows = []
    for index in range(builds):
        when += timedelta(minutes=rng.expovariate(1 / 90))
        src_churn = int(rng.lognormvariate(3.0, 1.4))
        test_churn = int(rng.lognormvariate(2.0, 1.5)) if rng.random() < 0.5 else 0
        src_files = max(1, int(src_churn / rng.uniform(15, 60)))
        risk = 0.03 + 0.12 * min(src_churn / 400, 1.0) + (0.05 if test_churn == 0 else 0.0)
        fix_chance = 0.35 + (0.25 if test_churn > 0 else 0.0)
        broken = rng.random() > fix_chance if broken else rng.random() < risk
        flaky = rng.random() < 0.04
        failed = broken or flaky
        sloc += src_churn // 3 - src_churn // 5
        rows.append(
            {
                "build_Failed": str(int(failed)),
                "gh_is_pr": str(int(rng.random() < 0.3)),
                "git_prev_commit_resolution_status": "1",
                "gh_team_size": str(12 + index // 400),
                "gh_num_commit_comments": "0",
                "git_diff_src_churn": str(src_churn),
                "git_diff_test_churn": str(test_churn),
                "gh_diff_files_added": str(int(rng.random() < 0.2)),
                "gh_diff_files_deleted": str(int(rng.random() < 0.05)),
                "gh_diff_files_modified": str(src_files),
                "gh_diff_tests_added": str(int(test_churn > 40)),
                "gh_diff_tests_deleted": "0",
                "gh_diff_src_files": str(src_files),
                "gh_diff_doc_files": str(int(rng.random() < 0.1)),
                "gh_diff_other_files": str(int(rng.random() < 0.1)),
                "gh_sloc": str(sloc),
                "gh_test_lines_per_kloc": f"{700 + rng.uniform(-5, 5):.3f}",
                "gh_test_cases_per_kloc": f"{60 + rng.uniform(-1, 1):.3f}",
                "gh_asserts_cases_per_kloc": f"{150 + rng.uniform(-2, 2):.3f}",
                "tr_build_id": str(100_000 + index),
                "gh_build_started_at": when.strftime("%Y-%m-%d %H:%M"),
            }
        )
    return rows


def write_csv(path: Path, builds: int = 2000, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(generate_rows(builds, seed))
    return path
