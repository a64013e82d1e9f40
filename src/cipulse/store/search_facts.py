"""Window facts computed inside Elasticsearch/OpenSearch: no job document leaves the engine.

Counts and sums come from one composite aggregation at the finest grain (repository, workflow, job,
branch, outcome, runner labels) and are rolled up in Python, because they add (`GroupTally.merge`).

Percentiles must be cipulse's exact nearest-rank ones (`metrics.percentiles`), which the engines' t-digest
or HDR ``percentiles`` aggregations do not compute. Two passes keep them exact and cheap:

1. a composite aggregation of value *buckets* (`BUCKET_SECONDS` wide) per finest group, rolled up to every
   group of every level, tells which bucket holds the value of each asked rank;
2. a second composite aggregation returns exact (value, count) pairs, but only inside those buckets.

Each finest group's value counts are then exact inside the needed buckets and a single representative
(the bucket's lower bound) elsewhere. Buckets are disjoint ordered intervals, so the representatives keep
every value in its true order, and the nearest-rank value at each asked rank, which lies in a needed bucket
by construction, is exact for every group at every level.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, Final, Literal

from cipulse.metrics.cost import RunnerRates
from cipulse.metrics.facts import (
    LEVELS,
    GroupKey,
    GroupTally,
    Level,
    WindowFacts,
    assemble,
    check_window,
    group_keys,
)
from cipulse.metrics.percentiles import PERCENTILES, rank
from cipulse.store.search_client import SearchClient

BUCKET_SECONDS: Final = 60
PAGE: Final = 5000
Measure = Literal["durations", "queues"]
MEASURE_FIELD: Final[dict[Measure, str]] = {"durations": "duration_s", "queues": "queue_s"}
FinestKey = tuple[str, str, str, str | None]

_GROUP_SOURCES: Final[list[dict[str, Any]]] = [
    {"repository": {"terms": {"field": "repository"}}},
    {"workflow": {"terms": {"field": "workflow_name"}}},
    {"job": {"terms": {"field": "name"}}},
    {"branch": {"terms": {"field": "head_branch", "missing_bucket": True}}},
]


def nanos_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def window_filter(repository: str | None, start: datetime, end: datetime) -> list[dict[str, Any]]:
    clauses: list[dict[str, Any]] = [
        {"range": {"window_at": {"gte": nanos_time(start), "lt": nanos_time(end)}}}
    ]
    if repository is not None:
        clauses.append({"term": {"repository": repository}})
    return clauses


def measure_filter(measure: Measure) -> list[dict[str, Any]]:
    field = MEASURE_FIELD[measure]
    clauses: list[dict[str, Any]] = [{"exists": {"field": field}}]
    if measure == "durations":
        clauses.append({"terms": {"outcome": ["success", "failure"]}})
    return clauses


def composite_buckets(
    client: SearchClient,
    index: str,
    filters: list[dict[str, Any]],
    sources: list[dict[str, Any]],
    sub_aggregations: Mapping[str, Any] | None = None,
) -> Iterator[dict[str, Any]]:
    """Every bucket of a composite aggregation, page by page."""
    after: dict[str, Any] | None = None
    while True:
        composite: dict[str, Any] = {"size": PAGE, "sources": sources}
        if after is not None:
            composite["after"] = after
        aggregation: dict[str, Any] = {"composite": composite}
        if sub_aggregations:
            aggregation["aggs"] = sub_aggregations
        answer = client.search(
            index,
            {"size": 0, "query": {"bool": {"filter": filters}}, "aggs": {"groups": aggregation}},
            request_cache="true",
        )
        groups = (answer.get("aggregations") or {}).get("groups")
        if not groups:
            return
        yield from groups["buckets"]
        after = groups.get("after_key")
        if after is None or len(groups["buckets"]) < PAGE:
            return


def _finest(key: Mapping[str, Any]) -> FinestKey:
    return (key["repository"], key["workflow"], key["job"], key["branch"])


def levels_of(finest: FinestKey) -> list[tuple[Level, GroupKey]]:
    """The groups a finest group belongs to, the overall one included."""
    keys: list[tuple[Level, GroupKey]] = [("all", (None, None, None, None))]
    for level, key in group_keys(*finest).items():
        if key is not None:
            keys.append((level, key))
    return keys


def _count_tallies(
    client: SearchClient, index: str, filters: list[dict[str, Any]]
) -> dict[FinestKey, GroupTally]:
    sources = [
        *_GROUP_SOURCES,
        {"outcome": {"terms": {"field": "outcome"}}},
        {"labels": {"terms": {"field": "labels_key"}}},
    ]
    sub_aggregations = {
        "seconds": {"sum": {"field": "duration_s"}},
        "billable": {"sum": {"field": "billable_minutes"}},
        "queue_exact": {
            "filter": {
                "bool": {"filter": [{"exists": {"field": "queue_s"}}, {"term": {"queue_exact": True}}]}
            }
        },
        "queue_estimated": {
            "filter": {
                "bool": {"filter": [{"exists": {"field": "queue_s"}}, {"term": {"queue_exact": False}}]}
            }
        },
        "skew": {"filter": {"term": {"clock_skew": True}}},
    }
    tallies: dict[FinestKey, GroupTally] = {}
    for bucket in composite_buckets(client, index, filters, sources, sub_aggregations):
        part = GroupTally()
        part.outcomes[bucket["key"]["outcome"]] = int(bucket["doc_count"])
        part.job_seconds = int(bucket["seconds"]["value"])
        billable = int(bucket["billable"]["value"])
        if billable:
            part.billable_by_labels[bucket["key"]["labels"]] = billable
        part.queue_exact_count = int(bucket["queue_exact"]["doc_count"])
        part.queue_estimated_count = int(bucket["queue_estimated"]["doc_count"])
        part.clock_skew_count = int(bucket["skew"]["doc_count"])
        tallies.setdefault(_finest(bucket["key"]), GroupTally()).merge(part)
    return tallies


def _bucket_counts(
    client: SearchClient, index: str, filters: list[dict[str, Any]], measure: Measure
) -> dict[FinestKey, Counter[int]]:
    sources = [
        *_GROUP_SOURCES,
        {"bucket": {"histogram": {"field": MEASURE_FIELD[measure], "interval": BUCKET_SECONDS}}},
    ]
    counts: dict[FinestKey, Counter[int]] = {}
    for bucket in composite_buckets(client, index, [*filters, *measure_filter(measure)], sources):
        counts.setdefault(_finest(bucket["key"]), Counter())[int(bucket["key"]["bucket"])] += int(
            bucket["doc_count"]
        )
    return counts


def needed_buckets(counts: Mapping[FinestKey, Counter[int]]) -> set[int]:
    """Lower bounds of the buckets that hold some group's p50/p90/p95 value, at any level."""
    rolled: dict[tuple[Level, GroupKey], Counter[int]] = {}
    for finest, buckets in counts.items():
        for group in levels_of(finest):
            rolled.setdefault(group, Counter()).update(buckets)
    needed: set[int] = set()
    for buckets in rolled.values():
        total = sum(buckets.values())
        if not total:
            continue
        wanted = sorted(rank(p, total) for p in PERCENTILES)
        seen = 0
        for lower in sorted(buckets):
            seen += buckets[lower]
            while wanted and wanted[0] <= seen:
                needed.add(lower)
                wanted.pop(0)
            if not wanted:
                break
    return needed


def _exact_counts(
    client: SearchClient, index: str, filters: list[dict[str, Any]], measure: Measure, needed: set[int]
) -> dict[FinestKey, Counter[int]]:
    if not needed:
        return {}
    field = MEASURE_FIELD[measure]
    in_needed = {
        "bool": {
            "should": [
                {"range": {field: {"gte": lower, "lt": lower + BUCKET_SECONDS}}} for lower in sorted(needed)
            ],
            "minimum_should_match": 1,
        }
    }
    sources = [*_GROUP_SOURCES, {"value": {"terms": {"field": field}}}]
    counts: dict[FinestKey, Counter[int]] = {}
    for bucket in composite_buckets(client, index, [*filters, *measure_filter(measure), in_needed], sources):
        counts.setdefault(_finest(bucket["key"]), Counter())[int(bucket["key"]["value"])] += int(
            bucket["doc_count"]
        )
    return counts


def mix_counts(
    buckets: Mapping[FinestKey, Counter[int]],
    exact: Mapping[FinestKey, Counter[int]],
    needed: set[int],
) -> dict[FinestKey, Counter[int]]:
    """Per finest group: exact counts in the needed buckets, one representative per other bucket."""
    result: dict[FinestKey, Counter[int]] = {}
    for finest, counts in buckets.items():
        mixed = Counter({lower: count for lower, count in counts.items() if lower not in needed})
        mixed.update(exact.get(finest, Counter()))
        result[finest] = mixed
    return result


def _value_counts(
    client: SearchClient, index: str, filters: list[dict[str, Any]], measure: Measure
) -> dict[FinestKey, Counter[int]]:
    buckets = _bucket_counts(client, index, filters, measure)
    needed = needed_buckets(buckets)
    return mix_counts(buckets, _exact_counts(client, index, filters, measure, needed), needed)


def window_facts(
    client: SearchClient,
    index: str,
    repository: str | None,
    start: datetime,
    end: datetime,
    rates: RunnerRates | None = None,
) -> WindowFacts:
    check_window(start, end)
    filters = window_filter(repository, start, end)
    finest_tallies = _count_tallies(client, index, filters)
    for measure in ("durations", "queues"):
        for finest, counts in _value_counts(client, index, filters, measure).items():
            getattr(finest_tallies.setdefault(finest, GroupTally()), measure).update(counts)
    overall = GroupTally()
    by_level: dict[Level, dict[GroupKey, GroupTally]] = {level: {} for level in LEVELS}
    for finest, tally in finest_tallies.items():
        for level, key in levels_of(finest):
            if level == "all":
                overall.merge(tally)
            else:
                by_level[level].setdefault(key, GroupTally()).merge(tally)
    return assemble(repository, start, end, overall, by_level, rates)
