"""SQLite window facts (both engines) equal the pure metrics result on hand-built cases, and the parts of
the columnar engine that could silently lose exactness: the packed row layout, big sums, huge windows."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cipulse.metrics.facts import facts_from_jobs
from cipulse.metrics.outcome import OUTCOMES, classify
from cipulse.records import Job
from cipulse.store.sqlite import SqliteStore
from cipulse.store.sqlite_columnar import ROW_WIDTH, _integer_sums, decode, read_window
from cipulse.store.sqlite_rows import to_micros
from cipulse.store.synthetic import generate
from tests.unit.metrics_helpers import at, job

WINDOW = (at(0), at(4000))


@pytest.fixture(params=["columnar", "sql"])
def store(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[SqliteStore]:
    opened = SqliteStore(tmp_path / "facts.db", columnar=request.param == "columnar")
    yield opened
    opened.close()


def hand_built() -> list[Job]:
    """One job per case (the comment says what the facts must do with it)."""
    return [
        # a re-run: attempt 1 failed, attempt 2 (a new job id) succeeded; both count
        job(run_id=10, run_attempt=1, conclusion="failure", queued=0, started=5, completed=65),
        job(run_id=10, run_attempt=2, conclusion="success", queued=100, started=130, completed=250),
        # cancelled: counted, minutes billed, but no duration percentile and not in the success rate
        job(conclusion="cancelled", queued=10, started=20, completed=50),
        # skipped: never queued for a runner, so no queue time
        job(conclusion="skipped", queued=30, started=30, completed=30),
        job(conclusion="timed_out", name="build", queued=40, started=45, completed=3610),
        job(conclusion="neutral", name="build", queued=41, started=42, completed=43),
        # running: in progress (queue time known), and queued only
        job(status="in_progress", conclusion=None, queued=50, started=62, completed=None),
        job(status="queued", conclusion=None, queued=55, started=None, completed=None),
        # missing timestamps: no created_at (windowed by started_at), only completed_at, none at all
        job(queued=None, started=40, completed=100),
        job(queued=None, started=None, completed=200, conclusion="failure"),
        job(queued=None, started=None, completed=None, status="queued", conclusion=None),
        # clock skew: started before queued, completed before started
        job(queued=50, started=40, completed=100),
        job(queued=5, started=100, completed=50, conclusion="failure"),
        # sub-second timestamps floor to whole seconds
        job(queued=0.5, started=10.25, completed=70.75),
        # no branch: in every level but branches
        job(head_branch=None, queued=60, started=61, completed=121),
        # runner classes and an estimated queue time
        job(runner_labels=("windows-latest",), queued=70, started=75, completed=400, queue_estimated=True),
        job(runner_labels=("self-hosted", "linux"), queued=80, started=80, completed=1000),
        job(
            repository="octo/other",
            workflow_name="Release",
            name="publish",
            queued=90,
            started=99,
            completed=99,
        ),
        # a duration beyond 2^32 seconds (over a thousand years)
        job(queued=100, started=100, completed=100 + 2**35, conclusion="failure"),
        # window edges: start is inclusive, end exclusive
        job(queued=-0.001, started=1, completed=2),
        job(queued=0, started=1, completed=2, head_branch="edge"),
        job(queued=4000, started=4001, completed=4002),
        job(queued=3999.999, started=4001, completed=4002, head_branch="edge"),
    ]


@pytest.mark.parametrize("repository", [None, "octo/app", "octo/other", "nobody/none"])
def test_hand_built_cases_equal_reference(store: SqliteStore, repository: str | None) -> None:
    jobs = hand_built()
    store.upsert([], jobs)
    assert store.window_facts(repository, *WINDOW) == facts_from_jobs(jobs, repository, *WINDOW)


def test_hand_built_cases_by_hand(store: SqliteStore) -> None:
    """A few numbers computed by hand, so the reference itself is pinned down too."""
    store.upsert([], hand_built())
    facts = store.window_facts(None, *WINDOW)
    overall = facts.overall
    # 23 jobs: one in no window, one before the start and one at the end are out
    assert overall.total == 20
    assert (overall.success, overall.failure, overall.cancelled, overall.skipped) == (10, 5, 1, 1)
    assert (overall.other, overall.running) == (1, 2)
    assert overall.clock_skew_count == 2
    (other,) = [row for row in facts.repositories if row.repository == "octo/other"]
    assert (other.total, other.duration_p50, other.queue_p50) == (1, 0, 9)
    (edge,) = [row for row in facts.branches if row.branch == "edge"]
    assert (edge.total, edge.duration_p95, edge.job_seconds) == (2, 1, 2)
    (build,) = [row for row in facts.jobs if row.job == "build"]
    assert (build.failure, build.other, build.duration_p50, build.duration_count) == (1, 1, 3565, 1)
    assert max(row.duration_p95 or 0 for row in facts.jobs) == 2**35


def test_empty_and_reversed_windows(store: SqliteStore) -> None:
    store.upsert([], hand_built())
    empty = store.window_facts(None, at(10_000), at(20_000))
    assert empty.is_empty and empty == facts_from_jobs(hand_built(), None, at(10_000), at(20_000))
    assert store.window_facts(None, at(5), at(5)).is_empty
    with pytest.raises(ValueError, match="before its start"):
        store.window_facts(None, at(5), at(4))


def test_overwrites_follow_the_latest_attempt_state(store: SqliteStore) -> None:
    """A job seen queued, then running, then completed is one job in the facts, in its latest state."""
    queued = job(job_id=900_001, status="queued", conclusion=None, queued=5, started=None, completed=None)
    running = job(job_id=900_001, status="in_progress", conclusion=None, queued=5, started=9, completed=None)
    done = job(job_id=900_001, conclusion="failure", queued=5, started=9, completed=99, head_branch="dev")
    for state in (queued, running, done):
        store.upsert([], [state])
        assert store.window_facts(None, *WINDOW) == facts_from_jobs([state], None, *WINDOW)
    # an overwrite that moves the job out of the window takes it out
    moved = job(job_id=900_001, queued=9000, started=9001, completed=9002)
    store.upsert([], [moved])
    assert store.window_facts(None, *WINDOW).is_empty


def test_job_facts_rows_decode_to_the_derived_values(tmp_path: Path) -> None:
    """The trigger-written hex layout round-trips through `decode` to the derived values of each job."""
    store = SqliteStore(tmp_path / "layout.db")
    jobs = [j for j in hand_built() if j.created_at or j.started_at or j.completed_at]
    store.upsert([], jobs)
    store.close()
    conn = sqlite3.connect(tmp_path / "layout.db")
    rows = conn.execute(
        "SELECT j.status, j.conclusion, j.duration_s, j.queue_s, j.queue_exact, j.clock_skew, f.facts "
        "FROM jobs j JOIN job_facts f ON f.seq = j.seq ORDER BY j.seq"
    ).fetchall()
    assert len(rows) == len(jobs)
    columns = decode(b"".join(row[-1].encode() for row in rows))
    assert all(len(row[-1]) == ROW_WIDTH for row in rows)
    for index, (status, conclusion, duration, queue, exact, skew, _) in enumerate(rows):
        assert OUTCOMES[columns.outcome[index]] == classify(status, conclusion)
        assert columns.duration[index] == (-1 if duration is None else duration)
        assert columns.queue[index] == (-1 if queue is None else queue)
        assert columns.flags[index] == exact + 2 * skew
    conn.close()


def test_a_window_too_big_for_one_value_is_read_in_parts(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "big.db")
    jobs = [job(queued=seconds, started=seconds + 1, completed=seconds + 9) for seconds in range(0, 3600, 7)]
    store.upsert([], jobs)
    store.close()
    conn = sqlite3.connect(tmp_path / "big.db")
    start, end = to_micros(WINDOW[0]), to_micros(WINDOW[1])
    assert start is not None and end is not None
    whole = read_window(conn, None, start, end)
    assert len(whole) == ROW_WIDTH * len(jobs)
    conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, ROW_WIDTH * 50)
    with pytest.raises(sqlite3.DataError):
        conn.execute("SELECT group_concat(facts, '') FROM job_facts").fetchone()
    assert read_window(conn, None, start, end) == whole
    assert read_window(conn, "octo/app", start, end) == whole
    conn.close()


def test_integer_sums_stay_exact_beyond_float_precision() -> None:
    index = np.array([0, 0, 1, 0], dtype=np.int64)
    weights = np.array([2**52 + 1, 2**52 + 2, 7, 2**40], dtype=np.int64)
    assert _integer_sums(index, weights, 2).tolist() == [2**53 + 3 + 2**40, 7]
    assert _integer_sums(index, np.array([1, 2, 3, 4]), 3).tolist() == [7, 3, 0]


def test_group_keys_survive_strings_sql_would_confuse(store: SqliteStore) -> None:
    """Group keys are compared as whole strings: empty names, '' vs no branch, separators, unicode."""
    jobs = [
        job(head_branch="", queued=1, started=2, completed=3),
        job(head_branch=None, queued=1, started=2, completed=4),
        job(name="a\x1fb", workflow_name="", queued=1, started=2, completed=5),
        job(name="a", workflow_name="\x1fb", queued=1, started=2, completed=6),
        job(repository="octo/ünï", name="tëst ✓", head_branch="feature/ß", queued=1, started=2, completed=7),
    ]
    store.upsert([], jobs)
    start: datetime = at(0)
    assert store.window_facts(None, start, at(10)) == facts_from_jobs(jobs, None, start, at(10))


def test_direct_sql_updates_keep_the_job_facts_in_step(store: SqliteStore) -> None:
    """cipulse writes jobs with INSERT OR REPLACE only, but a manual UPDATE (e.g. a repair) must not leave
    stale facts behind either."""
    jobs = hand_built()
    store.upsert([], jobs)
    conn = sqlite3.connect(store.path, isolation_level=None)
    conn.execute(
        "UPDATE jobs SET conclusion = 'failure', head_branch = 'hotfix' WHERE conclusion = 'success'"
    )
    conn.execute("UPDATE jobs SET created_at = created_at + 3600000000 WHERE conclusion = 'cancelled'")
    conn.close()
    updated = [
        dataclasses.replace(j, conclusion="failure", head_branch="hotfix") if j.conclusion == "success" else j
        for j in jobs
    ]
    updated = [
        dataclasses.replace(j, created_at=j.created_at + timedelta(hours=1))
        if j.conclusion == "cancelled" and j.created_at
        else j
        for j in updated
    ]
    assert store.window_facts(None, *WINDOW) == facts_from_jobs(updated, None, *WINDOW)


@pytest.mark.parametrize("table_cells", [10, 3000])
def test_large_group_spaces_take_the_sorting_paths_with_equal_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, table_cells: int
) -> None:
    """With many groups x distinct values the dense count tables are replaced by per-level tables or by
    sorting and selection; small limits force those paths on small data."""
    monkeypatch.setattr("cipulse.store.sqlite_columnar._MAX_TABLE_CELLS", table_cells)
    store = SqliteStore(tmp_path / "paths.db")
    jobs = hand_built()
    for batch in generate(seed=9, jobs=1500, start=at(0), days=0.04, batch_jobs=500):
        jobs += batch.jobs
    store.upsert([], jobs)
    for repository in (None, "octo/alpha"):
        assert store.window_facts(repository, *WINDOW) == facts_from_jobs(jobs, repository, *WINDOW)
    store.close()


def test_dense_windows_roll_the_finest_table_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Many jobs over few groups and few distinct seconds: percentiles come from one finest (group x
    value) table summed per level, and still equal the reference (branchless jobs included)."""
    import cipulse.store.sqlite_columnar as columnar

    rolled: list[int] = []
    original = columnar._rollup

    def counting_rollup(finest: Any, level_of: Any, n_groups: int) -> Any:
        rolled.append(1)
        return original(finest, level_of, n_groups)

    monkeypatch.setattr(columnar, "_rollup", counting_rollup)
    store = SqliteStore(tmp_path / "dense.db")
    jobs = [
        job(
            repository=("octo/a", "octo/b")[index % 2],
            name=("build", "test", "lint")[index % 3],
            head_branch=("main", None, "dev")[index % 5 % 3],
            conclusion=("success", "failure", "cancelled", "skipped")[index % 7 % 4],
            queued=index % 3000,
            started=index % 3000 + index % 11,
            completed=index % 3000 + index % 11 + index % 17,
        )
        for index in range(3000)
    ]
    store.upsert([], jobs)
    assert store.window_facts(None, *WINDOW) == facts_from_jobs(jobs, None, *WINDOW)
    assert store.window_facts("octo/b", *WINDOW) == facts_from_jobs(jobs, "octo/b", *WINDOW)
    assert rolled, "the finest-table path was not taken"
    store.close()
