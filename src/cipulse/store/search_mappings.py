"""Index layout of the search store: names, index templates and strict mappings.

- ``{prefix}-runs-YYYY.MM``: run attempts, by the month of ``created_at``;
- ``{prefix}-jobs-YYYY.MM``: job attempts (steps inside), by the month of ``window_at``; jobs with no
  timestamp at all live in ``{prefix}-jobs-undated`` (they are in no window and never expire);
- ``{prefix}-watermarks``: one document per monitor.

Monthly indices make retention cheap (whole indices are dropped) and keep a 30-day query on two indices.
Mappings are strict: a field cipulse does not know is a bug to surface, not a column to invent. Identifiers
and labels are ``keyword`` (exact filters and aggregations); names also get a ``text`` sub-field for
free-text search in Kibana/Dashboards; timestamps are ``date_nanos`` so microseconds round-trip exactly.
Steps are kept in ``_source`` only (not indexed): no window fact needs them, and indexing them as nested
documents would multiply the Lucene documents per job.

Retention (`search_lifecycle`): the dated monthly indices also match a higher-priority template
(``{prefix}-runs-2*``, ``{prefix}-jobs-2*``) that carries the ILM policy name where ILM is in use; only the
highest-priority template applies to a new index, so the undated jobs index never gets a lifecycle.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from cipulse.metrics.derive import job_window_time
from cipulse.records import Job, WorkflowRun

UNDATED: Final = "undated"
KEYWORD: Final = {"type": "keyword"}
NAME: Final = {"type": "keyword", "fields": {"text": {"type": "text"}}}
DATE: Final = {"type": "date_nanos"}
LONG: Final = {"type": "long"}
INTEGER: Final = {"type": "integer"}
BOOLEAN: Final = {"type": "boolean"}

RUN_PROPERTIES: Final[dict[str, Any]] = {
    "repository": KEYWORD,
    "run_id": LONG,
    "run_attempt": INTEGER,
    "run_number": LONG,
    "workflow_id": LONG,
    "workflow_name": NAME,
    "event": KEYWORD,
    "head_sha": KEYWORD,
    "head_branch": KEYWORD,
    "status": KEYWORD,
    "conclusion": KEYWORD,
    "created_at": DATE,
    "run_started_at": DATE,
    "updated_at": DATE,
    "actor": KEYWORD,
    "html_url": {"type": "keyword", "index": False},
    "pull_request_numbers": LONG,
    "duration_s": LONG,
}

JOB_PROPERTIES: Final[dict[str, Any]] = {
    "repository": KEYWORD,
    "run_id": LONG,
    "run_attempt": INTEGER,
    "job_id": LONG,
    "name": NAME,
    "workflow_name": NAME,
    "head_sha": KEYWORD,
    "head_branch": KEYWORD,
    "status": KEYWORD,
    "conclusion": KEYWORD,
    "created_at": DATE,
    "started_at": DATE,
    "completed_at": DATE,
    "queue_estimated": BOOLEAN,
    "runner_name": KEYWORD,
    "runner_labels": KEYWORD,
    "steps": {"type": "object", "enabled": False},
    # metrics.derive values, computed once at write time (the same ones SqliteStore stores)
    "window_at": DATE,
    "outcome": KEYWORD,
    "duration_s": LONG,
    "queue_s": LONG,
    "queue_exact": BOOLEAN,
    "clock_skew": BOOLEAN,
    "billable_minutes": LONG,
    "labels_key": KEYWORD,
}

WATERMARK_PROPERTIES: Final[dict[str, Any]] = {
    "monitor": KEYWORD,
    "newest_created_at": DATE,
    "updated_at": DATE,
}


def month_suffix(moment: datetime | None) -> str:
    if moment is None:
        return UNDATED
    return moment.astimezone(UTC).strftime("%Y.%m")


def month_start(suffix: str) -> datetime | None:
    """First instant of the month an index suffix names (None for the undated index or a foreign name)."""
    try:
        return datetime.strptime(suffix, "%Y.%m").replace(tzinfo=UTC)
    except ValueError:
        return None


def next_month(moment: datetime) -> datetime:
    return moment.replace(year=moment.year + moment.month // 12, month=moment.month % 12 + 1)


class IndexLayout:
    """Index names and templates for one prefix (several cipulse installations can share a cluster)."""

    def __init__(self, prefix: str) -> None:
        if not prefix or prefix != prefix.lower() or any(c in prefix for c in ' "*\\<|,>/?#:'):
            raise ValueError(f"index prefix must be a non-empty lower-case index name part, got {prefix!r}")
        self.prefix = prefix
        self.runs_pattern = f"{prefix}-runs-*"
        self.jobs_pattern = f"{prefix}-jobs-*"
        self.watermarks = f"{prefix}-watermarks"
        # month suffixes start with the year (2000-2999); "undated" starts with a letter
        self.dated_patterns = [f"{prefix}-runs-2*", f"{prefix}-jobs-2*"]

    def run_index(self, run: WorkflowRun) -> str:
        return f"{self.prefix}-runs-{month_suffix(run.created_at)}"

    def job_index(self, job: Job) -> str:
        return f"{self.prefix}-jobs-{month_suffix(job_window_time(job))}"

    def is_job_index(self, index: str) -> bool:
        return index.startswith(f"{self.prefix}-jobs-")

    def job_neighbours(self, index: str) -> set[str]:
        """Job indices where an earlier version of a job now written to `index` may live."""
        begins = month_start(self.suffix(index))
        if begins is None:
            return {self.jobs_pattern}
        before = (begins - timedelta(days=1)).replace(day=1)
        months = (before, begins, next_month(begins))
        return {f"{self.prefix}-jobs-{month_suffix(m)}" for m in months} | {f"{self.prefix}-jobs-{UNDATED}"}

    def suffix(self, index: str) -> str:
        return index.rsplit("-", 1)[-1]

    def templates(self, dated_settings: Mapping[str, Any] | None = None) -> dict[str, dict[str, Any]]:
        """Composable index templates (same body on Elasticsearch 8+ and OpenSearch 2+).

        With `dated_settings` (the store always passes them, empty without ILM) the dated monthly indices
        get their own templates carrying those settings; they are rewritten with the current mappings on
        every store open, so they never lag behind a newly mapped field."""
        settings = {"number_of_shards": 1, "auto_expand_replicas": "0-1", "refresh_interval": "1s"}
        templates = {
            f"{self.prefix}-runs": _template(self.runs_pattern, settings, RUN_PROPERTIES),
            f"{self.prefix}-jobs": _template(self.jobs_pattern, settings, JOB_PROPERTIES),
            f"{self.prefix}-watermarks": _template(self.watermarks, settings, WATERMARK_PROPERTIES),
        }
        if dated_settings is not None:
            dated = settings | dict(dated_settings)
            runs, jobs = self.dated_patterns
            templates[f"{self.prefix}-runs-dated"] = _template(runs, dated, RUN_PROPERTIES, priority=201)
            templates[f"{self.prefix}-jobs-dated"] = _template(jobs, dated, JOB_PROPERTIES, priority=201)
        return templates


def _template(
    pattern: str, settings: dict[str, Any], properties: dict[str, Any], *, priority: int = 200
) -> dict[str, Any]:
    return {
        "index_patterns": [pattern],
        "priority": priority,
        "template": {
            "settings": settings,
            "mappings": {"dynamic": "strict", "properties": properties},
        },
        "_meta": {"managed_by": "cipulse"},
    }
