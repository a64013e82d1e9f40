"""Nearest-rank percentiles: exact, integer-valued and reproducible by any engine that can count values.

Definition (used by every store): for ``n > 0`` values sorted ascending ``v[1] <= ... <= v[n]``, the p-th
percentile is ``v[k]`` with ``k = ceil(p * n / 100)`` (1-based, ``1 <= k <= n``), computed with integers as
``k = (p * n + 99) // 100``. No interpolation, so the answer is always one of the observed values and two
implementations agree exactly. With no values the percentile is ``None``.

A search engine reproduces it without pulling documents: a ``terms`` (or ``histogram`` with interval 1)
aggregation on the integer seconds field, ordered by key ascending, gives (value, count) pairs; feed them to
`nearest_rank_from_counts`. The engines' own ``percentiles`` aggregation (t-digest/HDR, interpolating) is
NOT this definition and must not be used where results are compared.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final

PERCENTILES: Final[tuple[int, ...]] = (50, 90, 95)


def rank(p: int, n: int) -> int:
    """1-based nearest rank of the p-th percentile among n values."""
    if not 0 < p <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {p}")
    if n <= 0:
        raise ValueError("rank of an empty set")
    return max(1, (p * n + 99) // 100)


def nearest_rank(sorted_values: Sequence[int], p: int) -> int | None:
    """The p-th nearest-rank percentile of already sorted values (None when empty)."""
    if not sorted_values:
        return None
    return sorted_values[rank(p, len(sorted_values)) - 1]


def percentiles_of(values: Iterable[int], ps: Sequence[int] = PERCENTILES) -> dict[int, int | None]:
    """Several nearest-rank percentiles of unsorted values."""
    ordered = sorted(values)
    return {p: nearest_rank(ordered, p) for p in ps}


def nearest_rank_from_counts(
    value_counts: Iterable[tuple[int, int]], ps: Sequence[int] = PERCENTILES
) -> dict[int, int | None]:
    """Nearest-rank percentiles from (value, count) pairs, e.g. a terms/histogram aggregation's buckets.

    Pairs may come in any order and a value may repeat (counts are summed).
    """
    merged: dict[int, int] = {}
    for value, count in value_counts:
        if count > 0:
            merged[value] = merged.get(value, 0) + count
    total = sum(merged.values())
    if total == 0:
        return {p: None for p in ps}
    wanted = sorted((rank(p, total), p) for p in ps)
    result: dict[int, int | None] = {}
    seen = 0
    index = 0
    for value in sorted(merged):
        seen += merged[value]
        while index < len(wanted) and wanted[index][0] <= seen:
            result[wanted[index][1]] = value
            index += 1
        if index == len(wanted):
            break
    return result
