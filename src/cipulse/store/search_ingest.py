"""The search store's write path: records to _bulk requests, ordered so that an interruption is harmless.

Order: bulk requests are independent and a failure (crash, outage, rejected document) can leave a batch
half-written, which the caller's retry overwrites (`_id` = record key). So a batch's runs are sent only
once every request with its jobs was accepted: a stored run document promises that its jobs are stored.
Sending both in one request would not keep that promise: the engine applies a request shard by shard,
independently, so the runs' shard can commit while a jobs' shard fails.

Pipeline: one _bulk request is in flight at a time, and the caller's thread prepares the next one
meanwhile. Over a stream of batches (`upsert_batches`) a batch's runs travel in the request that carries
the next batch's jobs, since that request leaves only after the previous one was accepted: one request
per batch, as a plain bulk load would send, and the promise above still holds. A batch counts as stored
(``on_stored``) once the request with its runs was accepted.

Moves: a job lives in the monthly index of its window time, and that time can change (a queue time that
goes from unknown or estimated to exact; a first version with no timestamp at all). Every write therefore
looks its job ids up in the neighbouring job indices and sends the deletes of copies found there in the
same request as the new version: no interruption between two requests leaves a job counted twice. Runs
never move (GitHub never changes a run's ``created_at``). Jobs cannot be placed by an immutable time
instead: no timestamp is present and final in every version a collector sees (GraphQL estimates the
queue time, a queued job has no start), and the run's ``created_at`` is not part of a job record.
Search sees only refreshed documents: copies written since the store's last refresh come from
``unrefreshed``, and those of the request in flight while a lookup runs from the pipeline itself.

Cost: Python's share is encoding (`search_documents`, orjson) and routing; the engine's share is the
bulk writes, plus an id lookup only for batches whose id range overlaps a neighbouring index's
(`search_id_ranges`): GitHub's ids grow with time, so a batch of new jobs needs none. The lookup asks
for ``job_id`` within the batch's id range (points: a segment outside the range is skipped at once)
rather than ``_id`` (one term-dictionary seek per id per segment), one search per `LOOKUP_IDS` jobs,
in those indices only. It runs on the caller's thread before the batch is encoded, both while the
engine writes the request before.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

from cipulse.metrics.derive import job_window_time
from cipulse.records import Job, WorkflowRun
from cipulse.store.base import RecordBatch
from cipulse.store.search_client import BulkAction, BulkItemsFailed, SearchClient, bulk_body
from cipulse.store.search_documents import job_source, run_source
from cipulse.store.search_id_ranges import JobIdRanges
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
        self._id_ranges = JobIdRanges(client, layout.jobs_pattern)
        self._write_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cipulse-search-write")
        # one stream at a time: a stream knows only its own request in flight (the moved-job deletes)
        self._streaming = threading.Lock()

    def forget_id_ranges(self) -> None:
        """Called by the store after each refresh it makes: see `JobIdRanges`."""
        self._id_ranges.forget()

    def close(self) -> None:
        self._write_pool.shutdown(wait=True)

    def upsert(self, runs: Sequence[WorkflowRun], jobs: Sequence[Job]) -> None:
        """Jobs, then runs; rejected job documents of all chunks are reported together (`BulkItemsFailed`),
        and then no run is written. Returns or raises only when no request is in flight."""
        self.upsert_batches([(runs, jobs)])

    def upsert_batches(
        self, batches: Iterable[RecordBatch], on_stored: Callable[[int], None] | None = None
    ) -> None:
        """Every (runs, jobs) batch as `upsert` would write it, pipelined (module docstring): ``on_stored``
        gets each batch's position once it is stored. The first rejection or outage stops the stream and
        raises; the batches not reported stored may be partly written, and a retry overwrites them.
        Streams from several threads take turns (``on_stored`` must not write to this store)."""
        with self._streaming:
            self._stream(batches, on_stored)

    def _stream(self, batches: Iterable[RecordBatch], on_stored: Callable[[int], None] | None) -> None:
        pipeline = _Pipeline(self._client, self._write_pool, self._unrefreshed, on_stored)
        try:
            for number, (runs, jobs) in enumerate(batches):
                latest: dict[str, Job] = {}
                for job in jobs:  # one version per id, the last one winning, as sequential upserts would
                    latest[job.key] = job
                targets = [(key, self._job_index(job), job) for key, job in latest.items()]
                # copies in the request in flight are read before search is asked (module docstring)
                stale = self._stale_copies(targets, pipeline.jobs_in_flight())
                for chunk, written, size in self._job_chunks(targets, stale):
                    pipeline.send_jobs(chunk, written, size)
                pipeline.end_batch(number, self._run_actions(runs))
            pipeline.finish()
        finally:
            pipeline.abandon()

    # -- routing --------------------------------------------------------------------------------------

    def _job_index(self, job: Job) -> str:
        return _monthly(self._job_indices, job_window_time(job), lambda: self._layout.job_index(job))

    def _run_index(self, run: WorkflowRun) -> str:
        return _monthly(self._run_indices, run.created_at, lambda: self._layout.run_index(run))

    # -- requests -------------------------------------------------------------------------------------

    def _job_chunks(
        self, targets: Sequence[Target], stale: Mapping[str, list[BulkAction]]
    ) -> Iterator[tuple[list[BulkAction], dict[str, str], int]]:
        """_bulk chunks of jobs, each led by the deletes of its jobs' stale copies (other indices than the
        new versions', so their order does not matter), with the (key, index) each writes and its size."""
        writes: list[BulkAction] = []
        size = 0
        for position, (key, index, job) in enumerate(targets):
            source = job_source(job)
            writes.append(BulkAction("index", index, key, source))
            size += len(source) + ACTION_BYTES
            if size >= MAX_BULK_BYTES or position == len(targets) - 1:
                chunk = [delete for write in writes for delete in stale.get(write.doc_id, ())]
                chunk += writes
                written = {write.doc_id: write.index for write in writes}
                yield chunk, written, size
                writes, size = [], 0

    def _run_actions(self, runs: Sequence[WorkflowRun]) -> list[BulkAction]:
        latest = {run.key: run for run in runs}
        return [BulkAction("index", self._run_index(r), key, run_source(r)) for key, r in latest.items()]

    # -- moved jobs -----------------------------------------------------------------------------------

    def _stale_copies(
        self, targets: Sequence[Target], in_flight: Mapping[str, str]
    ) -> dict[str, list[BulkAction]]:
        """Deletes, by job key, for copies of these jobs in another job index than the one written now.

        A job's window time moves by minutes (or out of the undated index), so the copies can only be in
        the neighbouring months or the undated index (any job index when the new version is undated).
        Search cannot see copies acknowledged since the last refresh (``unrefreshed``) nor those of the
        request in flight (``in_flight``): both are read before the search runs."""
        copies = [
            (key, elsewhere)
            for key, _, _ in targets
            for elsewhere in (self._unrefreshed.get(key), in_flight.get(key))
            if elsewhere is not None
        ]
        for group in _slices(targets, LOOKUP_IDS):
            copies += self._copies_elsewhere(group)
        index_of = {key: index for key, index, _ in targets}
        stale: dict[str, list[BulkAction]] = {}
        for key, index in copies:
            if index == index_of[key]:  # the new version overwrites it
                continue
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
        holding = self._id_ranges.holding(candidates, job_ids[0], job_ids[-1])
        if not holding:  # the usual batch: new jobs, above every stored id
            return []
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
            ",".join(holding),
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


class _Pipeline:
    """One _bulk request in flight; runs held back until every job request of their batch was accepted.

    A rejected document does not stop its own batch: the batch's other job requests are still sent, and
    `BulkItemsFailed` names every rejected id before the next batch starts, without the batch's runs.
    Batches are reported stored after the next request left, so the engine never waits for the caller's
    bookkeeping. Used from the caller's thread only (the requests themselves run on the write pool)."""

    def __init__(
        self,
        client: SearchClient,
        pool: ThreadPoolExecutor,
        unrefreshed: dict[str, str],
        on_stored: Callable[[int], None] | None,
    ) -> None:
        self._client = client
        self._pool = pool
        self._unrefreshed = unrefreshed
        self._on_stored = on_stored
        self._request: Future[None] | None = None
        self._request_jobs: dict[str, str] = {}  # job key -> index written by the request in flight
        self._request_completes: list[int] = []  # batches stored once the request in flight is accepted
        self._held_runs: list[BulkAction] = []
        self._held_bytes = 0
        self._held_batches: list[int] = []  # batches whose job requests are all sent, runs held
        self._failures: dict[str, str] = {}

    def jobs_in_flight(self) -> Mapping[str, str]:
        """Never changed in place (each request gets a new dict): a lookup may hold on to it."""
        return self._request_jobs

    def send_jobs(self, chunk: list[BulkAction], written: dict[str, str], size: int) -> None:
        """Send after the request before was accepted, with the runs that waited for it. The body is
        encoded first, while the request before is still in flight."""
        together = self._held_bytes + size <= MAX_BULK_BYTES  # else the runs go first, alone
        actions = self._held_runs + chunk if together else chunk
        body = bulk_body(actions)
        stored = self._settle()
        if self._failures and self._held_batches:
            raise BulkItemsFailed(self._failures)
        if not together:
            stored += self._send_held_runs()
        self._submit(actions, body, written, self._held_batches)
        self._held_runs, self._held_bytes, self._held_batches = [], 0, []
        self._report(stored)

    def end_batch(self, number: int, runs: list[BulkAction]) -> None:
        """Every job request of batch ``number`` is sent; its runs go with the next request."""
        self._held_runs += runs
        self._held_bytes += sum(_bulk_bytes(run) for run in runs)
        self._held_batches.append(number)

    def finish(self) -> None:
        stored = self._settle()
        if self._failures:
            raise BulkItemsFailed(self._failures)
        self._report(stored + self._send_held_runs())

    def abandon(self) -> None:
        """Never leave a request running behind the caller's back (after an error, which is what the
        caller hears about: this request's own outcome is not reported)."""
        if self._request is not None:
            wait([self._request])
            self._unrefreshed.update(self._request_jobs)  # it may have written part of its jobs
            self._request, self._request_jobs, self._request_completes = None, {}, []

    def _send_held_runs(self) -> list[int]:
        """Send the held runs on their own, in requests of at most MAX_BULK_BYTES (one at a time, each
        accepted before the next); return the batches now stored."""
        batches, runs = self._held_batches, self._held_runs
        self._held_runs, self._held_bytes, self._held_batches = [], 0, []
        chunk: list[BulkAction] = []
        size = 0
        for position, run in enumerate(runs, start=1):
            chunk.append(run)
            size += _bulk_bytes(run)
            if size >= MAX_BULK_BYTES or position == len(runs):
                self._submit(chunk, bulk_body(chunk), {}, [])
                self._settle()
                if self._failures:
                    raise BulkItemsFailed(self._failures)
                chunk, size = [], 0
        return batches

    def _submit(
        self, actions: list[BulkAction], body: bytes, written: dict[str, str], completes: list[int]
    ) -> None:
        """Returns once the write thread runs: otherwise it waits for the GIL while this thread encodes
        the next batch, up to a switch interval (5 ms) or more, and the engine idles meanwhile."""
        started = threading.Event()

        def send() -> None:
            started.set()
            self._client.bulk(actions, body=body)

        self._request_jobs, self._request_completes = written, completes
        self._request = self._pool.submit(send)
        started.wait()

    def _settle(self) -> list[int]:
        """Wait for the request in flight and return the batches it completed; rejected ids are
        gathered (and then nothing is complete), any other error propagates."""
        if self._request is None:
            return []
        request, completes = self._request, self._request_completes
        try:
            request.result()
        except BulkItemsFailed as error:
            self._failures.update(error.failures)
            return []
        finally:
            # even a failed request may have written part of the batch
            self._unrefreshed.update(self._request_jobs)
            self._request, self._request_jobs, self._request_completes = None, {}, []
        return completes

    def _report(self, batches: list[int]) -> None:
        if self._on_stored is not None:
            for number in batches:
                self._on_stored(number)


def _bulk_bytes(action: BulkAction) -> int:
    document = action.document
    return ACTION_BYTES + (len(document) if isinstance(document, bytes | str) else 0)


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
