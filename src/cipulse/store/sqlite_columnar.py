"""Fast window facts: an in-memory columnar projection of the jobs table, refreshed incrementally.

SQLite answers a window with one sort per group level and measure, so latency grows with the jobs in the
window (tens of seconds for 330k jobs on a busy 2-core machine, see bench/bench_store.py). This projection
keeps the small facts columns of every job as numpy arrays (about 40 bytes per job) and computes the same
count and percentile rows with linear-time counting (`np.bincount` tables), falling back to sorting only
for very large group x value spaces. Loading it costs one scan of the jobs table per process; after that
it stays exact and current without rescanning:

- every job row has an AUTOINCREMENT ``seq``, and an overwrite (INSERT OR REPLACE) deletes the old row
  and inserts a new one with a larger ``seq``; so rows with ``seq`` above the last one seen are the new
  or changed jobs;
- a trigger records each deleted row's ``seq`` in ``job_tombstones`` (overwrites and retention), so the
  projection drops exactly those;
- both are read in the caller's read transaction, so a refresh sees one consistent snapshot. If the
  tombstones it needs were pruned (``PRUNE_TOMBSTONES``), it reloads from scratch.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from cipulse.metrics.facts import GroupKey, Level
from cipulse.metrics.outcome import OUTCOMES
from cipulse.metrics.percentiles import PERCENTILES
from cipulse.store.sqlite_facts import MEASURES, CountRow, PercentileRow

_OUTCOME_INDEX: Final = {name: index for index, name in enumerate(OUTCOMES)}
_VERDICTS: Final = np.array([_OUTCOME_INDEX["success"], _OUTCOME_INDEX["failure"]], dtype=np.int8)
_FETCH: Final = 50_000
_SEP: Final = "char(31)"  # ASCII unit separator: joins key parts in SQL, never part of a name
_COLUMNS: Final[dict[str, Any]] = {
    "seq": np.int64,
    "window": np.int64,
    "repo": np.int32,
    "workflow": np.int32,
    "job": np.int32,
    "branch": np.int32,
    "outcome": np.int8,
    "label": np.int32,
    "duration": np.int32,
    "queue": np.int32,
    "queue_exact": np.bool_,
    "skew": np.bool_,
    "billable": np.int32,
    "alive": np.bool_,
}
_MAX_TABLE_CELLS: Final = 4_000_000  # dense count tables up to 32 MB; beyond that, sort-based paths
IntArray = npt.NDArray[np.int64]


class _Dimension:
    """Interning of group keys to dense ids; `decode` turns a raw key into the value kept for it."""

    def __init__(self, decode: Any = None, fixed: dict[Any, int] | None = None) -> None:
        self.ids: dict[Any, int] = dict(fixed or {})
        self.values: list[Any] = []
        self._decode = decode

    def id(self, value: Any) -> int:
        found = self.ids.get(value)
        if found is None:
            found = self.ids[value] = len(self.values)
            self.values.append(self._decode(value) if self._decode else value)
        return found

    def ids_of(self, values: Iterable[Any]) -> list[int]:
        """Ids of many values: new ones interned first (few), then one C-level map over all of them."""
        column = list(values)
        for value in set(column) - self.ids.keys():
            self.id(value)
        return list(map(self.ids.__getitem__, column))


class ColumnarFacts:
    """One per store instance (so per process); `refresh` before each read, under the store's lock."""

    # views set by `_expose`, one entry per job row
    seq: IntArray
    window: IntArray
    repo: npt.NDArray[np.int32]
    workflow: npt.NDArray[np.int32]
    job: npt.NDArray[np.int32]
    branch: npt.NDArray[np.int32]
    outcome: npt.NDArray[np.int8]
    label: npt.NDArray[np.int32]
    duration: npt.NDArray[np.int32]
    queue: npt.NDArray[np.int32]
    queue_exact: npt.NDArray[np.bool_]
    skew: npt.NDArray[np.bool_]
    billable: npt.NDArray[np.int32]
    alive: npt.NDArray[np.bool_]

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self.last_seq = 0
        self.last_tombstone = 0
        self.repos = _Dimension()
        self.workflows = _Dimension()  # (repository, workflow)
        self.jobs = _Dimension(_split)  # SQL-joined key -> (repository, workflow, job name)
        self.branches = _Dimension(_split, fixed={None: -1})  # joined key -> (repository, branch); none: -1
        self.labels = _Dimension()
        self.job_repo: list[int] = []  # job id -> repository id
        self.job_workflow: list[int] = []  # job id -> workflow id
        self.size = 0
        self._last_selection: tuple[Any, IntArray] | None = None
        self._storage = {name: np.zeros(0, dtype=dtype) for name, dtype in _COLUMNS.items()}
        self._expose()

    def _expose(self) -> None:
        """Attributes are views of the first `size` rows of the (over-allocated) storage."""
        for name, array in self._storage.items():
            setattr(self, name, array[: self.size])

    # -- refresh --------------------------------------------------------------------------------------

    def refresh(self, conn: sqlite3.Connection) -> None:
        """Bring the projection up to the snapshot of the caller's read transaction."""
        # Tombstone seqs are contiguous (AUTOINCREMENT, pruned only from the oldest end): if fewer remain
        # above our mark than the counter says were written, some we never saw were pruned: start over.
        row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'job_tombstones'").fetchone()
        counter = row[0] if row else 0
        if self.last_seq and counter > self.last_tombstone:
            dead = conn.execute(
                "SELECT seq, job_seq FROM job_tombstones WHERE seq > ? ORDER BY seq", (self.last_tombstone,)
            ).fetchall()
            if len(dead) != counter - self.last_tombstone:
                self._reset()
            else:
                gone = np.array([job_seq for _, job_seq in dead], dtype=np.int64)
                positions = np.searchsorted(self.seq, gone)
                inside = positions < len(self.seq)
                positions, gone = positions[inside], gone[inside]
                self.alive[positions[self.seq[positions] == gone]] = False
        self.last_tombstone = counter
        self._append(conn)
        if len(self.alive) and np.count_nonzero(~self.alive) > len(self.alive) // 4:
            self._compact()

    def _append(self, conn: sqlite3.Connection) -> None:
        cursor = conn.execute(
            # group keys are joined in SQL: one string per row hashes far faster than a tuple of three
            f"SELECT seq, window_at, repository || {_SEP} || workflow_name || {_SEP} || name, "
            f"repository || {_SEP} || head_branch, outcome, labels_key, "
            "duration_s, queue_s, queue_exact, clock_skew, billable_minutes FROM jobs "
            "WHERE seq > ? ORDER BY seq",
            (self.last_seq,),
        )
        chunks: list[dict[str, Any]] = []
        while rows := cursor.fetchmany(_FETCH):
            chunks.append(self._columns(rows))
        if not chunks:
            return
        self.last_seq = int(chunks[-1]["seq"][-1])
        added = sum(len(c["seq"]) for c in chunks)
        needed = self.size + added
        capacity = len(self._storage["seq"])
        if needed > capacity:  # grow by half at least, so a stream of small appends stays amortised O(1)
            capacity = max(needed, capacity + capacity // 2, 1024)
            for name, array in self._storage.items():
                grown = np.zeros(capacity, dtype=array.dtype)
                grown[: self.size] = array[: self.size]
                self._storage[name] = grown
        offset = self.size
        for chunk in chunks:
            count = len(chunk["seq"])
            for name, values in chunk.items():
                self._storage[name][offset : offset + count] = values
            offset += count
        self.size = needed
        self._expose()

    def _columns(self, rows: list[tuple[Any, ...]]) -> dict[str, Any]:
        columns = list(zip(*rows, strict=True))
        seq, window, job_key, branch_key = columns[:4]
        outcome, label, duration, queue, exact, skew, billable = columns[4:]
        known = len(self.jobs.values)
        job_ids = np.array(self.jobs.ids_of(job_key), dtype=np.int32)
        for repository, workflow, _ in self.jobs.values[known:]:
            self.job_repo.append(self.repos.id(repository))
            self.job_workflow.append(self.workflows.id((repository, workflow)))
        return {
            "seq": np.array(seq, dtype=np.int64),
            "window": np.array([-(2**62) if w is None else w for w in window], dtype=np.int64),
            "repo": np.array(self.job_repo, dtype=np.int32)[job_ids],
            "workflow": np.array(self.job_workflow, dtype=np.int32)[job_ids],
            "job": job_ids,
            "branch": np.array(self.branches.ids_of(branch_key), dtype=np.int32),
            "outcome": np.array([_OUTCOME_INDEX[o] for o in outcome], dtype=np.int8),
            "label": np.array(self.labels.ids_of(label), dtype=np.int32),
            "duration": np.array([-1 if d is None else d for d in duration], dtype=np.int32),
            "queue": np.array([-1 if q is None else q for q in queue], dtype=np.int32),
            "queue_exact": np.array(exact, dtype=bool),
            "skew": np.array(skew, dtype=bool),
            "billable": np.array(billable, dtype=np.int32),
            "alive": np.ones(len(seq), dtype=bool),
        }

    def _compact(self) -> None:
        keep = np.flatnonzero(self._storage["alive"][: self.size])
        for array in self._storage.values():
            array[: len(keep)] = array[keep]
        self.size = len(keep)
        self._expose()

    # -- queries --------------------------------------------------------------------------------------

    def _selection(self, start_us: int, end_us: int, repository: str | None) -> IntArray:
        """Row positions in the window; remembered for the next call on the same data and window (the
        count and percentile passes of one `window_facts` ask for the same selection)."""
        key = (start_us, end_us, repository, self.size, self.last_seq, self.last_tombstone)
        if self._last_selection is not None and self._last_selection[0] == key:
            return self._last_selection[1]
        mask = self.alive & (self.window >= start_us) & (self.window < end_us)
        if repository is not None:
            repo_id = self.repos.ids.get(repository)
            mask &= self.repo == (-2 if repo_id is None else repo_id)
        selected = np.flatnonzero(mask)
        self._last_selection = (key, selected)
        return selected

    def _parents(self) -> tuple[IntArray, IntArray]:
        """Per job-group id: its repository id and its workflow id."""
        return np.array(self.job_repo, dtype=np.int64), np.array(self.job_workflow, dtype=np.int64)

    def _key(self, level: Level, group: int) -> GroupKey:
        if level == "repository":
            return (self.repos.values[group], None, None, None)
        if level == "workflow":
            repository, workflow = self.workflows.values[group]
            return (repository, workflow, None, None)
        if level == "job":
            repository, workflow, name = self.jobs.values[group]
            return (repository, workflow, name, None)
        repository, branch = self.branches.values[group]
        return (repository, None, None, branch)

    def count_rows(self, start_us: int, end_us: int, repository: str | None) -> list[CountRow]:
        """Group the window once at the finest grain (job, branch, outcome, labels), then roll the few
        thousand finest groups up to every level with small numpy group-bys."""
        idx = self._selection(start_us, end_us, repository)
        if not len(idx):
            return []
        n_branch = len(self.branches.values) + 1
        n_label = max(len(self.labels.values), 1)
        n_outcome = len(OUTCOMES)
        composite = self.job[idx].astype(np.int64) * n_branch + (self.branch[idx] + 1)
        composite = (composite * n_outcome + self.outcome[idx]) * n_label + self.label[idx]
        duration = self.duration[idx]
        queued = self.queue[idx] >= 0
        exact = queued & self.queue_exact[idx]
        weights = {
            "seconds": np.where(duration >= 0, duration, 0),
            "billable": self.billable[idx],
            "exact": exact,
            "estimated": queued & ~exact,
            "skew": self.skew[idx],
        }
        space = len(self.jobs.values) * n_branch * n_outcome * n_label
        codes, sums = _group_sums(composite, weights, space)
        codes, label = np.divmod(codes, n_label)
        codes, outcome = np.divmod(codes, n_outcome)
        job, branch = np.divmod(codes, n_branch)
        branch -= 1
        job_repo, job_workflow = self._parents()
        rows: list[CountRow] = []
        level_ids: tuple[tuple[Level, IntArray, int], ...] = (
            ("all", np.zeros(len(job), dtype=np.int64), 1),
            ("repository", job_repo[job], len(self.repos.values)),
            ("workflow", job_workflow[job], len(self.workflows.values)),
            ("job", job, len(self.jobs.values)),
            ("branch", branch, len(self.branches.values)),
        )
        for level, ids, n_groups in level_ids:
            keep = ids >= 0
            level_code = (ids[keep] * n_outcome + outcome[keep]) * n_label + label[keep]
            level_space = n_groups * n_outcome * n_label
            grouped, level_sums = _group_sums(level_code, {k: v[keep] for k, v in sums.items()}, level_space)
            rest, label_ids = np.divmod(grouped, n_label)
            group_ids, outcome_ids = np.divmod(rest, n_outcome)
            for position, (group, out, lab) in enumerate(
                zip(group_ids.tolist(), outcome_ids.tolist(), label_ids.tolist(), strict=True)
            ):
                rows.append(
                    CountRow(
                        level=level,
                        key=(None, None, None, None) if level == "all" else self._key(level, group),
                        outcome=OUTCOMES[out],
                        labels=self.labels.values[lab],
                        count=int(level_sums["count"][position]),
                        seconds=int(level_sums["seconds"][position]),
                        billable=int(level_sums["billable"][position]),
                        queue_exact=int(level_sums["exact"][position]),
                        queue_estimated=int(level_sums["estimated"][position]),
                        clock_skew=int(level_sums["skew"][position]),
                    )
                )
        return rows

    def percentile_rows(self, start_us: int, end_us: int, repository: str | None) -> list[PercentileRow]:
        """Per measure, rank the window's distinct values once; then per level a (group x value) count
        table by `np.bincount` gives every group's nearest ranks from cumulative sums: linear in the
        window, no per-level sort. Levels whose table would be too large fall back to per-group selection.
        """
        idx = self._selection(start_us, end_us, repository)
        result: list[PercentileRow] = []
        if not len(idx):
            return result
        everything: GroupKey = (None, None, None, None)
        for measure in MEASURES:
            if measure == "durations":
                values = self.duration[idx]
                outcome = self.outcome[idx]
                valid = (values >= 0) & ((outcome == _VERDICTS[0]) | (outcome == _VERDICTS[1]))
            else:
                values = self.queue[idx]
                valid = values >= 0
            rows, chosen = idx[valid], values[valid]
            if not len(chosen):
                continue
            result.append(PercentileRow("all", measure, everything, len(chosen), _picks(chosen)))
            distinct, value_ids = _distinct_values(chosen)
            levels: tuple[tuple[Level, npt.NDArray[np.int32], int], ...] = (
                ("repository", self.repo, len(self.repos.values)),
                ("workflow", self.workflow, len(self.workflows.values)),
                ("job", self.job, len(self.jobs.values)),
                ("branch", self.branch, len(self.branches.values)),
            )
            for level, ids, n_groups in levels:
                groups = ids[rows]
                keep = groups >= 0
                if n_groups * len(distinct) <= _MAX_TABLE_CELLS:
                    picked = _table_percentiles(groups[keep], value_ids[keep], n_groups, distinct)
                else:
                    picked = _selected_percentiles(groups[keep], chosen[keep])
                for group, size, values_at in picked:
                    result.append(PercentileRow(level, measure, self._key(level, group), size, values_at))
        return result


def _split(key: str) -> tuple[str, ...]:
    return tuple(key.split("\x1f"))


def _distinct_values(values: npt.NDArray[np.int32]) -> tuple[npt.NDArray[Any], IntArray]:
    """Sorted distinct values and each value's index among them; by counting when the values are small
    (seconds below ~12 days, the usual case), which is linear, else by sorting."""
    top = int(values.max())
    if top < _MAX_TABLE_CELLS:
        seen = np.bincount(values, minlength=top + 1) > 0
        index_of = np.cumsum(seen) - 1
        return np.flatnonzero(seen), index_of[values]
    distinct, inverse = np.unique(values, return_inverse=True)
    return distinct, inverse.astype(np.int64)


def _table_percentiles(
    groups: npt.NDArray[np.int32], value_ids: IntArray, n_groups: int, distinct: npt.NDArray[np.int32]
) -> list[tuple[int, int, tuple[int, ...]]]:
    if not len(groups):
        return []
    n_values = len(distinct)
    table = np.bincount(groups.astype(np.int64) * n_values + value_ids, minlength=n_groups * n_values)
    table = table.reshape(n_groups, n_values)
    sizes = table.sum(axis=1)
    present = np.flatnonzero(sizes)
    cumulative = np.cumsum(table[present], axis=1)
    sizes = sizes[present]
    columns = []
    for p in PERCENTILES:
        ranks = (p * sizes + 99) // 100
        columns.append(distinct[(cumulative < ranks[:, None]).sum(axis=1)])
    return [
        (group, size, tuple(int(column[row]) for column in columns))
        for row, (group, size) in enumerate(zip(present.tolist(), sizes.tolist(), strict=True))
    ]


def _selected_percentiles(
    groups: npt.NDArray[np.int32], values: npt.NDArray[np.int32]
) -> list[tuple[int, int, tuple[int, ...]]]:
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


def _picks(values: npt.NDArray[np.int32]) -> tuple[int, ...]:
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
        sums: dict[str, IntArray] = {"count": counts[unique].astype(np.int64)}
        for name, weight in weights.items():
            if weight.dtype == np.bool_:  # flags: count the flagged rows, no float weights needed
                sums[name] = np.bincount(codes[weight], minlength=space)[unique].astype(np.int64)
            else:
                totals = np.bincount(codes, weights=weight, minlength=space)[unique]
                sums[name] = np.rint(totals).astype(np.int64)
        return unique, sums
    unique, inverse = np.unique(codes, return_inverse=True)
    sums = {"count": np.bincount(inverse, minlength=len(unique)).astype(np.int64)}
    for name, weight in weights.items():
        totals = np.bincount(inverse, weights=weight.astype(np.float64), minlength=len(unique))
        sums[name] = np.rint(totals).astype(np.int64)
    return unique, sums


# Forget all but the newest N tombstones (a reader further behind reloads from scratch).
PRUNE_TOMBSTONES: Final = "DELETE FROM job_tombstones WHERE seq <= (SELECT MAX(seq) FROM job_tombstones) - ?"
