"""Which job indices could hold a given job id: the smallest and largest id search sees in each.

The writer (`search_ingest`) must find every stored copy of a batch's jobs outside the index each one
is written to now (a job moves when its window time changes). GitHub's ids grow with time, so a batch
of new jobs lies above every index's largest id, and a backfill of older history below every smallest
one: with the ranges at hand, most batches need no search at all. Asking the engine instead, once per
batch, cost it 4-12 ms of CPU per search on this project's 2-core benchmark machine, a large share of
what writing the batch itself costs.

The ranges of all job indices are read together (one search per index, in one `_msearch`; a minimum or
maximum of a numeric field over a whole index is read from the index's point metadata, not from its
documents) and kept for `RANGES_TTL_S`, the refresh interval of the store's templates.

Freshness. Search shows another process's writes only after a refresh (every second), so ranges read
once per interval show them at most one more interval later than a search per batch would. This
process's own writes are not in the ranges until the store's next explicit refresh: the writer tracks
them itself until then (`SearchWriter`), and that refresh drops the ranges (`forget`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, Final

from cipulse.store.search_client import SearchClient, incomplete

log = logging.getLogger(__name__)

RANGES_TTL_S: Final = 1.0  # the templates' refresh_interval
# min and max aggregations answer doubles: beyond 2**53 an id may be rounded, so that side is left open
EXACT_DOUBLE: Final = 2**53
LONG_MIN: Final = -(2**63)
LONG_MAX: Final = 2**63 - 1
ID_BOUNDS: Final = {
    "size": 0,
    "track_total_hits": False,
    "aggs": {"lowest": {"min": {"field": "job_id"}}, "highest": {"max": {"field": "job_id"}}},
}


class JobIdRanges:
    """Job id range per job index matching ``pattern``, re-read at most once per `RANGES_TTL_S`."""

    def __init__(
        self, client: SearchClient, pattern: str, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._client = client
        self._pattern = pattern
        self._clock = clock
        self._ranges: dict[str, tuple[int, int]] | None = None
        self._read_at = 0.0
        self._lock = threading.Lock()

    def holding(self, candidates: Iterable[str], lowest: int, highest: int) -> list[str]:
        """The indices among ``candidates`` (names, or a name prefix ending in ``*``) whose id range
        overlaps [lowest, highest]: no other index holds an id in that range."""
        chosen = named_by(candidates)
        return sorted(
            index
            for index, (low, high) in self._current().items()
            if low <= highest and high >= lowest and chosen(index)
        )

    def forget(self) -> None:
        """After a refresh: what search sees has changed, so the next question reads the ranges again."""
        with self._lock:
            self._ranges = None

    def _current(self) -> dict[str, tuple[int, int]]:
        with self._lock:
            if self._ranges is None or self._clock() - self._read_at >= RANGES_TTL_S:
                began = self._clock()  # writes refreshed after this point may be missing
                self._ranges = self._read()
                self._read_at = began
            return self._ranges

    def _read(self) -> dict[str, tuple[int, int]]:
        indices = self._client.indices(self._pattern)
        if not indices:
            return {}
        answers = self._client.msearch([(index, ID_BOUNDS) for index in indices])
        ranges = {}
        for index, answer in zip(indices, answers, strict=True):
            problem = incomplete(answer)
            if problem is not None:  # unknown: any id may be there, and the id lookup decides
                log.warning(
                    "job id range of %s unknown (%s): it is searched whenever a neighbour", index, problem
                )
                ranges[index] = (LONG_MIN, LONG_MAX)
                continue
            bounds = _bounds(answer.get("aggregations") or {})
            if bounds is not None:  # an index without jobs holds no copy
                ranges[index] = bounds
        return ranges


def named_by(candidates: Iterable[str]) -> Callable[[str], bool]:
    """Whether an index is one of ``candidates``: index names, or name prefixes ending in ``*`` (the only
    wildcard index layouts use; other characters are literal, ``[`` included, which index names allow)."""
    names = set(candidates)
    prefixes = tuple(name[:-1] for name in names if name.endswith("*"))
    return lambda index: index in names or index.startswith(prefixes)


def _bounds(aggregations: dict[str, Any]) -> tuple[int, int] | None:
    low = (aggregations.get("lowest") or {}).get("value")
    high = (aggregations.get("highest") or {}).get("value")
    if low is None or high is None:
        return None
    return (
        LONG_MIN if abs(low) >= EXACT_DOUBLE else int(low),
        LONG_MAX if abs(high) >= EXACT_DOUBLE else int(high),
    )
