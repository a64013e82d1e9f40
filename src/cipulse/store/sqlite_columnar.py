"""Fast window facts: read one window of `job_facts` into numpy columns, then count without sorting.

SQLite answers a window in SQL with one sort per group level and measure, so its latency grows with the
jobs in the window (seconds to tens of seconds for 330k jobs, see bench/bench_store.py). Here a window
costs one range read of the ``job_facts`` table, which is clustered by (repository, window_at), and
linear-time numpy counting:

- every job's facts are a fixed-width hex string (layout in `migrations`), and SQLite concatenates the
  window's strings into ONE value (``group_concat``), so no Python object is made per job; numpy decodes
  the bytes to columns;
- group ids come from ``fact_groups`` (one row per repository, workflow, job name, branch and runner label
  set); they never change once committed, so the process keeps a growing id -> key cache and only reads
  ids it has not seen yet. Each window renumbers the groups it contains, so the count tables are sized by
  the window, not by every group the store has ever seen.

No warm-up: the first call in a process reads its window like any other. Between calls the engine keeps
decoded whole days per repository, each checked on every call against the day's change count (kept by
triggers in ``job_fact_days``), so a repeated or sliding window re-reads only changed days and its
partial first and last day. Every read happens in the caller's snapshot, so writes by other processes
(WAL) show up at once and exactly.
"""

from __future__ import annotations

import sqlite3
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from cipulse.metrics.facts import LEVELS, GroupKey, Level, group_keys
from cipulse.metrics.outcome import OUTCOMES
from cipulse.metrics.percentiles import PERCENTILES
from cipulse.store.sqlite_facts import MEASURES, CountRow, PercentileRow

IntArray = npt.NDArray[np.int64]
FactGroup = tuple[str, str, str, str | None, str]  # repository, workflow, job name, branch, labels key

# The row layout written by the ``job_facts`` triggers (migration 2), in bytes once each pair of hex
# digits is decoded: group id 0-3, outcome << 4 | flags 4, duration_s + 1 5-9, queue_s + 1 10-14.
ROW_WIDTH: Final = 30
_EXACT_QUEUE: Final = 1
_CLOCK_SKEW: Final = 2
_HEX_DIGITS: Final = b"0123456789abcdef"
# two hex characters, read as one little-endian uint16, -> the byte they spell
_HEX_PAIRS: Final = np.zeros(65536, dtype=np.uint8)
for _high, _high_char in enumerate(_HEX_DIGITS):
    for _low, _low_char in enumerate(_HEX_DIGITS):
        _HEX_PAIRS[_high_char | _low_char << 8] = _high << 4 | _low
_N_OUTCOMES: Final = len(OUTCOMES)
_VERDICTS: Final = (OUTCOMES.index("success"), OUTCOMES.index("failure"))
_MAX_TABLE_CELLS: Final = 4_000_000  # dense count tables up to 32 MB; beyond that, sort-based paths
DAY_US: Final = 86_400_000_000  # the day of ``job_fact_days`` (migration 2)
MAX_CACHED_JOBS: Final = 2_000_000  # decoded days kept per store: at most ~44 MB
_WINDOW_SQL: Final = (
    "SELECT CAST(group_concat(facts, '') AS BLOB) FROM job_facts "
    "WHERE {where} AND window_at >= ? AND window_at < ?"
)


@dataclass(frozen=True, slots=True)
class WindowColumns:
    """The jobs of one window, one entry per job: fact group id, outcome index, flags, and seconds
    (-1 where unknown). Compact types: 22 bytes per job, so cached days stay small."""

    group: npt.NDArray[np.uint32]
    outcome: npt.NDArray[np.uint8]
    flags: npt.NDArray[np.uint8]
    duration: IntArray
    queue: IntArray

    def __len__(self) -> int:
        return len(self.group)

    @staticmethod
    def join(parts: list[WindowColumns]) -> WindowColumns:
        if len(parts) == 1:
            return parts[0]
        names = ("group", "outcome", "flags", "duration", "queue")
        joined = {name: np.concatenate([getattr(part, name) for part in parts]) for name in names}
        return WindowColumns(**joined)


def decode(raw: bytes) -> WindowColumns:
    """Fixed-width hex rows -> columns, all in numpy (one table lookup per pair of characters)."""
    if len(raw) % ROW_WIDTH:
        raise ValueError(f"job_facts rows are {ROW_WIDTH} characters; got {len(raw)} bytes in total")
    packed = _HEX_PAIRS[np.frombuffer(raw, dtype="<u2")].reshape(-1, ROW_WIDTH // 2)
    return WindowColumns(
        group=np.ascontiguousarray(packed[:, 0:4]).view(">u4").ravel().astype(np.uint32),
        outcome=packed[:, 4] >> 4,
        flags=packed[:, 4] & 15,
        duration=_big_endian(packed[:, 5:10]) - 1,
        queue=_big_endian(packed[:, 10:15]) - 1,
    )


def _big_endian(columns: npt.NDArray[np.uint8]) -> IntArray:
    """Unsigned big-endian integers from up to 8 byte columns."""
    padded = np.zeros((len(columns), 8), dtype=np.uint8)
    padded[:, 8 - columns.shape[1] :] = columns
    return padded.view(">u8").ravel().astype(np.int64)


def _repositories(repository: str | None) -> tuple[str, list[str]]:
    """SQL condition (and its parameters) for one repository or all: each is a range of the primary key."""
    if repository is None:
        return "repository IN (SELECT DISTINCT repository FROM fact_groups)", []
    return "repository = ?", [repository]


def read_window(conn: sqlite3.Connection, repository: str | None, start_us: int, end_us: int) -> bytes:
    """The window's fact rows as one byte string, in the caller's read transaction.

    Per repository, each a contiguous range of the clustered table. A window too large for one SQLite
    value (``SQLITE_LIMIT_LENGTH``, 1 GB by default: ~33M jobs) is read in halves.
    """
    where, params = _repositories(repository)
    try:
        row = conn.execute(_WINDOW_SQL.format(where=where), [*params, start_us, end_us]).fetchone()
    except sqlite3.DataError:
        if end_us - start_us < 2:
            raise
        middle = start_us + (end_us - start_us) // 2
        return read_window(conn, repository, start_us, middle) + read_window(conn, repository, middle, end_us)
    found: bytes = row[0] or b""
    return found


class FactGroups:
    """Cache of ``fact_groups``: ids are assigned in commit order and never reused or changed, so ids
    above the highest one cached are exactly the ones to fetch."""

    def __init__(self) -> None:
        self.keys: dict[int, FactGroup] = {}
        self.highest = 0

    def lookup(self, conn: sqlite3.Connection, ids: IntArray) -> list[FactGroup]:
        if len(ids) and int(ids.max()) > self.highest:
            rows = conn.execute(
                "SELECT id, repository, workflow_name, name, has_branch, head_branch, labels_key "
                "FROM fact_groups WHERE id > ? ORDER BY id",
                (self.highest,),
            ).fetchall()
            for group_id, repository, workflow, name, has_branch, branch, labels in rows:
                self.keys[group_id] = (repository, workflow, name, branch if has_branch else None, labels)
            if rows:
                self.highest = rows[-1][0]
        try:
            return [self.keys[group_id] for group_id in ids.tolist()]
        except KeyError as missing:
            raise RuntimeError(f"job_facts refers to fact group {missing} which does not exist") from None


class _Interned:
    """Dense ids for the keys of one level within one window."""

    def __init__(self) -> None:
        self.ids: dict[Any, int] = {}
        self.keys: list[Any] = []

    def id(self, key: Any) -> int:
        found = self.ids.get(key)
        if found is None:
            found = self.ids[key] = len(self.keys)
            self.keys.append(key)
        return found


class _Window:
    """One window's columns with its groups renumbered 0..G-1 and each group's id in every level."""

    def __init__(self, columns: WindowColumns, groups: list[FactGroup], local: IntArray) -> None:
        self.columns = columns
        self.local = local  # per job: its group's index in `groups`
        self.n_groups = len(groups)
        interned: dict[Level, _Interned] = {level: _Interned() for level in LEVELS}
        of: dict[Level, list[int]] = {level: [] for level in LEVELS}
        labels = _Interned()
        label_of = []
        for repository, workflow, name, branch, label in groups:
            for level, key in group_keys(repository, workflow, name, branch).items():
                of[level].append(-1 if key is None else interned[level].id(key))
            label_of.append(labels.id(label))
        self.level_keys: dict[Level, list[GroupKey]] = {"all": [(None, None, None, None)]}
        self.level_of: dict[Level, IntArray] = {"all": np.zeros(len(groups), dtype=np.int64)}
        for level in LEVELS:
            self.level_keys[level] = interned[level].keys
            self.level_of[level] = np.array(of[level], dtype=np.int64)
        self.labels: list[str] = labels.keys
        self.label_of = np.array(label_of, dtype=np.int64)


class _DayCache:
    """Decoded whole days of ``job_facts`` per (repository, UTC day), each valid while the day's change
    count in ``job_fact_days`` is the one it was read at (counts only grow). Least recently used days go
    first beyond `max_jobs`."""

    def __init__(self, max_jobs: int) -> None:
        self.max_jobs = max_jobs
        self.jobs = 0
        self.days: OrderedDict[tuple[str, int], tuple[int, WindowColumns]] = OrderedDict()

    def get(self, key: tuple[str, int], changes: int) -> WindowColumns | None:
        found = self.days.get(key)
        if found is None or found[0] != changes:
            return None
        self.days.move_to_end(key)
        return found[1]

    def put(self, key: tuple[str, int], changes: int, columns: WindowColumns) -> None:
        old = self.days.pop(key, None)
        if old is not None:
            self.jobs -= len(old[1])
        self.days[key] = (changes, columns)
        self.jobs += len(columns)
        while self.jobs > self.max_jobs and self.days:
            _, (_, evicted) = self.days.popitem(last=False)
            self.jobs -= len(evicted)


class ColumnarFacts:
    """The window-facts engine over `job_facts`; one per store. Between calls it keeps the
    ``fact_groups`` names and up to `max_cached_jobs` decoded whole days (22 bytes per job), checked
    against ``job_fact_days`` on every call, so a repeated or sliding window re-reads only the days that
    changed and its partial first and last day."""

    def __init__(self, max_cached_jobs: int = MAX_CACHED_JOBS) -> None:
        self.groups = FactGroups()
        self.cache = _DayCache(max_cached_jobs)
        self._conn: sqlite3.Connection | None = None
        self._last: tuple[tuple[Any, ...], _Window | None] | None = None

    def bind(self, conn: sqlite3.Connection | None) -> None:
        """Use this connection, inside the caller's read transaction, until the next `bind` (None: done;
        the decoded window is dropped)."""
        self._conn = conn
        self._last = None

    def window(self, start_us: int, end_us: int, repository: str | None) -> _Window | None:
        """The decoded window; assembled once per `bind` (count and percentile passes share it)."""
        key = (start_us, end_us, repository)
        if self._last is not None and self._last[0] == key:
            return self._last[1]
        assert self._conn is not None, "bind a connection first"
        columns = self._columns(self._conn, start_us, end_us, repository)
        found = None
        if len(columns):
            distinct, local = _distinct_values(columns.group.astype(np.int64))
            groups = self.groups.lookup(self._conn, distinct)
            # renumber in key order: repository, workflow and job groups become contiguous runs
            order = sorted(range(len(groups)), key=lambda index: _sort_key(groups[index]))
            rank = np.empty(len(groups), dtype=np.int64)
            rank[order] = np.arange(len(groups))
            found = _Window(columns, [groups[index] for index in order], rank[local])
        self._last = (key, found)
        return found

    def _columns(
        self, conn: sqlite3.Connection, start_us: int, end_us: int, repository: str | None
    ) -> WindowColumns:
        """Whole days inside the window from the cache (re-read where changed), the partial first and last
        day straight from the table."""
        first_day = -(-start_us // DAY_US)  # the first day starting at or after the window's start
        end_day = end_us // DAY_US  # days before this one end at or before the window's end
        if first_day >= end_day or self.cache.max_jobs <= 0:
            return decode(read_window(conn, repository, start_us, end_us))
        parts = [decode(read_window(conn, repository, start_us, first_day * DAY_US))]
        where, params = _repositories(repository)
        days = conn.execute(
            f"SELECT repository, day, changes FROM job_fact_days WHERE {where} AND day >= ? AND day < ?",
            [*params, first_day, end_day],
        ).fetchall()
        for repo, day, changes in days:
            columns = self.cache.get((repo, day), changes)
            if columns is None:
                columns = decode(read_window(conn, repo, day * DAY_US, (day + 1) * DAY_US))
                self.cache.put((repo, day), changes, columns)
            parts.append(columns)
        parts.append(decode(read_window(conn, repository, end_day * DAY_US, end_us)))
        return WindowColumns.join([part for part in parts if len(part)] or parts[:1])

    def count_rows(self, start_us: int, end_us: int, repository: str | None) -> list[CountRow]:
        """Group the window once at the finest grain (fact group, outcome), then roll the groups up to every
        level with small numpy group-bys."""
        window = self.window(start_us, end_us, repository)
        if window is None:
            return []
        codes, sums = _finest_sums(window)
        group, outcome = np.divmod(codes, _N_OUTCOMES)
        label = window.label_of[group]
        n_labels = len(window.labels)
        rows: list[CountRow] = []
        for level, level_of in window.level_of.items():
            ids = level_of[group]
            keep = ids >= 0
            level_code = (ids[keep] * _N_OUTCOMES + outcome[keep]) * n_labels + label[keep]
            n_level = len(window.level_keys[level])
            grouped, level_sums = _group_sums(
                level_code, {k: v[keep] for k, v in sums.items()}, n_level * _N_OUTCOMES * n_labels
            )
            rest, label_ids = np.divmod(grouped, n_labels)
            group_ids, outcome_ids = np.divmod(rest, _N_OUTCOMES)
            keys = window.level_keys[level]
            totals = {name: values.tolist() for name, values in level_sums.items()}
            for position, (group_id, out, lab) in enumerate(
                zip(group_ids.tolist(), outcome_ids.tolist(), label_ids.tolist(), strict=True)
            ):
                rows.append(
                    CountRow(
                        level=level,
                        key=keys[group_id],
                        outcome=OUTCOMES[out],
                        labels=window.labels[lab],
                        count=totals["count"][position],
                        seconds=totals["seconds"][position],
                        billable=totals["billable"][position],
                        queue_exact=totals["exact"][position],
                        queue_estimated=totals["estimated"][position],
                        clock_skew=totals["skew"][position],
                    )
                )
        return rows

    def percentile_rows(self, start_us: int, end_us: int, repository: str | None) -> list[PercentileRow]:
        """Per measure, rank the window's distinct values once and count (finest group x value) with one
        `np.bincount`; each level's table is then a sum of finest rows (`_rollup`) and gives every
        group's nearest ranks from cumulative sums: linear in the window, no sort, few window-sized
        temporaries. When that table would outgrow the window, each level counts its own (group x value)
        table from the rows instead, or selects per group when even that is too large."""
        window = self.window(start_us, end_us, repository)
        result: list[PercentileRow] = []
        if window is None:
            return result
        columns = window.columns
        for measure in MEASURES:
            if measure == "durations":
                values = columns.duration
                verdict = (columns.outcome == _VERDICTS[0]) | (columns.outcome == _VERDICTS[1])
                valid = (values >= 0) & verdict
            else:
                values = columns.queue
                valid = values >= 0
            chosen = values[valid]
            if not len(chosen):
                continue
            distinct, value_ids = _distinct_values(chosen)
            local = window.local[valid]
            n_values = len(distinct)
            finest = None
            if window.n_groups * n_values <= min(len(chosen), _MAX_TABLE_CELLS):
                codes = local * n_values + value_ids
                finest = np.bincount(codes, minlength=window.n_groups * n_values).reshape(window.n_groups, -1)
            for level, level_of in window.level_of.items():
                n_groups = len(window.level_keys[level])
                if finest is not None:
                    picked = _picks_from_table(_rollup(finest, level_of, n_groups), distinct)
                else:
                    groups = level_of[local]
                    keep = groups >= 0
                    if n_groups * n_values <= _MAX_TABLE_CELLS:
                        table = np.bincount(
                            groups[keep] * n_values + value_ids[keep], minlength=n_groups * n_values
                        )
                        picked = _picks_from_table(table.reshape(n_groups, n_values), distinct)
                    else:
                        picked = _selected_percentiles(groups[keep], chosen[keep])
                keys = window.level_keys[level]
                for group, size, values_at in picked:
                    result.append(PercentileRow(level, measure, keys[group], size, values_at))
        return result


def _finest_sums(window: _Window) -> tuple[IntArray, dict[str, IntArray]]:
    """Per (finest group, outcome) code present in the window: the job count, the seconds and billable
    minutes of known durations, and the exact, estimated and skewed counts. The flags are counted with
    one `np.bincount` of (code, queue kind, skew): window-sized temporaries are the cost here."""
    columns = window.columns
    codes = window.local * _N_OUTCOMES
    codes += columns.outcome
    space = window.n_groups * _N_OUTCOMES
    seconds = np.maximum(columns.duration, 0)  # unknown (-1) adds nothing
    billable = seconds + 59
    billable //= 60
    if space * 6 > _MAX_TABLE_CELLS:
        queued = columns.queue >= 0
        exact = queued & ((columns.flags & _EXACT_QUEUE) > 0)
        weights = {
            "seconds": seconds,
            "billable": billable,
            "exact": exact,
            "estimated": queued & ~exact,
            "skew": (columns.flags & _CLOCK_SKEW) > 0,
        }
        return _group_sums(codes, weights, space)
    # queue kind 0 unknown, 1 exact, 2 estimated; times 2, plus 1 if skewed
    kind = (columns.queue >= 0).view(np.uint8) * (2 - (columns.flags & _EXACT_QUEUE))
    kind <<= 1
    kind |= (columns.flags & _CLOCK_SKEW) >> 1
    flagged = codes * 6
    flagged += kind
    table = np.bincount(flagged, minlength=space * 6).reshape(space, 3, 2)
    counts = table.sum(axis=(1, 2))
    present = np.flatnonzero(counts)
    table = table[present]
    return present, {
        "count": counts[present],
        "seconds": _integer_sums(codes, seconds, space)[present],
        "billable": _integer_sums(codes, billable, space)[present],
        "exact": table[:, 1, :].sum(axis=1),
        "estimated": table[:, 2, :].sum(axis=1),
        "skew": table[:, :, 1].sum(axis=1),
    }


def _sort_key(group: FactGroup) -> tuple[str, str, str, bool, str, str]:
    repository, workflow, name, branch, labels = group
    return (repository, workflow, name, branch is not None, branch or "", labels)


def _rollup(finest: IntArray, level_of: IntArray, n_groups: int) -> IntArray:
    """(level group x value) counts as sums of the finest groups' rows (`np.add.reduceat` over runs of one
    level group; rows are copied only when a level's groups are not already contiguous runs, as for
    branches). Groups with a negative level id (no branch) are left out."""
    table = np.zeros((n_groups, finest.shape[1]), dtype=np.int64)
    keep = level_of >= 0
    ids = level_of[keep]
    if not len(ids):
        return table
    if keep.all() and bool(np.all(ids[1:] >= ids[:-1])):
        rows, sorted_ids = finest, ids
    else:
        order = np.flatnonzero(keep)[np.argsort(ids, kind="stable")]
        rows, sorted_ids = finest[order], level_of[order]
    starts = np.flatnonzero(np.concatenate(([True], sorted_ids[1:] != sorted_ids[:-1])))
    table[sorted_ids[starts]] = np.add.reduceat(rows, starts, axis=0)
    return table


def _distinct_values(values: IntArray) -> tuple[IntArray, IntArray]:
    """Sorted distinct values and each value's index among them; by counting when the values are small
    (seconds below ~46 days, group ids below 4M: the usual case), which is linear, else by sorting."""
    top = int(values.max())
    if top < _MAX_TABLE_CELLS:
        seen = np.bincount(values, minlength=top + 1) > 0
        index_of = np.cumsum(seen) - 1
        return np.flatnonzero(seen), index_of[values]
    distinct, inverse = np.unique(values, return_inverse=True)
    return distinct, inverse.astype(np.int64)


def _picks_from_table(table: IntArray, distinct: IntArray) -> list[tuple[int, int, tuple[int, ...]]]:
    """Nearest-rank picks of every non-empty row of a (group x distinct value) count table."""
    sizes = table.sum(axis=1)
    present = np.flatnonzero(sizes)
    if not len(present):
        return []
    cumulative = np.cumsum(table[present], axis=1)
    sizes = sizes[present]
    columns = []
    for p in PERCENTILES:
        ranks = (p * sizes + 99) // 100
        columns.append(distinct[(cumulative < ranks[:, None]).sum(axis=1)].tolist())
    return [
        (group, size, tuple(column[row] for column in columns))
        for row, (group, size) in enumerate(zip(present.tolist(), sizes.tolist(), strict=True))
    ]


def _selected_percentiles(groups: IntArray, values: IntArray) -> list[tuple[int, int, tuple[int, ...]]]:
    """Fallback for very many groups x distinct values: stable grouping, then selection per group."""
    if not len(groups):
        return []
    order = np.argsort(groups, kind="stable")
    sizes = np.bincount(groups)
    ordered = values[order]
    found = []
    offset = 0
    for group, size in enumerate(sizes.tolist()):
        if size:
            found.append((group, size, _picks(ordered[offset : offset + size])))
            offset += size
    return found


def _picks(values: IntArray) -> tuple[int, ...]:
    """Nearest-rank percentiles of unsorted values by selection (np.partition), not sorting."""
    n = len(values)
    ranks = [(p * n + 99) // 100 - 1 for p in PERCENTILES]
    selected = np.partition(values, sorted(set(ranks)))
    return tuple(int(selected[r]) for r in ranks)


def _group_sums(
    codes: IntArray, weights: dict[str, npt.NDArray[Any]], space: int
) -> tuple[IntArray, dict[str, IntArray]]:
    """Distinct codes (all < `space`) with per-code integer sums of each weight; "count" is the number of
    rows unless a "count" weight is given (rolling up already-counted groups). Dense `np.bincount` when
    the code space is small, `np.unique` otherwise."""
    if space <= _MAX_TABLE_CELLS:
        counts = np.bincount(codes, minlength=space)
        unique = np.flatnonzero(counts)
        inverse = None
    else:
        unique, inverse = np.unique(codes, return_inverse=True)
        counts = np.bincount(inverse, minlength=len(unique))
    index = codes if inverse is None else inverse
    size = space if inverse is None else len(unique)
    chosen = unique if inverse is None else slice(None)
    sums: dict[str, IntArray] = {"count": counts[chosen].astype(np.int64)}
    for name, weight in weights.items():
        if weight.dtype == np.bool_:  # flags: count the flagged rows, no float weights needed
            sums[name] = np.bincount(index[weight], minlength=size)[chosen].astype(np.int64)
        else:
            sums[name] = _integer_sums(index, weight, size)[chosen]
    return unique, sums


def _integer_sums(index: IntArray, weight: npt.NDArray[Any], size: int) -> IntArray:
    """Exact per-index sums of non-negative integers. `np.bincount` adds in float64, exact only below
    2^53; large totals are summed as high and low 24-bit halves, each of which stays below that."""
    weight = np.asarray(weight, dtype=np.int64)
    if not len(weight) or int(weight.max()) * len(weight) < 2**53:
        return np.rint(np.bincount(index, weights=weight, minlength=size)).astype(np.int64)
    low = np.rint(np.bincount(index, weights=weight & 0xFFFFFF, minlength=size)).astype(np.int64)
    high = np.rint(np.bincount(index, weights=weight >> 24, minlength=size)).astype(np.int64)
    return (high << 24) + low
