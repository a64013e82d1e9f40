"""SQLite store, the embedded default: one file, many processes.

WAL mode lets the collector write while the dashboard, MCP server and reports read from other processes;
writers serialise on ``BEGIN IMMEDIATE`` with a busy timeout instead of failing. Each `upsert` is one
transaction, and watermarks live in the same file, so after a crash the data and the watermark are always
consistent with each other (``synchronous=NORMAL``: an application crash loses nothing committed; a power
cut may lose the last transactions, data and watermark together, which the collector simply re-fetches).
Derived job values are generated columns, and triggers keep each job's window facts in ``job_facts``, a
table clustered by (repository, window_at) (`migrations`). Window facts come from one range read of that
table decoded by numpy (`sqlite_columnar`, the default) or from plain SQL over ``jobs``
(`sqlite_facts.SqlFacts`, ``columnar=False``); both equal `metrics.facts.facts_from_jobs`.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from cipulse.metrics.cost import RunnerRates
from cipulse.metrics.facts import WindowFacts, check_window
from cipulse.records import Job, Step, WorkflowRun
from cipulse.store.base import RecordBatch, StoreUnavailable, TrainingRow, Watermark, upsert_each
from cipulse.store.migrations import migrate
from cipulse.store.sqlite_columnar import MAX_CACHED_JOBS, ColumnarFacts
from cipulse.store.sqlite_facts import FactsEngine, SqlFacts, collect
from cipulse.store.sqlite_rows import (
    INSERT_JOB,
    INSERT_RUN,
    INSERT_STEP,
    JOB_COLUMNS,
    RUN_COLUMNS,
    STEP_COLUMNS,
    from_micros,
    job_from_row,
    job_row,
    run_from_row,
    run_row,
    step_from_row,
    step_rows,
    to_micros,
)

PAGE_SIZE: Final = 2000
_OUTAGE_MARKERS: Final = ("locked", "busy", "disk is full", "disk i/o", "unable to open", "readonly")


def configure(conn: sqlite3.Connection, busy_timeout_ms: int) -> None:
    """Connection settings every cipulse writer uses (the benchmark's raw baseline uses them too)."""
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    # REPLACE deletes the old row; its job_facts/step cleanup trigger only fires with recursive triggers.
    conn.execute("PRAGMA recursive_triggers = ON")


def _unavailable_or(error: sqlite3.OperationalError, path: str) -> Exception:
    """Lock timeouts, a full disk or a vanished file are outages (spool and retry); anything else is a bug."""
    if any(marker in str(error).lower() for marker in _OUTAGE_MARKERS):
        return StoreUnavailable(f"SQLite database {path} is not writable right now: {error}")
    return error


class SqliteStore:
    """The embedded store. Thread-safe within a process (one connection behind a lock); open one instance
    per process, in as many processes as needed.

    Window facts need no warm-up: each call reads its window from ``job_facts``, keeping up to
    ``cached_jobs`` decoded whole days (22 bytes per job; 0 keeps none) for the next call, which re-reads
    only the days that changed since. ``columnar=False`` computes them in plain SQL instead: a
    cross-check, much slower for large windows (see bench/bench_store.py)."""

    def __init__(
        self,
        path: str | Path,
        *,
        busy_timeout_ms: int = 30_000,
        columnar: bool = True,
        cached_jobs: int = MAX_CACHED_JOBS,
    ) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        try:
            self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._conn.row_factory = sqlite3.Row
            configure(self._conn, busy_timeout_ms)
            migrate(self._conn)
        except sqlite3.OperationalError as error:
            raise _unavailable_or(error, self.path) from error
        self._columnar = ColumnarFacts(cached_jobs) if columnar else None

    # -- writes ---------------------------------------------------------------------------------------

    def _write(self, statements: Sequence[tuple[str, Sequence[Sequence[Any]]]]) -> list[int]:
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as error:
                raise _unavailable_or(error, self.path) from error
            try:
                changed = []
                for sql, rows in statements:
                    cursor = self._conn.executemany(sql, rows)
                    changed.append(max(cursor.rowcount, 0))
                self._conn.execute("COMMIT")
            except sqlite3.OperationalError as error:
                self._rollback()
                raise _unavailable_or(error, self.path) from error
            except BaseException:
                self._rollback()
                raise
            return changed

    def _rollback(self) -> None:
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")

    def upsert(self, runs: Sequence[WorkflowRun], jobs: Sequence[Job]) -> None:
        """Jobs are written before their steps: replacing a job deletes its old steps (trigger)."""
        steps = [row for job in jobs if job.steps for row in step_rows(job)]
        self._write(
            [
                (INSERT_RUN, [run_row(run) for run in runs]),
                (INSERT_JOB, [job_row(job) for job in jobs]),
                (INSERT_STEP, steps),
            ]
        )

    def upsert_batches(
        self, batches: Iterable[RecordBatch], on_stored: Callable[[int], None] | None = None
    ) -> None:
        """One transaction per batch: SQLite writes in-process, there is no round trip to overlap."""
        upsert_each(self, batches, on_stored)

    def set_watermark(self, watermark: Watermark) -> None:
        row = (watermark.monitor, to_micros(watermark.newest_created_at), to_micros(watermark.updated_at))
        sql = "INSERT OR REPLACE INTO watermarks (monitor, newest_created_at, updated_at) VALUES (?, ?, ?)"
        self._write([(sql, [row])])

    def delete_older_than(self, cutoff: datetime) -> int:
        """Steps and job facts go with their jobs (trigger)."""
        micros = to_micros(cutoff)
        runs, jobs = self._write(
            [
                ("DELETE FROM runs WHERE created_at < ?", [(micros,)]),
                ("DELETE FROM jobs WHERE window_at < ?", [(micros,)]),
            ]
        )
        return runs + jobs

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reads ----------------------------------------------------------------------------------------

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def get_watermark(self, monitor: str) -> Watermark | None:
        rows = self._query(
            "SELECT monitor, newest_created_at, updated_at FROM watermarks WHERE monitor = ?", (monitor,)
        )
        if not rows:
            return None
        updated = from_micros(rows[0]["updated_at"])
        if updated is None:
            raise ValueError(f"watermark {monitor!r} has no updated_at")
        return Watermark(rows[0]["monitor"], from_micros(rows[0]["newest_created_at"]), updated)

    def count_jobs(self, repository: str | None = None) -> int:
        if repository is None:
            return int(self._query("SELECT COUNT(*) FROM jobs")[0][0])
        return int(self._query("SELECT COUNT(*) FROM jobs WHERE repository = ?", (repository,))[0][0])

    def count_runs(self, repository: str | None = None) -> int:
        if repository is None:
            return int(self._query("SELECT COUNT(*) FROM runs")[0][0])
        return int(self._query("SELECT COUNT(*) FROM runs WHERE repository = ?", (repository,))[0][0])

    def _repositories(self, table: str, repository: str | None) -> list[str]:
        if repository is not None:
            return [repository]
        return [row[0] for row in self._query(f"SELECT DISTINCT repository FROM {table} ORDER BY 1")]

    def iter_jobs(self, repository: str | None = None) -> Iterator[Job]:
        """Pages by (repository, job_id): a long iteration never pins one read transaction open."""
        for repo in self._repositories("jobs", repository):
            last = -1
            while True:
                with self._lock:
                    rows = self._conn.execute(
                        f"SELECT {JOB_COLUMNS} FROM jobs WHERE repository = ? AND job_id > ? "
                        f"ORDER BY job_id LIMIT {PAGE_SIZE}",
                        (repo, last),
                    ).fetchall()
                    steps: dict[int, list[Step]] = {}
                    if rows:
                        for step in self._conn.execute(
                            f"SELECT {STEP_COLUMNS} FROM steps "
                            "WHERE repository = ? AND job_id BETWEEN ? AND ? ORDER BY job_id, number",
                            (repo, rows[0]["job_id"], rows[-1]["job_id"]),
                        ):
                            steps.setdefault(step["job_id"], []).append(step_from_row(step))
                for row in rows:
                    yield job_from_row(row, tuple(steps.get(row["job_id"], ())))
                if len(rows) < PAGE_SIZE:
                    break
                last = rows[-1]["job_id"]

    def iter_runs(self, repository: str | None = None) -> Iterator[WorkflowRun]:
        for repo in self._repositories("runs", repository):
            last = (-1, -1)
            while True:
                rows = self._query(
                    f"SELECT {RUN_COLUMNS} FROM runs WHERE repository = ? AND (run_id, run_attempt) > (?, ?) "
                    f"ORDER BY run_id, run_attempt LIMIT {PAGE_SIZE}",
                    (repo, *last),
                )
                for row in rows:
                    yield run_from_row(row)
                if len(rows) < PAGE_SIZE:
                    break
                last = (rows[-1]["run_id"], rows[-1]["run_attempt"])

    def training_rows(self, repository: str | None = None) -> list[TrainingRow]:
        where = "" if repository is None else "WHERE repository = ?"
        rows = self._query(
            "SELECT repository, workflow_name, run_id, run_attempt, head_sha, head_branch, event, actor, "
            f"status, conclusion, created_at, duration_s FROM runs {where} "
            "ORDER BY created_at, repository, run_id, run_attempt",
            () if repository is None else (repository,),
        )
        result = []
        for row in rows:
            created = from_micros(row["created_at"])
            if created is None:
                raise ValueError("stored run without created_at")
            result.append(
                TrainingRow(
                    repository=row["repository"],
                    workflow_name=row["workflow_name"],
                    run_id=row["run_id"],
                    run_attempt=row["run_attempt"],
                    head_sha=row["head_sha"],
                    branch=row["head_branch"],
                    event=row["event"],
                    actor=row["actor"],
                    status=row["status"],
                    conclusion=row["conclusion"],
                    created_at=created,
                    duration_seconds=row["duration_s"],
                )
            )
        return result

    def window_facts(
        self,
        repository: str | None,
        start: datetime,
        end: datetime,
        *,
        rates: RunnerRates | None = None,
    ) -> WindowFacts:
        check_window(start, end)
        start_us, end_us = to_micros(start), to_micros(end)
        assert start_us is not None and end_us is not None
        with self._lock:
            self._conn.execute("BEGIN")  # one snapshot for every query
            try:
                engine: FactsEngine
                if self._columnar is not None:
                    self._columnar.bind(self._conn)
                    engine = self._columnar
                else:
                    engine = SqlFacts(self._conn)
                return collect(engine, repository, start, end, start_us, end_us, rates)
            finally:
                if self._columnar is not None:
                    self._columnar.bind(None)
                self._conn.execute("COMMIT")
