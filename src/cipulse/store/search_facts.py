"""Window facts computed inside Elasticsearch/OpenSearch: no job document leaves the engine.

Two search requests, each one pass over the window's documents:

1. One tree of terms aggregations down to (repository, workflow, job, branch, outcome) with the counts,
   sums, billable minutes per runner label set, and histograms of durations and queue times in
   `BUCKET_SECONDS` wide buckets. Everything here adds up, so Python rolls the finest groups up to every
   level (`GroupTally.merge`, histograms summed) and learns which bucket holds each group's p50/p90/p95.
2. Exact (value, count) pairs per group of every level, only for documents inside the needed buckets
   (a ``range`` aggregation picks them).

cipulse's percentiles are exact nearest-rank ones (`metrics.percentiles`), which the engines' t-digest/HDR
``percentiles`` aggregations do not compute. A group's value counts are made of its exact values inside the
needed buckets and one representative (the lower bound) per other bucket: buckets are disjoint ordered
intervals, so every value keeps its true order and the value at each asked rank, which lies in a needed
bucket by construction, is exact. Only group-level numbers travel; the response size depends on the
number of groups and buckets, not on the number of jobs.

Terms aggregations are asked for every key (``size`` = `MAX_GROUPS`) and checked: a response that leaves
documents out (``sum_other_doc_count``) raises instead of returning partial facts.
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
from cipulse.metrics.outcome import VERDICT_OUTCOMES
from cipulse.metrics.percentiles import PERCENTILES, rank
from cipulse.store.search_client import SearchClient, SearchRequestError

BUCKET_SECONDS: Final = 60
MAX_GROUPS: Final = 10_000
# Git forbids "~" in ref names, so this cannot be a real branch: it stands for "no branch" in count keys.
NO_BRANCH: Final = "~none~"
Measure = Literal["durations", "queues"]
MEASURES: Final[tuple[Measure, ...]] = ("durations", "queues")
MEASURE_FIELD: Final[dict[Measure, str]] = {"durations": "duration_s", "queues": "queue_s"}
LEVEL_FIELDS: Final[dict[Level, tuple[str, ...]]] = {
    "all": (),
    "repository": ("repository",),
    "workflow": ("repository", "workflow_name"),
    "job": ("repository", "workflow_name", "name"),
    "branch": ("repository", "head_branch"),
}
COUNT_FIELDS: Final = ("repository", "workflow_name", "name", "head_branch", "outcome")


def nanos_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def window_filter(repository: str | None, start: datetime, end: datetime) -> list[dict[str, Any]]:
    clauses: list[dict[str, Any]] = [
        {"range": {"window_at": {"gte": nanos_time(start), "lt": nanos_time(end)}}}
    ]
    if repository is not None:
        clauses.append({"term": {"repository": repository}})
    return clauses


def measure_filter(measure: Measure) -> dict[str, Any]:
    field = MEASURE_FIELD[measure]
    clauses: list[dict[str, Any]] = [{"exists": {"field": field}}]
    if measure == "durations":
        clauses.append({"terms": {"outcome": ["success", "failure"]}})
    return {"bool": {"filter": clauses}}


# -- building and reading nested terms aggregations -------------------------------------------------------


def nested_terms(fields: tuple[str, ...], leaf: Mapping[str, Any]) -> dict[str, Any]:
    """terms(field 1) > terms(field 2) > ... > leaf aggregations; the leaf alone when there are no fields."""
    aggregations = dict(leaf)
    for field in reversed(fields):
        terms: dict[str, Any] = {"field": field, "size": MAX_GROUPS, "shard_size": MAX_GROUPS}
        if field == "head_branch" and fields == COUNT_FIELDS:
            terms["missing"] = NO_BRANCH
        aggregations = {"by": {"terms": terms, "aggs": aggregations}}
    return aggregations


def walk(
    node: Mapping[str, Any], depth: int, prefix: tuple[Any, ...] = ()
) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """(key tuple, leaf bucket) for every path through a `nested_terms` result."""
    if depth == 0:
        yield prefix, node
        return
    terms = node["by"]
    if terms.get("sum_other_doc_count", 0):
        raise SearchRequestError(
            f"more than {MAX_GROUPS} groups in one window: facts would be incomplete, narrow the window"
        )
    for bucket in terms["buckets"]:
        yield from walk(bucket, depth - 1, (*prefix, bucket["key"]))


def group_key(level: Level, values: tuple[Any, ...]) -> GroupKey:
    if level == "all":
        return (None, None, None, None)
    if level == "repository":
        return (values[0], None, None, None)
    if level == "workflow":
        return (values[0], values[1], None, None)
    if level == "job":
        return (values[0], values[1], values[2], None)
    return (values[0], None, None, values[1])


def _histogram(field: str, interval: int) -> dict[str, Any]:
    return {"histogram": {"field": field, "interval": interval, "min_doc_count": 1}}


# -- pure percentile helpers ------------------------------------------------------------------------------


def needed_buckets(buckets: Mapping[int, int]) -> set[int]:
    """Lower bounds of the buckets holding the p50/p90/p95 ranks of these bucket counts."""
    total = sum(buckets.values())
    if not total:
        return set()
    wanted = sorted(rank(p, total) for p in PERCENTILES)
    needed: set[int] = set()
    seen = 0
    for lower in sorted(buckets):
        seen += buckets[lower]
        while wanted and wanted[0] <= seen:
            needed.add(lower)
            wanted.pop(0)
        if not wanted:
            break
    return needed


def mix_counts(buckets: Mapping[int, int], exact: Mapping[int, int], needed: set[int]) -> Counter[int]:
    """Exact value counts inside the needed buckets, the bucket's lower bound standing for the others."""
    mixed = Counter({lower: count for lower, count in buckets.items() if lower not in needed})
    for value, count in exact.items():
        if (value // BUCKET_SECONDS) * BUCKET_SECONDS in needed:
            mixed[value] += count
    return mixed


# -- the two requests -------------------------------------------------------------------------------------


def _first_request(filters: list[dict[str, Any]]) -> dict[str, Any]:
    """One tree down to (finest group, outcome): counts, sums, billable minutes per runner label set, and
    the duration and queue histograms, so each document passes through a dozen collectors only."""
    queue_known = {"exists": {"field": "queue_s"}}
    per_outcome = {
        "seconds": {"sum": {"field": "duration_s"}},
        "labels": {
            "terms": {"field": "labels_key", "size": MAX_GROUPS, "shard_size": MAX_GROUPS},
            "aggs": {"billable": {"sum": {"field": "billable_minutes"}}},
        },
        "queue_exact": {"filter": {"bool": {"filter": [queue_known, {"term": {"queue_exact": True}}]}}},
        "queue_estimated": {"filter": {"bool": {"filter": [queue_known, {"term": {"queue_exact": False}}]}}},
        "skew": {"filter": {"term": {"clock_skew": True}}},
        "durations": _histogram("duration_s", BUCKET_SECONDS),
        "queues": _histogram("queue_s", BUCKET_SECONDS),
    }
    return {
        "size": 0,
        "query": {"bool": {"filter": filters}},
        "aggs": nested_terms(COUNT_FIELDS, per_outcome),
    }


def _second_request(
    filters: list[dict[str, Any]], needed: Mapping[Measure, Mapping[Level, set[int]]]
) -> dict[str, Any] | None:
    """Per measure and level, a ``range`` aggregation over that level's needed buckets (a binary search
    per document, far cheaper than a filter of many ranges), with the level's groups and their exact
    value counts under it. One union per level, not per request, keeps the bucket count bounded."""
    aggregations: dict[str, Any] = {}
    for measure in MEASURES:
        field = MEASURE_FIELD[measure]
        per_level: dict[str, Any] = {}
        for level, fields in LEVEL_FIELDS.items():
            lowers = sorted(needed[measure].get(level, set()))
            if lowers:
                ranges = [{"from": low, "to": low + BUCKET_SECONDS} for low in lowers]
                leaf = nested_terms(fields, {"values": _histogram(field, 1)})
                per_level[level] = {"range": {"field": field, "ranges": ranges}, "aggs": leaf}
        if per_level:
            aggregations[measure] = {"filter": measure_filter(measure), "aggs": per_level}
    if not aggregations:
        return None
    return {"size": 0, "query": {"bool": {"filter": filters}}, "aggs": aggregations}


def _read_second(answer: Mapping[str, Any], measure: Measure, level: Level) -> dict[GroupKey, Counter[int]]:
    """Exact value counts per group of one level, summed over the (disjoint) needed ranges."""
    exact: dict[GroupKey, Counter[int]] = {}
    if level not in answer.get(measure, {}):
        return exact
    for needed_range in answer[measure][level]["buckets"]:
        for values, leaf in walk(needed_range, len(LEVEL_FIELDS[level])):
            exact.setdefault(group_key(level, values), Counter()).update(_histogram_counts(leaf["values"]))
    return exact


def _histogram_counts(histogram: Mapping[str, Any]) -> Counter[int]:
    return Counter({int(bucket["key"]): int(bucket["doc_count"]) for bucket in histogram["buckets"]})


FinestKey = tuple[str, str, str, str | None]


def _read_first(
    answer: Mapping[str, Any],
) -> tuple[dict[FinestKey, GroupTally], dict[Measure, dict[FinestKey, Counter[int]]]]:
    tallies: dict[FinestKey, GroupTally] = {}
    histograms: dict[Measure, dict[FinestKey, Counter[int]]] = {measure: {} for measure in MEASURES}
    for (repository, workflow, job, branch, outcome), leaf in walk(answer, len(COUNT_FIELDS)):
        finest: FinestKey = (repository, workflow, job, None if branch == NO_BRANCH else branch)
        part = GroupTally()
        part.outcomes[outcome] = int(leaf["doc_count"])
        part.job_seconds = int(leaf["seconds"]["value"])
        if leaf["labels"].get("sum_other_doc_count", 0):
            raise SearchRequestError(f"more than {MAX_GROUPS} runner label sets in one group")
        for labels in leaf["labels"]["buckets"]:
            billable = int(labels["billable"]["value"])
            if billable:
                part.billable_by_labels[labels["key"]] += billable
        part.queue_exact_count = int(leaf["queue_exact"]["doc_count"])
        part.queue_estimated_count = int(leaf["queue_estimated"]["doc_count"])
        part.clock_skew_count = int(leaf["skew"]["doc_count"])
        tallies.setdefault(finest, GroupTally()).merge(part)
        if outcome in VERDICT_OUTCOMES:
            histograms["durations"].setdefault(finest, Counter()).update(_histogram_counts(leaf["durations"]))
        histograms["queues"].setdefault(finest, Counter()).update(_histogram_counts(leaf["queues"]))
    return tallies, histograms


def levels_of(finest: FinestKey) -> list[tuple[Level, GroupKey]]:
    """The groups of every level a finest group belongs to, the overall one included."""
    groups: list[tuple[Level, GroupKey]] = [("all", (None, None, None, None))]
    groups += [(level, key) for level, key in group_keys(*finest).items() if key is not None]
    return groups


def window_facts(
    client: SearchClient,
    index: str,
    repository: str | None,
    start: datetime,
    end: datetime,
    rates: RunnerRates | None = None,
    *,
    request_cache: bool = True,
) -> WindowFacts:
    check_window(start, end)
    cache = "true" if request_cache else "false"
    filters = window_filter(repository, start, end)
    first = client.search(index, _first_request(filters), request_cache=cache).get("aggregations")
    overall = GroupTally()
    by_level: dict[Level, dict[GroupKey, GroupTally]] = {level: {} for level in LEVELS}
    if first is None:  # no index at all yet
        return assemble(repository, start, end, overall, by_level, rates)

    finest_tallies, finest_histograms = _read_first(first)
    histograms: dict[Measure, dict[Level, dict[GroupKey, Counter[int]]]] = {
        measure: {level: {} for level in LEVEL_FIELDS} for measure in MEASURES
    }
    for measure in MEASURES:
        for finest, counts in finest_histograms[measure].items():
            for level, key in levels_of(finest):
                histograms[measure][level].setdefault(key, Counter()).update(counts)
    # one union of needed buckets per level: a group ignores its neighbours' buckets (`mix_counts`)
    needed = {
        measure: {
            level: {lower for counts in groups.values() for lower in needed_buckets(counts)}
            for level, groups in histograms[measure].items()
        }
        for measure in MEASURES
    }
    second_body = _second_request(filters, needed)
    second = client.search(index, second_body, request_cache=cache)["aggregations"] if second_body else {}

    for finest, tally in finest_tallies.items():
        for level, key in levels_of(finest):
            target = overall if level == "all" else by_level[level].setdefault(key, GroupTally())
            target.merge(tally)
    for measure in MEASURES:
        for level in LEVEL_FIELDS:
            exact = _read_second(second, measure, level)
            for key, buckets in histograms[measure][level].items():
                mixed = mix_counts(buckets, exact.get(key, Counter()), needed_buckets(buckets))
                target = overall if level == "all" else by_level[level][key]
                getattr(target, measure).update(mixed)
    return assemble(repository, start, end, overall, by_level, rates)
