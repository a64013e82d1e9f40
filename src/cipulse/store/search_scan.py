"""Walking everything the search store holds: documents on one consistent snapshot, aggregation groups by
``after_key`` pages.

Documents
---------

A plain ``search_after`` walk runs each page against the newest refreshed data, so a collector writing
during the walk makes it mix states: documents written meanwhile appear or not depending on where their
sort key falls, a record changed meanwhile may come back in its newer version, and the result need not
match any moment of the store. A point in time (PIT) pins the index readers when the walk starts; every
page is read from that snapshot, whatever is written or refreshed in between.

The two engines spell the PIT differently (the search body is the same: ``"pit": {id, keep_alive}``,
no index in the path):

- Elasticsearch (7.10+): ``POST /<index>/_pit?keep_alive=1m`` answers ``id``; ``DELETE /_pit`` with
  ``{"id": ...}`` closes it; ``_shard_doc`` is the cheap unique tiebreak within a PIT.
- OpenSearch (2.4+): ``POST /<index>/_search/point_in_time?keep_alive=1m`` answers ``pit_id``;
  ``DELETE /_search/point_in_time`` with ``{"pit_id": [...]}`` closes it. ``_shard_doc`` is unknown
  before 3.3, so no tiebreak is added: the sort must be unique by itself (the store sorts by record
  identity: it is).

Where no PIT can be opened (OpenSearch before 2.4, or a cluster whose security refuses the PIT actions),
the walk falls back to plain ``search_after`` on the same unique sort: complete and duplicate-free for
records that are not written meanwhile, but without the snapshot.

A PIT holds segments and a search context on every shard, so it is closed as soon as the walk ends, stops
early (the generator is closed: `contextlib.closing`, or garbage collection of an abandoned for-loop) or
fails. If closing fails too (the engine went away), the engine drops the PIT once ``keep_alive`` passes
without a request; each page renews it, so ``keep_alive`` only has to cover the consumer's time per page.

Aggregation groups
------------------
A ``terms`` aggregation returns at most ``size`` groups and a response at most ``search.max_buckets``
buckets (65,536 on Elasticsearch, 65,535 on OpenSearch), so a window with many jobs or branches cannot be
answered in one response. `composite_buckets` pages composite aggregations with ``after_key`` instead.
Composites with the same query share one search (one pass over its documents); searches with different
queries travel in one ``_msearch``, pages in lockstep, so the common case (everything fits one page) is a
single round trip whose searches the engine runs side by side.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Generator, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

from cipulse.store.base import StoreUnavailable
from cipulse.store.search_client import TRANSIENT_STATUSES, EngineInfo, SearchClient, SearchRequestError

log = logging.getLogger(__name__)
PAGE: Final = 2000
KEEP_ALIVE: Final = "1m"
# Answers to a PIT request that mean "no PIT here" (unknown endpoint, method or action; forbidden).
NO_PIT_STATUSES: Final = (400, 403, 404, 405)
FILTER_PATH: Final = "pit_id,_shards.failed,_shards.failures,hits.hits._id,hits.hits._source,hits.hits.sort"
# Composite buckets per page: fewer round trips, while a page stays below the default search.max_buckets.
# A cluster configured lower refuses a page; the page is then halved until it fits, down to this size.
COMPOSITE_PAGE: Final = 50_000
MIN_COMPOSITE_PAGE: Final = 64
# Let the engine skip, before querying, every shard whose documents cannot match (a window touches one or
# two monthly indices of many): fewer shard requests and fewer partial results to merge.
MSEARCH_PARAMS: Final = {"pre_filter_shard_size": "1"}
Sort = Sequence[Mapping[str, str]]
K = TypeVar("K", bound=Hashable)


@dataclass(slots=True)
class PointInTime:
    """An open PIT; `id` follows the newest one the engine returned (it may change from page to page)."""

    engine: EngineInfo
    id: str

    @property
    def tiebreak(self) -> list[dict[str, str]]:
        return [{"_shard_doc": "asc"}] if self.engine.engine == "elasticsearch" else []


def supports_pit(engine: EngineInfo) -> bool:
    return engine.engine == "elasticsearch" or _version(engine) >= (2, 4)


def _version(engine: EngineInfo) -> tuple[int, int]:
    major, minor, *_ = (engine.version.split("-")[0] + ".0").split(".")
    return int(major), int(minor)


def open_pit(client: SearchClient, engine: EngineInfo, index: str, keep_alive: str) -> PointInTime | None:
    """A PIT over `index`; None where the engine has none to give (OpenSearch also answers 400 for a
    pattern that matches no index: the fallback then reads the nothing there is)."""
    if not supports_pit(engine):
        return None
    path = f"/{index}/_pit" if engine.engine == "elasticsearch" else f"/{index}/_search/point_in_time"
    params = {"keep_alive": keep_alive, "ignore_unavailable": "true", "expand_wildcards": "open"}
    answer = client.request("POST", path, params=params, ok=(200, *NO_PIT_STATUSES))
    pit_id = (answer or {}).get("id") or (answer or {}).get("pit_id")
    if not isinstance(pit_id, str):  # an error answer: endpoint unknown or action refused
        log.debug("no point in time on %s for %s: %s", client.url, index, answer)
        return None
    return PointInTime(engine, pit_id)


def close_pit(client: SearchClient, pit: PointInTime) -> None:
    """Best effort: an unreachable engine expires the PIT by itself after keep_alive."""
    body: dict[str, Any]
    if pit.engine.engine == "elasticsearch":
        path, body = "/_pit", {"id": pit.id}
    else:
        path, body = "/_search/point_in_time", {"pit_id": [pit.id]}
    with contextlib.suppress(StoreUnavailable, SearchRequestError):
        client.request("DELETE", path, body=body, ok=(200, 404))


def scan(
    client: SearchClient,
    engine: EngineInfo,
    index: str,
    query: Mapping[str, Any] | None,
    sort: Sort,
    *,
    source: bool | Sequence[str] = True,
    page: int = PAGE,
    keep_alive: str = KEEP_ALIVE,
) -> Generator[dict[str, Any], None, None]:
    """Every hit matching `query` in `index`, in `sort` order, from one snapshot taken at the first
    `next()`. `sort` must be unique on its own (OpenSearch and the fallback rely on it).

    A generator: close it (or let it be collected) to release the PIT when stopping early."""
    pit = open_pit(client, engine, index, keep_alive)
    if pit is None:
        yield from _pages(client, index, None, query, sort, source, page, keep_alive)
        return
    try:
        yield from _pages(client, index, pit, query, sort, source, page, keep_alive)
    finally:
        close_pit(client, pit)


def _pages(
    client: SearchClient,
    index: str,
    pit: PointInTime | None,
    query: Mapping[str, Any] | None,
    sort: Sort,
    source: bool | Sequence[str],
    page: int,
    keep_alive: str,
) -> Iterator[dict[str, Any]]:
    after: list[Any] | None = None
    while True:
        body: dict[str, Any] = {
            "size": page,
            "sort": [*sort, *(pit.tiebreak if pit else [])],
            "_source": source if isinstance(source, bool) else list(source),
            "query": query or {"match_all": {}},
            "track_total_hits": False,
        }
        if after is not None:
            body["search_after"] = after
        if pit is None:
            answer = client.search(index, body, filter_path=FILTER_PATH)
        else:
            body["pit"] = {"id": pit.id, "keep_alive": keep_alive}
            answer = _pit_page(client, body, keep_alive)
            pit.id = answer.get("pit_id", pit.id)
        shards = answer.get("_shards", {})
        if shards.get("failed"):
            raise SearchRequestError(f"scan of {index} failed on {shards['failed']} shard(s): {shards}")
        hits = answer.get("hits", {}).get("hits", [])
        yield from hits
        if len(hits) < page:
            return
        after = hits[-1]["sort"]


def _pit_page(client: SearchClient, body: Mapping[str, Any], keep_alive: str) -> dict[str, Any]:
    """One page from the PIT (it carries the indices and their options: none may be given here)."""
    try:
        answer: dict[str, Any] = client.request(
            "POST", "/_search", body=body, params={"filter_path": FILTER_PATH}
        )
    except SearchRequestError as error:
        if "search_context_missing" not in str(error):
            raise
        raise SearchRequestError(
            f"the scan's point in time expired: more than {keep_alive} passed between two pages ({error})"
        ) from error
    return answer


# -- aggregation groups -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Composite:
    """One composite aggregation over the documents matching all `query` clauses; `aggs` are its
    per-group sub-aggregations (metrics and single-bucket filters: they add no buckets to a page)."""

    query: Sequence[Mapping[str, Any]]
    sources: Sequence[Mapping[str, Any]]
    aggs: Mapping[str, Any] = field(default_factory=dict)

    def aggregation(self, after: Mapping[str, Any] | None, page: int) -> dict[str, Any]:
        composite: dict[str, Any] = {"size": page, "sources": list(self.sources)}
        if after is not None:
            composite["after"] = after
        aggregation: dict[str, Any] = {"composite": composite}
        if self.aggs:
            aggregation["aggs"] = dict(self.aggs)
        return aggregation


def composite_buckets(
    client: SearchClient,
    index: str,
    composites: Mapping[K, Composite],
    *,
    page: int = COMPOSITE_PAGE,
    request_cache: bool = True,
) -> dict[K, list[dict[str, Any]]]:
    """Every bucket of every composite, page after page until each one is exhausted (no index: none).

    Composites with the same query share one search, so the engine visits those documents once."""
    found: dict[K, list[dict[str, Any]]] = {name: [] for name in composites}
    after: dict[K, Mapping[str, Any] | None] = dict.fromkeys(composites)
    pending = list(composites)
    while pending:
        by_query: dict[str, list[K]] = {}
        for name in pending:
            by_query.setdefault(json.dumps(composites[name].query, sort_keys=True), []).append(name)
        searches = list(by_query.values())
        bodies = [
            {
                "size": 0,
                "track_total_hits": False,
                "query": {"bool": {"filter": list(composites[names[0]].query)}},
                "aggs": {
                    f"c{number}": composites[name].aggregation(after[name], page)
                    for number, name in enumerate(names)
                },
            }
            for names in searches
        ]
        try:
            answers = msearch(client, index, bodies, request_cache=request_cache)
        except TooManyBuckets:
            if page <= MIN_COMPOSITE_PAGE:
                raise
            page = max(MIN_COMPOSITE_PAGE, page // 2)  # the same pages again, smaller
            continue
        pending = []
        for names, answer in zip(searches, answers, strict=True):
            aggregations = answer.get("aggregations") or {}  # none when no index matched the pattern
            for number, name in enumerate(names):
                result = aggregations.get(f"c{number}")
                if result is None:
                    continue
                found[name].extend(result["buckets"])
                if len(result["buckets"]) >= page and result.get("after_key") is not None:
                    after[name] = result["after_key"]
                    pending.append(name)
    return found


class TooManyBuckets(SearchRequestError):
    """A search asked for more buckets than the cluster's ``search.max_buckets``. Elasticsearch 8 and
    OpenSearch 2/3 answer it with status 503, which would otherwise read as an outage (callers wait and
    retry the very same request)."""


def msearch(
    client: SearchClient, index: str, bodies: Sequence[Mapping[str, Any]], *, request_cache: bool = True
) -> list[dict[str, Any]]:
    """Several searches of one index pattern in one round trip; any failed one raises."""
    header = json.dumps(
        {
            "index": index,
            "ignore_unavailable": True,
            "allow_no_indices": True,
            "request_cache": request_cache,
        }
    )
    lines = [line for body in bodies for line in (header, json.dumps(body, separators=(",", ":")))]
    answer = client.request(
        "POST", "/_msearch", content=("\n".join(lines) + "\n").encode(), params=MSEARCH_PARAMS
    )
    responses: list[dict[str, Any]] = answer["responses"]
    for response in responses:
        if "error" in response:
            status = int(response.get("status", 500))
            error = json.dumps(response["error"])
            message = f"search in _msearch on {index} failed with {status}: {error[:1000]}"
            if "too_many_buckets_exception" in error:
                raise TooManyBuckets(message)
            if status in TRANSIENT_STATUSES:
                raise StoreUnavailable(message)
            raise SearchRequestError(message)
    return responses
