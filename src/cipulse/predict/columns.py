"""The documented mapping from TravisTorrent-style CSV columns to `BuildEvent`s.

| CSV column                          | BuildEvent field                                   |
|-------------------------------------|----------------------------------------------------|
| build_Failed (label)                | outcome (1 = failed); never a feature              |
| gh_build_started_at                 | started_at (UTC)                                   |
| gh_is_pr                            | is_pr                                              |
| git_diff_src_churn / _test_churn    | change.src_churn / change.test_churn               |
| gh_diff_files_added/deleted/modified| change.files_added / files_deleted / files_modified|
| gh_diff_src_files / doc / other     | change.src_files / doc_files / other_files         |
| gh_diff_tests_added / _deleted      | change.tests_added / tests_deleted                 |
| gh_team_size, gh_sloc               | context.team_size, context.sloc                    |
| gh_test_lines/cases, asserts per kloc | context.test_lines_per_kloc, ... asserts_per_kloc|
| git_prev_commit_resolution_status   | context.previous_commit_resolution                 |
| diff columns together               | change_id (a rebuild of the same change)           |
| sloc + test density columns         | state_id (the same code state built again)         |

Not used: `tr_build_id` (an identifier) and `gh_num_commit_comments` (TravisTorrent counted comments when
the data was collected, possibly after the build: it could leak the outcome). Branch and author are not in
these CSVs, so branch features cover the whole project and author features stay unknown.
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

from cipulse.predict.events import BuildEvent, ChangeStats, ProjectContext

LABEL = "build_Failed"
STARTED_AT = "gh_build_started_at"
REQUIRED = (LABEL, STARTED_AT, "gh_is_pr", "git_diff_src_churn", "git_diff_test_churn")

_CHANGE = {
    "src_churn": "git_diff_src_churn",
    "test_churn": "git_diff_test_churn",
    "files_added": "gh_diff_files_added",
    "files_deleted": "gh_diff_files_deleted",
    "files_modified": "gh_diff_files_modified",
    "src_files": "gh_diff_src_files",
    "doc_files": "gh_diff_doc_files",
    "other_files": "gh_diff_other_files",
    "tests_added": "gh_diff_tests_added",
    "tests_deleted": "gh_diff_tests_deleted",
}
_CONTEXT = {
    "team_size": "gh_team_size",
    "sloc": "gh_sloc",
    "test_lines_per_kloc": "gh_test_lines_per_kloc",
    "test_cases_per_kloc": "gh_test_cases_per_kloc",
    "asserts_per_kloc": "gh_asserts_cases_per_kloc",
    "previous_commit_resolution": "git_prev_commit_resolution_status",
}
_STATE = ("gh_sloc", "gh_test_lines_per_kloc", "gh_test_cases_per_kloc", "gh_asserts_cases_per_kloc")


class CsvFormatError(ValueError):
    """The CSV is not a build history this mapping understands; the message says which row and column."""


def _number(row: dict[str, str], column: str, where: str) -> float | None:
    raw = row.get(column)
    if raw is None or raw.strip() in ("", "NA", "nan"):
        return None
    try:
        return float(raw)
    except ValueError:
        raise CsvFormatError(f"{where}: column {column!r} is not a number: {raw!r}") from None


def _time(raw: str, where: str) -> datetime:
    for pattern in ("%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S"):
        try:
            return datetime.strptime(raw.strip(), pattern).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise CsvFormatError(f"{where}: {STARTED_AT} is not a timestamp: {raw!r}")


def _label(raw: str | None, where: str) -> bool:
    if raw is None or raw.strip() not in ("0", "1"):
        raise CsvFormatError(f"{where}: {LABEL} must be 0 or 1, got {raw!r}")
    return raw.strip() == "1"


def _fingerprint(row: dict[str, str], columns: tuple[str, ...]) -> str | None:
    values = [row.get(column, "").strip() for column in columns]
    if not any(values):
        return None
    return "|".join(f"{float(value):.4f}" if value else "" for value in values)


def event_from_row(row: dict[str, str], where: str = "row") -> tuple[BuildEvent, bool]:
    """One CSV row as a build event and its outcome."""
    change = ChangeStats(**{name: _number(row, column, where) for name, column in _CHANGE.items()})
    context = ProjectContext(**{name: _number(row, column, where) for name, column in _CONTEXT.items()})
    is_pr = _number(row, "gh_is_pr", where)
    event = BuildEvent(
        started_at=_time(row[STARTED_AT], where),
        is_pr=None if is_pr is None else bool(is_pr),
        change_id=_fingerprint(row, tuple(_CHANGE.values())),
        state_id=_fingerprint(row, _STATE),
        change=change,
        context=context,
    )
    return event, _label(row.get(LABEL), where)


def read_history_csv(path: Path) -> list[tuple[BuildEvent, bool]]:
    """All builds of one project, in file order (the data is chronological; order is checked)."""
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [column for column in REQUIRED if column not in (reader.fieldnames or ())]
        if missing:
            raise CsvFormatError(f"{path}: missing columns {', '.join(missing)}")
        rows = [
            event_from_row(row, f"{path.name} line {number}") for number, row in enumerate(reader, start=2)
        ]
    if not rows:
        raise CsvFormatError(f"{path}: no builds")
    return rows
