"""Window facts computed inside Elasticsearch/OpenSearch: no job document leaves the engine.

Groups are read with composite aggregations paged by ``after_key`` (`search_scan.composite_buckets`), so a
window may hold any number of repositories, workflows, jobs and branches: nothing depends on a terms
``size``, and each page stays below the engines' default ``search.max_buckets`` (a cluster set lower
gets smaller pages: `search_scan.TooManyBuckets`). Two rounds, each one
``_msearch`` whose searches the engine runs side by side:

1. At the finest grain, (repository, workflow, job, branch): counts, sums and billable minutes per
   (outcome, runner label set); and the duration and queue histograms in `BUCKET_SECONDS` wide buckets.
   Everything here adds up, so Python rolls the finest groups up to every level (`GroupTally.merge`,
   histograms summed) and learns which bucket holds each group's p50/p90/p95.
2. Exact (value, count) pairs per group of every level, only for documents inside the needed buckets
   (``range`` queries pick them, per group while the query stays small, else one union per level; the
   rest of the window is never visited).

cipulse's percentiles are exact nearest-rank ones (`metrics.percentiles`), which the engines' t-digest/HDR
``percentiles`` aggregations do not compute. A group's value counts are made of its exact values inside the
needed buckets and one representative (the lower bound) per other bucket: buckets are disjoint ordered
intervals, so every value keeps its true order and the value at each asked rank, which lies in a needed
bucket by construction, is exact. Only group-level numbers travel; the response size depends on the
number of groups and buckets, not on the number of jobs.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
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
from cipulse.store.search_client import SearchClient
from cipulse.store.search_scan import Composite, composite_buckets

BUCKET_SECONDS: Final = 60
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
FINEST_FIELDS: Final = ("repository", "workflow_name", "name", "head_branch")
# Where each field sits in a `GroupKey`.
KEY_POSITION: Final = {"repository": 0, "workflow_name": 1, "name": 2, "head_branch": 3}
# Optional at the finest grain: a job without a branch still counts everywhere but in branch rows.
OPTIONAL_FIELDS: Final = frozenset({"head_branch", "labels_key"})
# Composite keys repeat every source name in every bucket: short names keep responses small.
SOURCE_NAME: Final = {
    "repository": "r",
    "workflow_name": "w",
    "name": "n",
    "head_branch": "b",
    "outcome": "o",
    "labels_key": "l",
}
# Up to this many query clauses, round 2 asks each group's own needed buckets (fewer documents and
# values); beyond, one union of needed buckets per level (any number of groups; engines cap the clauses
# of one query at 1,024 or more).
MAX_GROUP_CLAUSES: Final = 600
FinestKey = tuple[str, str, str, str | None]


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
        clauses.append({"terms": {"outcome": sorted(VERDICT_OUTCOMES)}})
    return clauses


def terms_sources(fields: Iterable[str]) -> list[dict[str, Any]]:
    """Composite sources (`SOURCE_NAME`); optional fields keep the documents that lack them."""
    sources = []
    for field in fields:
        terms: dict[str, Any] = {"field": field}
        if field in OPTIONAL_FIELDS:
            terms["missing_bucket"] = True
        sources.append({SOURCE_NAME[field]: {"terms": terms}})
    return sources


def levels_of(finest: FinestKey) -> list[tuple[Level, GroupKey]]:
    """The groups of every level a finest group belongs to, the overall one included."""
    groups: list[tuple[Level, GroupKey]] = [("all", (None, None, None, None))]
    groups += [(level, key) for level, key in group_keys(*finest).items() if key is not None]
    return groups


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


def needed_ranges(lowers: Iterable[int]) -> list[tuple[int, int]]:
    """Needed buckets as few [from, to) ranges: adjacent buckets merge, which keeps the query small."""
    ranges: list[tuple[int, int]] = []
    for lower in sorted(set(lowers)):
        if ranges and ranges[-1][1] == lower:
            ranges[-1] = (ranges[-1][0], lower + BUCKET_SECONDS)
        else:
            ranges.append((lower, lower + BUCKET_SECONDS))
    return ranges


# -- the two rounds ---------------------------------------------------------------------------------------


def _first_round(filters: list[dict[str, Any]]) -> dict[str, Composite]:
    """Counts per (finest group, outcome, runner label set) with their sums, and per finest group the
    histogram of each measure over its own population. Counts and queues share one pass over the window
    (a composite skips documents without a value for a source: those without a queue time)."""
    queue_known = {"exists": {"field": "queue_s"}}
    counts = Composite(
        query=filters,
        sources=terms_sources((*FINEST_FIELDS, "outcome", "labels_key")),
        aggs={
            "seconds": {"sum": {"field": "duration_s"}},
            "billable": {"sum": {"field": "billable_minutes"}},
            "queue_exact": {"filter": {"bool": {"filter": [queue_known, {"term": {"queue_exact": True}}]}}},
            "queue_estimated": {
                "filter": {"bool": {"filter": [queue_known, {"term": {"queue_exact": False}}]}}
            },
            "skew": {"filter": {"term": {"clock_skew": True}}},
        },
    )
    composites = {"counts": counts}
    for measure in MEASURES:
        histogram = {"histogram": {"field": MEASURE_FIELD[measure], "interval": BUCKET_SECONDS}}
        query = [*filters, *measure_filter(measure)] if measure == "durations" else filters
        composites[measure] = Composite(
            query=query, sources=[*terms_sources(FINEST_FIELDS), {"k": histogram}]
        )
    return composites


def within(field: str, lowers: Iterable[int]) -> dict[str, Any]:
    """Values inside these buckets; past `MAX_GROUP_CLAUSES` ranges, one range around all of them (more
    values than needed, which `mix_counts` ignores, rather than a query the engine refuses)."""
    ranges = needed_ranges(lowers)
    if len(ranges) > MAX_GROUP_CLAUSES:
        ranges = [(ranges[0][0], ranges[-1][1])]
    return {"bool": {"should": [{"range": {field: {"gte": low, "lt": high}}} for low, high in ranges]}}


def needed_values_filter(
    measure: Measure, level: Level, needed: Mapping[GroupKey, set[int]]
) -> dict[str, Any] | None:
    """Documents of this level's groups inside their needed buckets: each group's own buckets while the
    query stays small, else the union of all of them (`mix_counts` ignores a group's other values)."""
    field = MEASURE_FIELD[measure]
    fields = LEVEL_FIELDS[level]
    wanted = {key: buckets for key, buckets in needed.items() if buckets}
    if not wanted:
        return None
    clauses = sum(len(fields) + len(needed_ranges(buckets)) for buckets in wanted.values())
    if not fields or clauses > MAX_GROUP_CLAUSES:
        return within(field, set().union(*wanted.values()))
    per_group = [
        {"bool": {"filter": [{"term": {f: key[KEY_POSITION[f]]}} for f in fields] + [within(field, buckets)]}}
        for key, buckets in wanted.items()
    ]
    return {"bool": {"should": per_group}}


def _second_round(
    filters: list[dict[str, Any]], needed: Mapping[Measure, Mapping[Level, Mapping[GroupKey, set[int]]]]
) -> dict[tuple[Measure, Level], Composite]:
    """Per measure and level, the exact values of the level's groups inside their needed buckets (a
    search each: OR-ing the levels' filters into one search would make every level read the others')."""
    composites: dict[tuple[Measure, Level], Composite] = {}
    for measure in MEASURES:
        field = MEASURE_FIELD[measure]
        for level, fields in LEVEL_FIELDS.items():
            values_filter = needed_values_filter(measure, level, needed[measure][level])
            if values_filter is not None:
                composites[(measure, level)] = Composite(
                    query=[*filters, *measure_filter(measure), values_filter],
                    sources=[*terms_sources(fields), {"v": {"terms": {"field": field}}}],
                )
    return composites


def _finest(key: Mapping[str, Any]) -> FinestKey:
    return (key["r"], key["w"], key["n"], key["b"])


def _read_first(
    answers: Mapping[str, list[dict[str, Any]]],
) -> tuple[dict[FinestKey, GroupTally], dict[Measure, dict[FinestKey, Counter[int]]]]:
    tallies: defaultdict[FinestKey, GroupTally] = defaultdict(GroupTally)
    for bucket in answers["counts"]:
        key = bucket["key"]
        part = tallies[_finest(key)]
        part.outcomes[key["o"]] += int(bucket["doc_count"])
        part.job_seconds += int(bucket["seconds"]["value"])
        billable = int(bucket["billable"]["value"])
        if billable:
            part.billable_by_labels[key["l"]] += billable
        part.queue_exact_count += int(bucket["queue_exact"]["doc_count"])
        part.queue_estimated_count += int(bucket["queue_estimated"]["doc_count"])
        part.clock_skew_count += int(bucket["skew"]["doc_count"])
    histograms: dict[Measure, dict[FinestKey, Counter[int]]] = {}
    for measure in MEASURES:
        per_group: defaultdict[FinestKey, Counter[int]] = defaultdict(Counter)
        for bucket in answers[measure]:
            key = bucket["key"]
            per_group[_finest(key)][int(key["k"])] += int(bucket["doc_count"])
        histograms[measure] = per_group
    return tallies, histograms


# The group of a level, from a composite key of the level's sources.
_GROUP_OF: Final[dict[Level, Callable[[Mapping[str, Any]], GroupKey]]] = {
    "all": lambda key: (None, None, None, None),
    "repository": lambda key: (key["r"], None, None, None),
    "workflow": lambda key: (key["r"], key["w"], None, None),
    "job": lambda key: (key["r"], key["w"], key["n"], None),
    "branch": lambda key: (key["r"], None, None, key["b"]),
}


def _read_second(buckets: list[dict[str, Any]], level: Level) -> dict[GroupKey, Counter[int]]:
    """Exact value counts per group (tens of thousands of buckets: kept to plain dict operations)."""
    exact: defaultdict[GroupKey, Counter[int]] = defaultdict(Counter)
    group_of = _GROUP_OF[level]
    for bucket in buckets:
        key = bucket["key"]
        exact[group_of(key)][int(key["v"])] += int(bucket["doc_count"])
    return exact


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
    filters = window_filter(repository, start, end)
    first = composite_buckets(client, index, _first_round(filters), request_cache=request_cache)
    finest_tallies, finest_histograms = _read_first(first)

    overall = GroupTally()
    by_level: dict[Level, defaultdict[GroupKey, GroupTally]] = {
        level: defaultdict(GroupTally) for level in LEVELS
    }
    for finest, tally in finest_tallies.items():
        for level, key in levels_of(finest):
            (overall if level == "all" else by_level[level][key]).merge(tally)
    histograms: dict[Measure, dict[Level, defaultdict[GroupKey, Counter[int]]]] = {
        measure: {level: defaultdict(Counter) for level in LEVEL_FIELDS} for measure in MEASURES
    }
    for measure in MEASURES:
        for finest, counts in finest_histograms[measure].items():
            for level, key in levels_of(finest):
                histograms[measure][level][key].update(counts)
    needed = {
        measure: {
            level: {key: needed_buckets(counts) for key, counts in groups.items()}
            for level, groups in histograms[measure].items()
        }
        for measure in MEASURES
    }
    second = composite_buckets(client, index, _second_round(filters, needed), request_cache=request_cache)
    for measure in MEASURES:
        for level in LEVEL_FIELDS:
            exact = _read_second(second.get((measure, level), []), level)
            for key, buckets in histograms[measure][level].items():
                mixed = mix_counts(buckets, exact.get(key, Counter()), needed[measure][level][key])
                target = overall if level == "all" else by_level[level][key]
                getattr(target, measure).update(mixed)
    return assemble(repository, start, end, overall, by_level, rates)
