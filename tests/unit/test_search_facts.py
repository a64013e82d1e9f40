"""The two-pass percentile scheme of the search store gives exact nearest-rank percentiles at every level.

The engine's part (bucket counts, then exact counts inside the needed buckets) is simulated here from
raw values; the integration tests check the same against real engines and SQLite.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from cipulse.metrics.percentiles import PERCENTILES, nearest_rank_from_counts, percentiles_of
from cipulse.store.search_facts import BUCKET_SECONDS, FinestKey, levels_of, mix_counts, needed_buckets
from cipulse.store.search_mappings import IndexLayout, month_start, month_suffix, next_month

FINEST_KEYS: list[FinestKey] = [
    ("octo/a", "CI", "build", "main"),
    ("octo/a", "CI", "build", None),
    ("octo/a", "CI", "test", "main"),
    ("octo/a", "Release", "publish", "dev"),
    ("octo/b", "CI", "build", "main"),
]


def simulate_engine(values: dict[FinestKey, list[int]]) -> dict[FinestKey, Counter[int]]:
    buckets = {
        finest: Counter((value // BUCKET_SECONDS) * BUCKET_SECONDS for value in group)
        for finest, group in values.items()
        if group
    }
    needed = needed_buckets(buckets)
    exact = {
        finest: Counter(value for value in group if (value // BUCKET_SECONDS) * BUCKET_SECONDS in needed)
        for finest, group in values.items()
    }
    return mix_counts(buckets, exact, needed)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(FINEST_KEYS), st.integers(min_value=0, max_value=20_000)),
        min_size=0,
        max_size=400,
    )
)
def test_mixed_counts_give_exact_percentiles_at_every_level(pairs: list[tuple[FinestKey, int]]) -> None:
    values: dict[FinestKey, list[int]] = {}
    for finest, value in pairs:
        values.setdefault(finest, []).append(value)
    mixed = simulate_engine(values)

    raw_by_group: dict[object, list[int]] = {}
    mixed_by_group: dict[object, Counter[int]] = {}
    for finest, group in values.items():
        for level_key in levels_of(finest):
            raw_by_group.setdefault(level_key, []).extend(group)
            mixed_by_group.setdefault(level_key, Counter()).update(mixed.get(finest, Counter()))

    for group_key, raw in raw_by_group.items():
        expected = percentiles_of(raw)
        got = nearest_rank_from_counts(mixed_by_group[group_key].items())
        assert got == expected, group_key
        assert sum(mixed_by_group[group_key].values()) == len(raw)


def test_needed_buckets_are_few_for_spread_values() -> None:
    values = {FINEST_KEYS[0]: list(range(0, 6000, 7))}
    needed = needed_buckets(
        {k: Counter((v // BUCKET_SECONDS) * BUCKET_SECONDS for v in vs) for k, vs in values.items()}
    )
    # one finest group rolls up into overall, repository, workflow, job and branch: same values, same ranks
    assert len(needed) == len(PERCENTILES)


def test_monthly_index_names() -> None:
    layout = IndexLayout("cipulse")
    assert month_suffix(datetime(2026, 12, 31, 23, 59, tzinfo=UTC)) == "2026.12"
    assert month_suffix(None) == "undated"
    assert month_start("2026.03") == datetime(2026, 3, 1, tzinfo=UTC)
    assert month_start("undated") is None
    assert next_month(datetime(2026, 12, 1, tzinfo=UTC)) == datetime(2027, 1, 1, tzinfo=UTC)
    assert layout.suffix("cipulse-jobs-2026.03") == "2026.03"
    templates = layout.templates()
    assert set(templates) == {"cipulse-runs", "cipulse-jobs", "cipulse-watermarks"}
    for template in templates.values():
        assert template["template"]["mappings"]["dynamic"] == "strict"


def test_index_prefix_is_validated() -> None:
    for bad in ("", "Cipulse", "a b", "a*b", "a/b"):
        try:
            IndexLayout(bad)
        except ValueError as error:
            assert "prefix" in str(error)
        else:
            raise AssertionError(f"{bad!r} accepted")
