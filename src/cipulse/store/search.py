"""SearchStore: the Store protocol on Elasticsearch 8/9 or OpenSearch 2/3, for history too big for SQLite.

One adapter serves both engines through their shared REST subset (`search_client`); the engine is detected
with ``GET /`` when the store opens. Layout and mappings: `search_mappings`; window facts: `search_facts`.

Identity and exactly-once: every document's ``_id`` is its record key (`Job.key`, `WorkflowRun.key`), so
replaying an upsert after a crash or an outage overwrites instead of duplicating. The write path
(`search_ingest`) sends a batch's runs only after all of its jobs were stored, so a stored run document
means its jobs are stored, and deletes the stale copy of a job whose month changed in the same request as
its new version. Rejected documents raise `BulkItemsFailed` naming every failed id.

Visibility: writes do not wait for a refresh (that would cap ingest at one batch per refresh interval);
this store refreshes before its own next read instead, so a reader in this process always sees its writes,
and other processes see them within the index refresh interval (1 s).

Retention (`search_lifecycle`): `delete_older_than` drops whole monthly indices older than the cutoff
and deletes the remaining old documents of the boundary month by id. That is the deletion job
(`cipulse retention`); it works on every distribution, including the minimal ones without ILM/ISM.
Where the cluster has ILM (Elasticsearch) or ISM (OpenSearch), `install_lifecycle` also hands whole old
months to the engine; `retention` says which mode is active and is logged when the store opens.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import closing
from datetime import datetime
from typing import Any, Final

from cipulse.metrics.cost import RunnerRates
from cipulse.metrics.facts import WindowFacts
from cipulse.records import Job, WorkflowRun, parse_time
from cipulse.store.base import RecordBatch, TrainingRow, Watermark
from cipulse.store.search_client import BulkAction, BulkItemsFailed, SearchClient, SearchRequestError
from cipulse.store.search_documents import job_from_source, run_from_source, to_document_time
from cipulse.store.search_facts import nanos_time, window_facts
from cipulse.store.search_ingest import SearchWriter
from cipulse.store.search_lifecycle import (
    IndexRemoval,
    RetentionSupport,
    describe,
    detect_support,
    fate_of,
    install_policy,
    template_settings,
)
from cipulse.store.search_mappings import IndexLayout
from cipulse.store.search_scan import scan

__all__ = ["BulkItemsFailed", "SearchRequestError", "SearchStore"]

log = logging.getLogger(__name__)
PAGE: Final = 2000
MAX_UNREFRESHED: Final = 100_000
JOB_SORT: Final = [{"repository": "asc"}, {"job_id": "asc"}]
RUN_SORT: Final = [{"repository": "asc"}, {"run_id": "asc"}, {"run_attempt": "asc"}]
TRAINING_SORT: Final = [{"created_at": "asc"}, *RUN_SORT]
TRAINING_FIELDS: Final = [
    "repository",
    "workflow_name",
    "run_id",
    "run_attempt",
    "head_sha",
    "head_branch",
    "event",
    "actor",
    "status",
    "conclusion",
    "created_at",
    "duration_s",
]


class SearchStore:
    """Store on Elasticsearch or OpenSearch. Not thread-safe: use one instance per thread."""

    def __init__(
        self,
        url: str,
        *,
        index_prefix: str = "cipulse",
        username: str | None = None,
        password: str | None = None,
        timeout: float = 60.0,
        request_cache: bool = True,
        read_only: bool = False,
    ) -> None:
        """`request_cache`: let the engine answer a repeated `window_facts` from its shard request cache
        (invalidated by every refresh that changed an index), as dashboards that re-ask benefit from.
        `read_only`: install no index template and refuse every write, so credentials that may only read
        (a dry run, a report) are enough."""
        self.layout = IndexLayout(index_prefix)
        self._request_cache = request_cache
        self.read_only = read_only
        self._client = SearchClient(url, username=username, password=password, timeout=timeout)
        try:
            self.info = self._client.detect()
            self.retention: RetentionSupport = detect_support(self._client, self.info.engine, self.layout)
            if not read_only:
                self._install_templates()
        except BaseException:
            self._client.close()
            raise
        log.info(
            "search store %s: %s %s, %s",
            self._client.url,
            self.engine,
            self.info.version,
            describe(self.retention),
        )
        # ids written since this store's last refresh, with their index: search cannot see them yet
        self._unrefreshed: dict[str, str] = {}
        self._dirty = False
        self._writer = SearchWriter(self._client, self.layout, self._unrefreshed)

    def __repr__(self) -> str:
        return f"SearchStore({self._client.url!r}, index_prefix={self.layout.prefix!r})"

    @property
    def engine(self) -> str:
        return self.info.engine

    @property
    def lifecycle_available(self) -> bool:
        """True when the cluster can run ILM (Elasticsearch) or ISM (OpenSearch) policies, as probed."""
        return self.retention.engine_capable

    def install_lifecycle(self, keep_days: int) -> RetentionSupport:
        """Where the engine can run a lifecycle policy, install cipulse's (deleting whole monthly indices
        `keep_days` + a month after their creation) and attach it; elsewhere change nothing. Returns the
        retention now in force."""
        self._check_writable("install a lifecycle policy")
        if self.retention.engine_capable:
            install_policy(self._client, self.info.engine, self.layout, keep_days)
            self.retention = detect_support(self._client, self.info.engine, self.layout)
            self._install_templates()
        return self.retention

    def _install_templates(self) -> None:
        """Templates shape indices created from now on; existing indices get any field added since (a
        new record field with a default is an additive change, which strict mappings would reject)."""
        dated_settings = template_settings(self.retention.mode, self.layout)
        for name, template in self.layout.templates(dated_settings).items():
            self._client.request("PUT", f"/_index_template/{name}", body=template)
            patterns = ",".join(template["index_patterns"])
            if self._client.indices(patterns):
                properties = template["template"]["mappings"]["properties"]
                self._client.request(
                    "PUT",
                    f"/{patterns}/_mapping",
                    body={"properties": properties},
                    params={"allow_no_indices": "true", "ignore_unavailable": "true"},
                )

    # -- writes ---------------------------------------------------------------------------------------

    def upsert(self, runs: Sequence[WorkflowRun], jobs: Sequence[Job]) -> None:
        """Jobs first, runs last, moved jobs' stale copies deleted in the same request (`search_ingest`)."""
        if runs or jobs:
            self.upsert_batches([(runs, jobs)])

    def upsert_batches(
        self, batches: Iterable[RecordBatch], on_stored: Callable[[int], None] | None = None
    ) -> None:
        """`upsert` of each batch in turn, one request per batch: the next batch is prepared (and pulled
        from ``batches``) while the engine writes the one before (`search_ingest`)."""
        self._check_writable("write records")

        def bounded() -> Iterator[RecordBatch]:
            for batch in batches:
                if len(self._unrefreshed) > MAX_UNREFRESHED:  # bound the memory of a long ingest
                    self._refresh()
                self._dirty = True  # even a failed write may have stored part of the batch
                yield batch

        self._writer.upsert_batches(bounded(), on_stored)

    def set_watermark(self, watermark: Watermark) -> None:
        self._check_writable("write a watermark")
        self._client.put_document(
            self.layout.watermarks,
            watermark.monitor,
            {
                "monitor": watermark.monitor,
                "newest_created_at": to_document_time(watermark.newest_created_at),
                "updated_at": to_document_time(watermark.updated_at),
            },
        )

    def delete_older_than(self, cutoff: datetime) -> int:
        return sum(removal.documents for removal in self.remove_older_than(cutoff))

    def remove_older_than(self, cutoff: datetime, *, dry_run: bool = False) -> list[IndexRemoval]:
        """Drop whole months before the cutoff's month; delete the boundary month's older documents by id
        (never a whole index that still holds a document at or after the cutoff). Repeating it after an
        interruption finishes the job: both steps are idempotent. `dry_run` only counts."""
        if not dry_run:
            self._check_writable("delete records")
        # Writers are other processes (the collector): make everything they wrote searchable first, or a
        # trim would miss documents the engine has not refreshed yet.
        self._refresh(force=True)
        removals: list[IndexRemoval] = []
        for pattern, field, sort in (
            (self.layout.runs_pattern, "created_at", RUN_SORT),
            (self.layout.jobs_pattern, "window_at", JOB_SORT),
        ):
            for index in self._client.indices(pattern):
                fate = fate_of(self.layout, index, cutoff)
                if fate == "keep":
                    continue
                if fate == "drop":
                    removals.append(IndexRemoval(index, self._client.count(index), whole=True))
                    if not dry_run:
                        self._client.delete_index(index)
                    continue
                older = {"range": {field: {"lt": nanos_time(cutoff)}}}
                if dry_run:
                    removals.append(IndexRemoval(index, self._client.count(index, older), whole=False))
                    continue
                ids = [hit["_id"] for hit in self._hits(index, older, sort, source=False)]
                if ids:
                    self._client.bulk([BulkAction("delete", index, doc_id) for doc_id in ids])
                    self._dirty = True
                removals.append(IndexRemoval(index, len(ids), whole=False))
        if not dry_run:
            self._unrefreshed.clear()
            self._refresh(force=True)
        return removals

    def _check_writable(self, what: str) -> None:
        if self.read_only:
            raise PermissionError(f"cannot {what}: {self!r} was opened read-only")

    def close(self) -> None:
        self._writer.close()
        self._client.close()

    def __enter__(self) -> SearchStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reads ----------------------------------------------------------------------------------------

    def _refresh(self, *, force: bool = False) -> None:
        if self._dirty or force:
            covered = dict(self._unrefreshed)  # written before the refresh began
            self._client.refresh(f"{self.layout.runs_pattern},{self.layout.jobs_pattern}")
            self._writer.forget_id_ranges()  # before `unrefreshed` stops covering what was refreshed
            self._dirty = False
            for key, index in covered.items():  # a write acknowledged meanwhile stays listed
                if self._unrefreshed.get(key) == index:
                    self._unrefreshed.pop(key, None)

    def _hits(
        self,
        index: str,
        query: dict[str, Any] | None,
        sort: list[dict[str, str]],
        *,
        source: bool | list[str] = True,
    ) -> Iterator[dict[str, Any]]:
        """All matching documents in sort order, by search_after pages (sort keys are unique)."""
        after: list[Any] | None = None
        while True:
            body: dict[str, Any] = {
                "size": PAGE,
                "sort": sort,
                "_source": source,
                "query": query or {"match_all": {}},
                "track_total_hits": False,
            }
            if after is not None:
                body["search_after"] = after
            hits = self._client.search(index, body).get("hits", {}).get("hits", [])
            yield from hits
            if len(hits) < PAGE:
                return
            after = hits[-1]["sort"]

    def get_watermark(self, monitor: str) -> Watermark | None:
        source = self._client.get_document(self.layout.watermarks, monitor)
        if source is None:
            return None
        updated = parse_time(source["updated_at"])
        assert updated is not None
        return Watermark(
            monitor=source["monitor"],
            newest_created_at=parse_time(source.get("newest_created_at")),
            updated_at=updated,
        )

    def count_jobs(self, repository: str | None = None) -> int:
        self._refresh()
        return self._client.count(self.layout.jobs_pattern, _repository_query(repository))

    def count_runs(self, repository: str | None = None) -> int:
        self._refresh()
        return self._client.count(self.layout.runs_pattern, _repository_query(repository))

    def iter_jobs(self, repository: str | None = None) -> Iterator[Job]:
        """From one snapshot (`search_scan`), released when the iteration ends or is abandoned."""
        self._refresh()
        query = _repository_query(repository)
        with closing(scan(self._client, self.info, self.layout.jobs_pattern, query, JOB_SORT)) as hits:
            for hit in hits:
                yield job_from_source(hit["_source"])

    def iter_runs(self, repository: str | None = None) -> Iterator[WorkflowRun]:
        """From one snapshot (`search_scan`), released when the iteration ends or is abandoned."""
        self._refresh()
        query = _repository_query(repository)
        with closing(scan(self._client, self.info, self.layout.runs_pattern, query, RUN_SORT)) as hits:
            for hit in hits:
                yield run_from_source(hit["_source"])

    def training_rows(self, repository: str | None = None) -> list[TrainingRow]:
        self._refresh()
        rows = []
        hits = scan(
            self._client,
            self.info,
            self.layout.runs_pattern,
            _repository_query(repository),
            TRAINING_SORT,
            source=TRAINING_FIELDS,
        )
        for hit in hits:
            source = hit["_source"]
            created = parse_time(source["created_at"])
            assert created is not None
            rows.append(
                TrainingRow(
                    repository=source["repository"],
                    workflow_name=source["workflow_name"],
                    run_id=int(source["run_id"]),
                    run_attempt=int(source["run_attempt"]),
                    head_sha=source["head_sha"],
                    branch=source.get("head_branch"),
                    event=source["event"],
                    actor=source.get("actor"),
                    status=source["status"],
                    conclusion=source.get("conclusion"),
                    created_at=created,
                    duration_seconds=source.get("duration_s"),
                )
            )
        return rows

    def window_facts(
        self,
        repository: str | None,
        start: datetime,
        end: datetime,
        *,
        rates: RunnerRates | None = None,
    ) -> WindowFacts:
        """Aggregated in the engine (see `search_facts`); only group-level numbers come back."""
        self._refresh()
        return window_facts(
            self._client,
            self.layout.jobs_pattern,
            repository,
            start,
            end,
            rates,
            request_cache=self._request_cache,
        )


def _repository_query(repository: str | None) -> dict[str, Any] | None:
    return None if repository is None else {"term": {"repository": repository}}
