"""Pure helpers of the search store's scans and window facts, without an engine.

Round 2 of the search store's window facts asks the engine for exact values only inside the histogram
buckets that hold each group's p50/p90/p95 ranks (`needed_values_filter`). These tests evaluate the query
it builds on in-memory documents with the engines' bool/range/term semantics, so a filter that drops a
needed value, or a clause cap that narrows the covering range, shows up as a wrong percentile here.
"""

from __future__ import annotations

import itertools
import operator
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cipulse.metrics.facts import GroupKey, Level
from cipulse.metrics.percentiles import nearest_rank_from_counts, percentiles_of
from cipulse.store import search_facts
from cipulse.store.search_client import Engine, EngineInfo
from cipulse.store.search_facts import (
    BUCKET_SECONDS,
    LEVEL_FIELDS,
    MAX_GROUP_CLAUSES,
    MEASURE_FIELD,
    FinestKey,
    Measure,
    levels_of,
    measure_filter,
    mix_counts,
    nanos_time,
    needed_buckets,
    needed_ranges,
    needed_values_filter,
    terms_sources,
    window_filter,
    within,
)
from cipulse.store.search_scan import Composite, PointInTime, supports_pit

# -- a small evaluator of the query DSL the helpers emit ---------------------------------------------------

_RANGE_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "gte": operator.ge,
    "gt": operator.gt,
    "lte": operator.le,
    "lt": operator.lt,
}


def matches(query: Mapping[str, Any], document: Mapping[str, Any]) -> bool:
    """Whether `document` matches `query`, as Elasticsearch/OpenSearch decide it for these clause kinds.

    A bool query with only `should` clauses needs one of them; with `filter`/`must` clauses too, its
    `should` clauses are optional; a bool query with no clause at all matches every document."""
    ((kind, body),) = query.items()
    if kind == "bool":
        unknown = set(body) - {"filter", "must", "should"}
        assert not unknown, f"evaluator does not know {unknown}"
        required = [*body.get("filter", []), *body.get("must", [])]
        should = body.get("should", [])
        if not all(matches(clause, document) for clause in required):
            return False
        if should and not required:
            return any(matches(clause, document) for clause in should)
        return True
    if kind == "range":
        ((field, bounds),) = body.items()
        value = document.get(field)
        return value is not None and all(_RANGE_OPS[op](value, bound) for op, bound in bounds.items())
    if kind == "term":
        ((field, value),) = body.items()
        return bool(document.get(field) == value)
    if kind == "terms":
        ((field, values),) = body.items()
        return document.get(field) in values
    if kind == "exists":
        return document.get(body["field"]) is not None
    raise AssertionError(f"evaluator does not know {kind!r} queries")


def leaf_clauses(query: Mapping[str, Any]) -> int:
    """Leaf queries in the tree: what the engines' max clause count limits."""
    ((kind, body),) = query.items()
    if kind == "bool":
        return sum(leaf_clauses(clause) for part in body.values() for clause in part)
    return 1


def test_the_evaluator_follows_engine_bool_semantics() -> None:
    doc = {"a": 1, "b": "x"}
    assert matches({"bool": {"should": []}}, doc)  # no clause: match_all
    assert not matches({"bool": {"should": [{"term": {"b": "y"}}]}}, doc)
    assert matches({"bool": {"filter": [{"term": {"b": "x"}}], "should": [{"term": {"b": "y"}}]}}, doc)
    assert not matches({"range": {"a": {"gte": 2, "lt": 3}}}, doc)
    assert matches({"range": {"a": {"gte": 1, "lt": 2}}}, doc)
    assert not matches({"range": {"c": {"gte": 0}}}, doc)
    assert (
        leaf_clauses({"bool": {"should": [{"term": {"b": "y"}}, {"bool": {"filter": [{"exists": {}}]}}]}})
        == 2
    )


def ranges_of(query: Mapping[str, Any], field: str) -> list[tuple[int, int]]:
    """The [gte, lt) pairs of a `within` query."""
    pairs = []
    for clause in query["bool"]["should"]:
        bounds = clause["range"][field]
        assert set(bounds) == {"gte", "lt"}
        pairs.append((bounds["gte"], bounds["lt"]))
    return pairs


def covered(pairs: list[tuple[int, int]]) -> set[int]:
    return {lower for low, high in pairs for lower in range(low, high, BUCKET_SECONDS)}


# -- needed_buckets and needed_ranges ----------------------------------------------------------------------


def test_needed_buckets_by_hand() -> None:
    assert needed_buckets({}) == set()
    assert needed_buckets({0: 0, 60: 0}) == set()
    # one value: every percentile is it
    assert needed_buckets({120: 1}) == {120}
    # 20 values: ranks 10 (p50), 18 (p90), 19 (p95)
    assert needed_buckets({0: 9, 60: 1, 120: 7, 180: 1, 240: 1, 300: 1}) == {60, 180, 240}
    assert needed_buckets({0: 10, 60: 10}) == {0, 60}
    # empty buckets between never hold a rank
    assert needed_buckets({0: 1, 60: 0, 120: 1}) == {0, 120}
    # 100 values: ranks 50, 90, 95; unsorted input
    assert needed_buckets({600: 5, 0: 50, 300: 40, 900: 5}) == {0, 300, 600}


def test_needed_ranges_by_hand() -> None:
    assert needed_ranges([]) == []
    assert needed_ranges([0]) == [(0, 60)]
    assert needed_ranges([120, 0, 60]) == [(0, 180)]
    assert needed_ranges([0, 120]) == [(0, 60), (120, 180)]
    assert needed_ranges([60, 60, 600]) == [(60, 120), (600, 660)]
    assert needed_ranges([-60, 0, 180]) == [(-60, 60), (180, 240)]
    assert needed_ranges(iter([300, 240])) == [(240, 360)]  # any iterable, read once


lowers_st = st.sets(st.integers(min_value=-20, max_value=400).map(lambda n: n * BUCKET_SECONDS), max_size=60)


@settings(max_examples=300, deadline=None)
@given(lowers_st)
def test_needed_ranges_are_the_fewest_exact_cover(lowers: set[int]) -> None:
    ranges = needed_ranges(lowers)
    assert covered(ranges) == lowers  # every needed bucket, nothing else
    for low, high in ranges:
        assert low % BUCKET_SECONDS == 0 and high % BUCKET_SECONDS == 0 and low < high
    for (_, high), (low, _) in itertools.pairwise(ranges):
        assert high < low  # sorted, and adjacent buckets were merged: fewest ranges
    # the number of ranges is the number of runs of consecutive buckets
    assert len(ranges) == sum(1 for lower in lowers if lower - BUCKET_SECONDS not in lowers)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(min_value=-600, max_value=30_000), min_size=1, max_size=300))
def test_needed_ranges_hold_every_rank_a_percentile_needs(values: list[int]) -> None:
    """The value at every p50/p90/p95 rank lies inside one of the ranges asked in round 2."""
    buckets = Counter((value // BUCKET_SECONDS) * BUCKET_SECONDS for value in values)
    ranges = needed_ranges(needed_buckets(buckets))
    assert len(ranges) <= 3
    for p, value in percentiles_of(values).items():
        assert value is not None
        assert any(low <= value < high for low, high in ranges), (p, value, ranges)


# -- within: the covering-range cap ------------------------------------------------------------------------


def spaced(count: int) -> list[int]:
    """`count` needed buckets with a gap after each: `count` separate ranges."""
    return [index * 2 * BUCKET_SECONDS for index in range(count)]


def test_within_asks_each_range_up_to_the_cap() -> None:
    query = within("duration_s", [0, 60, 300])
    assert query == {
        "bool": {
            "should": [
                {"range": {"duration_s": {"gte": 0, "lt": 120}}},
                {"range": {"duration_s": {"gte": 300, "lt": 360}}},
            ]
        }
    }
    at_cap = within("queue_s", spaced(MAX_GROUP_CLAUSES))
    assert ranges_of(at_cap, "queue_s") == needed_ranges(spaced(MAX_GROUP_CLAUSES))
    assert leaf_clauses(at_cap) == MAX_GROUP_CLAUSES


def test_within_past_the_cap_asks_one_covering_range() -> None:
    lowers = spaced(MAX_GROUP_CLAUSES + 1)
    query = within("queue_s", lowers)
    assert ranges_of(query, "queue_s") == [(0, lowers[-1] + BUCKET_SECONDS)]
    # negative buckets (clock skew) are covered too
    shifted = [lower - 10 * BUCKET_SECONDS for lower in lowers]
    assert ranges_of(within("queue_s", shifted), "queue_s") == [(shifted[0], shifted[-1] + BUCKET_SECONDS)]


@settings(max_examples=200, deadline=None)
@given(lowers_st.filter(bool), st.sampled_from([1, 2, 5, MAX_GROUP_CLAUSES]))
def test_within_never_drops_a_needed_value(lowers: set[int], cap: int) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(search_facts, "MAX_GROUP_CLAUSES", cap)
        query = within("duration_s", lowers)
    assert leaf_clauses(query) <= cap
    for lower in lowers:
        for value in (lower, lower + 1, lower + BUCKET_SECONDS - 1):
            assert matches(query, {"duration_s": value})
    # below the first and from the end of the last needed bucket on, nothing is asked
    assert not matches(query, {"duration_s": min(lowers) - 1})
    assert not matches(query, {"duration_s": max(lowers) + BUCKET_SECONDS})


# -- needed_values_filter ----------------------------------------------------------------------------------

REPOS = ("octo/alpha", "octo/beta", "octo/gamma")
WORKFLOWS = ("CI", "Deploy")
JOBS = ("build", "test", "lint")
BRANCHES = ("main", "dev", None)


def level_key(level: Level, finest: FinestKey) -> GroupKey | None:
    return dict(levels_of(finest)).get(level)


def document(finest: FinestKey, measure: Measure, value: int) -> dict[str, Any]:
    repository, workflow, name, branch = finest
    return {
        "repository": repository,
        "workflow_name": workflow,
        "name": name,
        "head_branch": branch,
        MEASURE_FIELD[measure]: value,
    }


def round_two(
    measure: Measure, level: Level, rows: list[tuple[FinestKey, int]]
) -> tuple[dict[GroupKey, list[int]], dict[GroupKey, Counter[int]]]:
    """Each group's values and the counts round 2 makes of them (histogram + exact values the filter
    lets through, grouped by the level's fields as the engine's composite does)."""
    values: defaultdict[GroupKey, list[int]] = defaultdict(list)
    for finest, value in rows:
        key = level_key(level, finest)
        if key is not None:
            values[key].append(value)
    histograms = {
        key: Counter((v // BUCKET_SECONDS) * BUCKET_SECONDS for v in found) for key, found in values.items()
    }
    needed = {key: needed_buckets(counts) for key, counts in histograms.items()}
    query = needed_values_filter(measure, level, needed)
    if not values:  # e.g. branch rows when no job has a branch: nothing to ask
        assert query is None
        return {}, {}
    assert query is not None
    assert leaf_clauses(query) <= search_facts.MAX_GROUP_CLAUSES
    exact: defaultdict[GroupKey, Counter[int]] = defaultdict(Counter)
    for finest, value in rows:
        key = level_key(level, finest)
        if key is not None and matches(query, document(finest, measure, value)):
            exact[key][value] += 1
    mixed = {key: mix_counts(histograms[key], exact[key], needed[key]) for key in histograms}
    return dict(values), mixed


finest_st = st.tuples(
    st.sampled_from(REPOS), st.sampled_from(WORKFLOWS), st.sampled_from(JOBS), st.sampled_from(BRANCHES)
)
rows_st = st.lists(
    st.tuples(finest_st, st.integers(min_value=-120, max_value=6_000)), min_size=1, max_size=150
)


@settings(max_examples=300, deadline=None)
@given(
    rows_st,
    st.sampled_from(["all", *LEVEL_FIELDS]),
    st.sampled_from(["durations", "queues"]),
    st.sampled_from([1, 3, 8, 20, MAX_GROUP_CLAUSES]),
)
def test_round_two_gives_exact_percentiles_per_group_at_any_cap(
    rows: list[tuple[FinestKey, int]], level: Level, measure: Measure, cap: int
) -> None:
    """Whether the filter asks per group, one union, or one covering range (small caps force the last
    two), every group's mixed counts give its exact nearest-rank percentiles."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(search_facts, "MAX_GROUP_CLAUSES", cap)
        values, mixed = round_two(measure, level, rows)
    if level == "all":
        assert len(values) == 1
    for key, found in values.items():
        assert sum(mixed[key].values()) == len(found)
        assert nearest_rank_from_counts(mixed[key].items()) == percentiles_of(found), key


def test_no_needed_bucket_means_no_query() -> None:
    assert needed_values_filter("durations", "job", {}) is None
    assert needed_values_filter("queues", "repository", {("octo/alpha", None, None, None): set()}) is None


def test_overall_level_asks_only_the_value_ranges() -> None:
    query = needed_values_filter("queues", "all", {(None, None, None, None): {0, 60, 600}})
    assert query == within("queue_s", [0, 60, 600])


def test_small_levels_ask_each_group_its_own_buckets() -> None:
    needed: dict[GroupKey, set[int]] = {
        ("octo/alpha", "CI", "build", None): {0, 60},
        ("octo/beta", "CI", "build", None): {600},
        ("octo/beta", "Deploy", "test", None): set(),  # nothing needed: left out
    }
    query = needed_values_filter("durations", "job", needed)
    assert query == {
        "bool": {
            "should": [
                {
                    "bool": {
                        "filter": [
                            {"term": {"repository": "octo/alpha"}},
                            {"term": {"workflow_name": "CI"}},
                            {"term": {"name": "build"}},
                            within("duration_s", [0, 60]),
                        ]
                    }
                },
                {
                    "bool": {
                        "filter": [
                            {"term": {"repository": "octo/beta"}},
                            {"term": {"workflow_name": "CI"}},
                            {"term": {"name": "build"}},
                            within("duration_s", [600]),
                        ]
                    }
                },
            ]
        }
    }
    # another group's bucket is not asked for this group
    assert not matches(query, document(("octo/alpha", "CI", "build", "main"), "durations", 600))
    assert matches(query, document(("octo/beta", "CI", "build", None), "durations", 659))
    assert not matches(query, document(("octo/beta", "Deploy", "test", None), "durations", 600))


def test_branch_groups_are_told_apart_by_repository_and_branch() -> None:
    needed: dict[GroupKey, set[int]] = {("octo/alpha", None, None, "main"): {120}}
    query = needed_values_filter("queues", "branch", needed)
    assert query is not None
    assert matches(query, document(("octo/alpha", "any", "any", "main"), "queues", 150))
    assert not matches(query, document(("octo/beta", "any", "any", "main"), "queues", 150))
    assert not matches(query, document(("octo/alpha", "any", "any", "dev"), "queues", 150))


def repository_groups(count: int) -> dict[GroupKey, set[int]]:
    """`count` repository groups of one needed bucket each: 2 clauses per group (term + range)."""
    return {(f"octo/r{index}", None, None, None): {index * 2 * BUCKET_SECONDS} for index in range(count)}


def test_per_group_up_to_the_clause_cap_then_one_union() -> None:
    at_cap = needed_values_filter("durations", "repository", repository_groups(MAX_GROUP_CLAUSES // 2))
    assert at_cap is not None
    assert len(at_cap["bool"]["should"]) == MAX_GROUP_CLAUSES // 2  # one clause per group
    assert leaf_clauses(at_cap) == MAX_GROUP_CLAUSES

    past = repository_groups(MAX_GROUP_CLAUSES // 2 + 1)
    union = needed_values_filter("durations", "repository", past)
    assert union == within("duration_s", set().union(*past.values()))
    assert leaf_clauses(union) == len(past)  # no repository terms, one range per bucket


def test_a_union_past_the_cap_becomes_one_covering_range() -> None:
    groups = repository_groups(MAX_GROUP_CLAUSES + 5)
    query = needed_values_filter("queues", "repository", groups)
    last = max(lower for lowers in groups.values() for lower in lowers)
    assert query is not None
    assert ranges_of(query, "queue_s") == [(0, last + BUCKET_SECONDS)]
    for (repository, *_), lowers in groups.items():
        for lower in lowers:
            assert matches(query, {"queue_s": lower + 30, "repository": repository})


# -- query pieces ------------------------------------------------------------------------------------------


def test_nanos_time_is_utc_with_microseconds() -> None:
    paris = timezone(timedelta(hours=1))
    assert nanos_time(datetime(2026, 3, 1, 1, 0, 0, 5, tzinfo=paris)) == "2026-03-01T00:00:00.000005Z"
    assert nanos_time(datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC)) == "2026-12-31T23:59:59.000000Z"


def test_window_filter_is_half_open_and_optionally_per_repository() -> None:
    start = datetime(2026, 3, 1, tzinfo=UTC)
    end = datetime(2026, 3, 8, tzinfo=UTC)
    everywhere = window_filter(None, start, end)
    assert everywhere == [
        {"range": {"window_at": {"gte": "2026-03-01T00:00:00.000000Z", "lt": "2026-03-08T00:00:00.000000Z"}}}
    ]
    one = window_filter("octo/alpha", start, end)
    assert one == [*everywhere, {"term": {"repository": "octo/alpha"}}]
    query = {"bool": {"filter": one}}
    # the same-width UTC strings order as the instants they spell
    assert matches(query, {"window_at": nanos_time(start), "repository": "octo/alpha"})
    assert not matches(query, {"window_at": nanos_time(end), "repository": "octo/alpha"})
    assert not matches(query, {"window_at": nanos_time(start), "repository": "octo/beta"})
    assert not matches(
        query, {"window_at": nanos_time(start - timedelta(microseconds=1)), "repository": "octo/alpha"}
    )


def test_durations_count_only_verdicts_queues_count_every_outcome() -> None:
    durations = {"bool": {"filter": measure_filter("durations")}}
    queues = {"bool": {"filter": measure_filter("queues")}}
    for outcome in ("success", "failure"):
        assert matches(durations, {"duration_s": 10, "outcome": outcome})
    for other in ("cancelled", "skipped", "timed_out", None):
        assert not matches(durations, {"duration_s": 10, "outcome": other})
        assert matches(queues, {"queue_s": 10, "outcome": other})
    assert not matches(durations, {"duration_s": None, "outcome": "success"})
    assert not matches(queues, {"queue_s": None, "outcome": "success"})
    assert measure_filter("durations")[1] == {"terms": {"outcome": ["failure", "success"]}}  # stable body


def test_terms_sources_use_short_names_and_keep_documents_missing_optional_fields() -> None:
    sources = terms_sources(("repository", "workflow_name", "name", "head_branch", "outcome", "labels_key"))
    assert sources == [
        {"r": {"terms": {"field": "repository"}}},
        {"w": {"terms": {"field": "workflow_name"}}},
        {"n": {"terms": {"field": "name"}}},
        {"b": {"terms": {"field": "head_branch", "missing_bucket": True}}},
        {"o": {"terms": {"field": "outcome"}}},
        {"l": {"terms": {"field": "labels_key", "missing_bucket": True}}},
    ]
    assert terms_sources(()) == []


def test_levels_of_a_finest_group() -> None:
    assert levels_of(("o/r", "CI", "build", "main")) == [
        ("all", (None, None, None, None)),
        ("repository", ("o/r", None, None, None)),
        ("workflow", ("o/r", "CI", None, None)),
        ("job", ("o/r", "CI", "build", None)),
        ("branch", ("o/r", None, None, "main")),
    ]
    # a job without a branch counts everywhere but in branch rows
    assert [level for level, _ in levels_of(("o/r", "CI", "build", None))] == [
        "all",
        "repository",
        "workflow",
        "job",
    ]


WINDOW = (datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC))


@settings(max_examples=100, deadline=None)
@given(finest_st, st.integers(min_value=0, max_value=BUCKET_SECONDS - 1))
def test_round_two_composites_read_back_into_the_groups_they_asked(finest: FinestKey, value: int) -> None:
    """The sources round 2 asks per level name the fields its reader turns back into group keys: a
    document of a finest group passes its query and lands in that group at every level."""
    groups = dict(levels_of(finest))
    needed: dict[Measure, dict[Level, dict[GroupKey, set[int]]]] = {
        measure: {level: ({groups[level]: {0}} if level in groups else {}) for level in LEVEL_FIELDS}
        for measure in search_facts.MEASURES
    }
    composites = search_facts._second_round(window_filter(None, *WINDOW), needed)
    assert set(composites) == {(measure, level) for measure in search_facts.MEASURES for level in groups}
    doc = document(finest, "durations", value) | {
        "queue_s": value,
        "outcome": "success",
        "window_at": nanos_time(WINDOW[0]),
    }
    for (measure, level), composite in composites.items():
        fields = LEVEL_FIELDS[level]
        assert list(composite.sources) == [
            *terms_sources(fields),
            {"v": {"terms": {"field": MEASURE_FIELD[measure]}}},
        ]
        query = {"bool": {"filter": list(composite.query)}}
        assert matches(query, doc)
        assert not matches(query, doc | {MEASURE_FIELD[measure]: BUCKET_SECONDS})  # outside bucket 0
        # round 2 reads the population round 1 counted: durations of verdicts only, queues of every job
        assert matches(query, doc | {"outcome": "cancelled"}) is (measure == "queues")
        assert not matches(query, doc | {MEASURE_FIELD[measure]: None})
        key = {search_facts.SOURCE_NAME[field]: doc[field] for field in fields} | {"v": value}
        exact = search_facts._read_second([{"key": key, "doc_count": 2}], level)
        assert exact == {groups[level]: Counter({value: 2})}, (measure, level)


# -- point in time -----------------------------------------------------------------------------------------


def engine(kind: Engine, version: str) -> EngineInfo:
    return EngineInfo(engine=kind, version=version, modules=frozenset())


@pytest.mark.parametrize(
    ("kind", "version", "expected"),
    [
        ("elasticsearch", "8.15.3", True),
        ("elasticsearch", "9.0.0", True),
        ("elasticsearch", "7.17.0", True),
        ("opensearch", "2.4.0", True),
        ("opensearch", "2.4", True),
        ("opensearch", "2.19.1", True),  # numeric, not text, order: "2.19" < "2.4" as text
        ("opensearch", "2.10.0", True),
        ("opensearch", "3.0.0", True),
        ("opensearch", "3.3.1", True),
        ("opensearch", "2.4.0-SNAPSHOT", True),
        ("opensearch", "3.0.0-alpha1", True),
        ("opensearch", "2.5-SNAPSHOT", True),  # the qualifier is dropped before reading the numbers
        ("opensearch", "2.3-SNAPSHOT", False),
        ("opensearch", "2.3.0", False),
        ("opensearch", "2.3.99", False),
        ("opensearch", "2", False),
        ("opensearch", "1.3.19", False),
        ("opensearch", "1.10.0", False),
    ],
)
def test_supports_pit_per_engine_and_version(kind: Engine, version: str, expected: bool) -> None:
    assert supports_pit(engine(kind, version)) is expected


@settings(max_examples=300, deadline=None)
@given(
    st.integers(min_value=0, max_value=12),
    st.integers(min_value=0, max_value=40),
    st.integers(min_value=0, max_value=40),
    st.sampled_from(["", "-SNAPSHOT", "-rc1"]),
)
def test_opensearch_has_pit_from_2_4_on(major: int, minor: int, patch: int, suffix: str) -> None:
    version = f"{major}.{minor}.{patch}{suffix}"
    assert supports_pit(engine("opensearch", version)) is ((major, minor) >= (2, 4))
    assert supports_pit(engine("elasticsearch", version))


def test_only_elasticsearch_gets_the_shard_doc_tiebreak() -> None:
    assert PointInTime(engine("elasticsearch", "8.15.3"), "a").tiebreak == [{"_shard_doc": "asc"}]
    assert PointInTime(engine("opensearch", "3.3.1"), "a").tiebreak == []
    pit = PointInTime(engine("opensearch", "2.19.1"), "a")
    pit.id = "b"  # the engine may hand out a new id each page
    assert pit.id == "b"


# -- composite aggregation bodies --------------------------------------------------------------------------


def test_composite_aggregation_body() -> None:
    sources = [{"r": {"terms": {"field": "repository"}}}]
    plain = Composite(query=[{"match_all": {}}], sources=sources)
    assert plain.aggregation(None, 10) == {"composite": {"size": 10, "sources": sources}}
    with_aggs = Composite(query=[], sources=sources, aggs={"s": {"sum": {"field": "duration_s"}}})
    paged = with_aggs.aggregation({"r": "octo/alpha"}, 500)
    assert paged == {
        "composite": {"size": 500, "sources": sources, "after": {"r": "octo/alpha"}},
        "aggs": {"s": {"sum": {"field": "duration_s"}}},
    }
    paged["composite"]["sources"].append({"x": {}})  # a body is a fresh copy: the composite stays reusable
    assert with_aggs.aggregation(None, 1)["composite"]["sources"] == [
        {"r": {"terms": {"field": "repository"}}}
    ]


def test_first_round_histograms_skip_documents_without_the_measure() -> None:
    """The histogram source carries no missing_bucket: a job without a queue time has no histogram key
    (a None key would break the reader), and durations count only verdicts."""
    filters = window_filter(None, datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC))
    composites = search_facts._first_round(filters)
    assert set(composites) == {"counts", "durations", "queues"}
    for measure in search_facts.MEASURES:
        histogram = composites[measure].sources[-1]
        assert histogram == {
            "k": {"histogram": {"field": MEASURE_FIELD[measure], "interval": BUCKET_SECONDS}}
        }
    assert list(composites["durations"].query) == [*filters, *measure_filter("durations")]
    assert list(composites["queues"].query) == filters
