"""The search store's write path: records to _bulk requests, ordered so that an interruption is harmless.

Order: bulk requests are independent and a failure (crash, outage, rejected document) can leave a batch
half-written, which the caller's retry overwrites (`_id` = record key). So all jobs are written first and
the runs only once every job chunk was accepted: a stored run document promises that its jobs are stored.
Sending both in one request would not keep that promise: the engine applies a request shard by shard,
independently, so the runs' shard can commit while a jobs' shard fails.

Moves: a job lives in the monthly index of its window time, and that time can change (a queue time that
goes from unknown or estimated to exact; a first version with no timestamp at all). Every write therefore
looks its job ids up in the neighbouring job indices and sends the deletes of copies found there in the
same request as the new version: no interruption between two requests leaves a job counted twice. Runs
never move (GitHub never changes a run's ``created_at``). Jobs cannot be placed by an immutable time
instead: no timestamp is present and final in every version a collector sees (GraphQL estimates the
queue time, a queued job has no start), and the run's ``created_at`` is not part of a job record.

Cost: Python's share is encoding (`search_documents`, orjson) and routing; the engine's share is the
bulk writes plus one search per `LOOKUP_IDS` jobs. The search asks for ``job_id`` within the batch's id
range (points: a segment outside the range is skipped at once) rather than ``_id`` (one term-dictionary
seek per id per segment), and only in the neighbours of the indices written. It runs on its own thread
while the caller's thread encodes; with several chunks, one _bulk request is in flight while the next
is encoded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

from cipulse.metrics.derive import job_window_time
from cipulse.records import Job, WorkflowRun
from cipulse.store.search_client import BulkAction, BulkItemsFailed, SearchClient
from cipulse.store.search_documents import job_source, run_source
from cipulse.store.search_mappings import IndexLayout

_T = TypeVar("_T")
# Elasticsearch's advice is 5-15 MB per _bulk; a caller's batch of a few thousand jobs fits in one request.
MAX_BULK_BYTES: Final = 8 * 1024 * 1024
ACTION_BYTES: Final = 100  # the action line in front of each document, roughly
# Job ids per stale-copy lookup; the answer may hold two copies per id and stays under the engines'
# default index.max_result_window (10,000).
LOOKUP_IDS: Final = 4000
MAX_LOOKUP_HITS: Final = 10_000
LONG_RANGE: Final = range(-(2**63), 2**63)  # a job id outside it is rejected by the mapping: never stored

Target = tuple[str, str, Job]  # (key, index, job)


class SearchWriter:
    """Writes records for one `SearchStore`. `unrefreshed` (job key -> index written since the store's last
    refresh, which search cannot see yet) is shared with the store, which clears it when it refreshes."""

    def __init__(self, client: SearchClient, layout: IndexLayout, unrefreshed: dict[str, str]) -> None:
        self._client = client
        self._layout = layout
        self._unrefreshed = unrefreshed
        self._job_indices: dict[tuple[int, int] | None, str] = {}
        self._run_indices: dict[tuple[int, int] | None, str] = {}
        self._lookup_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cipulse-search-lookup")
        self._write_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cipulse-search-write")

    def close(self) -> None:
        self._lookup_pool.shutdown(wait=True)
        self._write_pool.shutdown(wait=True)

    def upsert(self, runs: Sequence[WorkflowRun], jobs: Sequence[Job]) -> None:
        """Jobs, then runs; rejected job documents of all chunks are reported together (`BulkItemsFailed`),
        and then no run is written. Returns or raises only when no request is in flight."""
        latest: dict[str, Job] = {}
        for job in jobs:  # one version per id, the last one winning, as sequential upserts would
            latest[job.key] = job
        targets = [(key, self._job_index(job), job) for key, job in latest.items()]
        lookups = [
            self._lookup_pool.submit(self._stale_copies, group) for group in _slices(targets, LOOKUP_IDS)
        ]
        try:
            failures = self._send(self._job_chunks(targets, lookups))
            if failures:
                raise BulkItemsFailed(failures)
            failures = self._send(self._run_chunks({run.key: run for run in runs}))
        finally:
            for lookup in lookups:
                lookup.cancel()
            wait(lookups)
            # even a failed request may have written part of the batch
            self._unrefreshed.update((key, index) for key, index, _ in targets)
        if failures:
            raise BulkItemsFailed(failures)

    # -- routing --------------------------------------------------------------------------------------

    def _job_index(self, job: Job) -> str:
        return _monthly(self._job_indices, job_window_time(job), lambda: self._layout.job_index(job))

    def _run_index(self, run: WorkflowRun) -> str:
        return _monthly(self._run_indices, run.created_at, lambda: self._layout.run_index(run))

    # -- requests -------------------------------------------------------------------------------------

    def _job_chunks(
        self, targets: Sequence[Target], lookups: Sequence[Future[dict[str, list[BulkAction]]]]
    ) -> Iterator[list[BulkAction]]:
        """_bulk chunks of jobs, each with the deletes of its jobs' stale copies. Encoding goes first: the
        lookup of the same ids runs meanwhile."""
        encoded: list[tuple[int, str, str, bytes]] = []
        size = 0
        for position, (key, index, job) in enumerate(targets):
            source = job_source(job)
            encoded.append((position, key, index, source))
            size += len(source) + ACTION_BYTES
            if size >= MAX_BULK_BYTES or position == len(targets) - 1:
                stale: dict[str, list[BulkAction]] = {}
                first, last = encoded[0][0] // LOOKUP_IDS, position // LOOKUP_IDS
                for lookup in lookups[first : last + 1]:
                    stale.update(lookup.result())
                chunk: list[BulkAction] = []
                for _, doc_key, doc_index, doc_source in encoded:
                    chunk.extend(stale.get(doc_key, ()))
                    chunk.append(BulkAction("index", doc_index, doc_key, doc_source))
                yield chunk
                encoded, size = [], 0

    def _run_chunks(self, runs: Mapping[str, WorkflowRun]) -> Iterator[list[BulkAction]]:
        chunk: list[BulkAction] = []
        size = 0
        for key, run in runs.items():
            source = run_source(run)
            chunk.append(BulkAction("index", self._run_index(run), key, source))
            size += len(source) + ACTION_BYTES
            if size >= MAX_BULK_BYTES:
                yield chunk
                chunk, size = [], 0
        if chunk:
            yield chunk

    def _send(self, chunks: Iterator[list[BulkAction]]) -> dict[str, str]:
        """Send every chunk, one in flight while the next is encoded; return the rejected ids."""
        failures: dict[str, str] = {}
        in_flight: Future[None] | None = None
        try:
            for chunk in chunks:
                if in_flight is not None:
                    _collect(in_flight, failures)
                    in_flight = None
                in_flight = self._write_pool.submit(self._client.bulk, chunk)
            if in_flight is not None:
                _collect(in_flight, failures)
                in_flight = None
        finally:
            if in_flight is not None:
                wait([in_flight])  # never leave a request running behind the caller's back
        return failures

    # -- moved jobs -----------------------------------------------------------------------------------

    def _stale_copies(self, targets: Sequence[Target]) -> dict[str, list[BulkAction]]:
        """Deletes, by job key, for copies of these jobs in another job index than the one written now.

        A job's window time moves by minutes (or out of the undated index), so the copies can only be in
        the neighbouring months or the undated index (any job index when the new version is undated)."""
        stale: dict[str, list[BulkAction]] = {}
        for key, index, _ in targets:  # written since the last refresh: search cannot see these yet
            unrefreshed = self._unrefreshed.get(key)
            if unrefreshed is not None and unrefreshed != index:
                stale[key] = [BulkAction("delete", unrefreshed, key)]
        for key, index in self._copies_elsewhere(targets):
            deletes = stale.setdefault(key, [])
            if all(delete.index != index for delete in deletes):
                deletes.append(BulkAction("delete", index, key))
        return stale

    def _copies_elsewhere(self, targets: Sequence[Target]) -> list[tuple[str, str]]:
        """(key, index) of every stored copy of these jobs outside the index each is written to now.

        One ``job_id`` clause for all of them (a clause per index or repository would be built again on
        every segment); which hits are copies of these very jobs is decided here, by key and index."""
        index_of = {key: index for key, index, _ in targets}
        job_ids = sorted({job.job_id for _, _, job in targets if job.job_id in LONG_RANGE})
        if not job_ids:
            return []
        written_to = set(index_of.values())
        # a copy in the index written now is simply overwritten: an index is searched only as the
        # neighbour of another one written to
        candidates = set().union(*(self._layout.job_neighbours(index) - {index} for index in written_to))
        query: dict[str, Any] = {
            "bool": {
                "filter": [
                    # a segment whose job ids all lie outside the range skips the id lookup at once: ids
                    # grow with time, so older months usually hold none of a new batch's ids
                    {"range": {"job_id": {"gte": job_ids[0], "lte": job_ids[-1]}}},
                    {"terms": {"job_id": job_ids}},
                ]
            }
        }
        if len(written_to) == 1:  # the usual batch: skip the target's own copies in the engine
            query["bool"]["must_not"] = {"term": {"_index": next(iter(written_to))}}
        size = MAX_LOOKUP_HITS if len(targets) == 1 else min(MAX_LOOKUP_HITS, 2 * len(targets) + 100)
        answer = self._client.search(
            ",".join(sorted(candidates)),
            {
                "size": size,
                "_source": False,
                "track_total_hits": False,
                "sort": ["_doc"],  # no scoring, no ranking: just where these ids live
                "query": query,
            },
            filter_path="hits.hits._index,hits.hits._id",
        )
        hits = answer.get("hits", {}).get("hits", [])
        if len(hits) >= size and len(targets) > 1:  # more hits than asked for: ask in halves
            half = len(targets) // 2
            return self._copies_elsewhere(targets[:half]) + self._copies_elsewhere(targets[half:])
        return [
            (hit["_id"], hit["_index"])
            for hit in hits
            if hit["_id"] in index_of and hit["_index"] != index_of[hit["_id"]]
        ]


def _monthly(
    cache: dict[tuple[int, int] | None, str], moment: datetime | None, name: Callable[[], str]
) -> str:
    """Index names depend only on the UTC month: computed once per month (other offsets: every time)."""
    if moment is not None and moment.tzinfo is not UTC:
        return name()
    month = None if moment is None else (moment.year, moment.month)
    index = cache.get(month)
    if index is None:
        index = cache[month] = name()
    return index


def _slices(items: Sequence[_T], size: int) -> list[Sequence[_T]]:
    return [items[offset : offset + size] for offset in range(0, len(items), size)]


def _collect(future: Future[None], failures: dict[str, str]) -> None:
    """Wait for one bulk request; gather rejected ids (any other error propagates)."""
    try:
        future.result()
    except BulkItemsFailed as error:
        failures.update(error.failures)
