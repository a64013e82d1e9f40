"""Versioned SQLite schema: an ordered list of migrations and a table recording which ones ran.

Each migration runs once, inside the same ``BEGIN IMMEDIATE`` transaction that records it, so two processes
opening a fresh database at the same time cannot both apply it, and a crash mid-migration leaves nothing
half-applied (upgrading 1M jobs to version 2 takes about 20 s, in one transaction). Never edit a released
migration: append a new one.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


# Derived job values (see `cipulse.metrics.derive`, the reference these SQL expressions must equal) are
# generated columns: SQLite computes them in C on insert, so ingest pays no Python cost for them.
_JOB_DERIVED = """
    window_at INTEGER GENERATED ALWAYS AS (COALESCE(created_at, started_at, completed_at)) STORED,
    outcome TEXT GENERATED ALWAYS AS (
        CASE WHEN status <> 'completed' THEN 'running'
             WHEN conclusion = 'success' THEN 'success'
             WHEN conclusion IN ('failure', 'timed_out', 'startup_failure') THEN 'failure'
             WHEN conclusion = 'cancelled' THEN 'cancelled'
             WHEN conclusion = 'skipped' THEN 'skipped'
             ELSE 'other' END) STORED,
    duration_s INTEGER GENERATED ALWAYS AS (
        CASE WHEN status = 'completed' AND completed_at >= started_at
             THEN (completed_at - started_at) / 1000000 END) STORED,
    queue_s INTEGER GENERATED ALWAYS AS (
        CASE WHEN conclusion IS NOT 'skipped' AND started_at >= created_at
             THEN (started_at - created_at) / 1000000 END) STORED,
    queue_exact INTEGER GENERATED ALWAYS AS (
        CASE WHEN queue_s IS NOT NULL AND NOT queue_estimated THEN 1 ELSE 0 END) STORED,
    clock_skew INTEGER GENERATED ALWAYS AS (
        COALESCE(completed_at < started_at, 0) OR COALESCE(started_at < created_at, 0)) STORED,
    billable_minutes INTEGER GENERATED ALWAYS AS (COALESCE((duration_s + 59) / 60, 0)) STORED
"""

_INITIAL: Final = Migration(
    1,
    "runs, jobs with derived metric columns, steps, tombstones, watermarks",
    f"""
        CREATE TABLE runs (
            repository TEXT NOT NULL,
            run_id INTEGER NOT NULL,
            run_attempt INTEGER NOT NULL,
            run_number INTEGER NOT NULL,
            workflow_id INTEGER,
            workflow_name TEXT NOT NULL,
            event TEXT NOT NULL,
            head_sha TEXT NOT NULL,
            head_branch TEXT,
            status TEXT NOT NULL,
            conclusion TEXT,
            created_at INTEGER NOT NULL,
            run_started_at INTEGER,
            updated_at INTEGER,
            actor TEXT,
            html_url TEXT,
            pull_request_numbers TEXT NOT NULL,
            duration_s INTEGER GENERATED ALWAYS AS (
                CASE WHEN status = 'completed' AND updated_at >= COALESCE(run_started_at, created_at)
                     THEN (updated_at - COALESCE(run_started_at, created_at)) / 1000000 END) STORED,
            PRIMARY KEY (repository, run_id, run_attempt)
        );
        CREATE INDEX runs_created ON runs (created_at);
        CREATE TABLE jobs (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            repository TEXT NOT NULL,
            job_id INTEGER NOT NULL,
            run_id INTEGER NOT NULL,
            run_attempt INTEGER NOT NULL,
            name TEXT NOT NULL,
            workflow_name TEXT NOT NULL,
            head_sha TEXT NOT NULL,
            head_branch TEXT,
            status TEXT NOT NULL,
            conclusion TEXT,
            created_at INTEGER,
            started_at INTEGER,
            completed_at INTEGER,
            queue_estimated INTEGER NOT NULL,
            runner_name TEXT,
            runner_labels TEXT NOT NULL,
            labels_key TEXT NOT NULL,
            {_JOB_DERIVED},
            UNIQUE (repository, job_id)
        );
        CREATE INDEX jobs_window ON jobs (window_at);
        CREATE TABLE steps (
            repository TEXT NOT NULL,
            job_id INTEGER NOT NULL,
            number INTEGER NOT NULL,
            name TEXT NOT NULL,
            status TEXT NOT NULL,
            conclusion TEXT,
            started_at INTEGER,
            completed_at INTEGER,
            PRIMARY KEY (repository, job_id, number)
        ) WITHOUT ROWID;
        CREATE TABLE job_tombstones (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            job_seq INTEGER NOT NULL
        );
        CREATE TRIGGER jobs_deleted AFTER DELETE ON jobs BEGIN
            INSERT INTO job_tombstones (job_seq) VALUES (old.seq);
            DELETE FROM steps WHERE repository = old.repository AND job_id = old.job_id;
        END;
        CREATE TABLE watermarks (
            monitor TEXT PRIMARY KEY,
            newest_created_at INTEGER,
            updated_at INTEGER NOT NULL
        );
        """,
)


# Migration 2: the columns window facts need, kept per job in `job_facts`, a table clustered by
# (repository, window_at) so a window is ONE contiguous range read. Each row's ``facts`` is fixed-width
# hex text, so a window is fetched as one ``group_concat`` string and decoded by numpy without a Python
# object per job (`sqlite_columnar`). Triggers keep it equal to `jobs` on insert, update and delete
# (INSERT OR REPLACE deletes the old row first: ``recursive_triggers``, set by `sqlite.configure`).
# Layout, 30 characters:
#   fact group id  %08x  (repository, workflow, job name, branch, runner labels) -> `fact_groups`
#   outcome        %x    index in `metrics.outcome.OUTCOMES`
#   flags          %x    1 = exact queue time, 2 = clock skew
#   duration_s + 1 %010x (0 = unknown; 16^10 s exceeds any span of datetimes)
#   queue_s + 1    %010x (0 = unknown)
# ``job_fact_days`` counts the changes to each (repository, UTC day) of ``job_facts``: a reader that
# cached a day's rows knows they are still current while the count is unchanged.
_GROUP_OF = """fact_groups WHERE repository = {j}.repository AND workflow_name = {j}.workflow_name
          AND name = {j}.name AND has_branch = ({j}.head_branch IS NOT NULL)
          AND head_branch = IFNULL({j}.head_branch, '') AND labels_key = {j}.labels_key"""
_FACTS_GROUP = "(SELECT id FROM " + _GROUP_OF + ")"
_FACTS_TEXT = """printf('%08x%x%x%010x%010x', {group},
          CASE {j}.outcome WHEN 'success' THEN 0 WHEN 'failure' THEN 1 WHEN 'cancelled' THEN 2
               WHEN 'skipped' THEN 3 WHEN 'other' THEN 4 ELSE 5 END,
          {j}.queue_exact + 2 * {j}.clock_skew, IFNULL({j}.duration_s + 1, 0), IFNULL({j}.queue_s + 1, 0))"""
# A trigger's statements take the conflict policy of the statement firing it (INSERT OR REPLACE), so
# the group is added only when missing instead of relying on OR IGNORE.
_ADD_GROUP = "INSERT INTO fact_groups (repository, workflow_name, name, has_branch, head_branch, labels_key)"
_ADD_NEW_FACTS = f"""
            {_ADD_GROUP}
                SELECT NEW.repository, NEW.workflow_name, NEW.name, NEW.head_branch IS NOT NULL,
                       IFNULL(NEW.head_branch, ''), NEW.labels_key
                WHERE NEW.window_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {_GROUP_OF.format(j="NEW")});
            INSERT INTO job_facts (repository, window_at, seq, facts)
                SELECT NEW.repository, NEW.window_at, NEW.seq,
                       {_FACTS_TEXT.format(group=_FACTS_GROUP.format(j="NEW"), j="NEW")}
                WHERE NEW.window_at IS NOT NULL;"""
_DELETE_OLD_FACTS = """
            DELETE FROM job_facts
                WHERE repository = OLD.repository AND window_at = OLD.window_at AND seq = OLD.seq;"""
# The UTC day of a window_at (floor division, as Python's //, also before 1970).
_DAY = "(({w} - (({w} % 86400000000) + 86400000000) % 86400000000) / 86400000000)"
_NEW_DAY = _DAY.format(w="NEW.window_at")
# An UPSERT clause is honoured inside triggers (unlike OR IGNORE, overridden by the outer OR REPLACE).
_COUNT_NEW_DAY = f"""
            INSERT INTO job_fact_days (repository, day, changes)
                SELECT NEW.repository, {_NEW_DAY}, 1 WHERE NEW.window_at IS NOT NULL
                ON CONFLICT (repository, day) DO UPDATE SET changes = changes + 1;"""
_COUNT_OLD_DAY = f"""
            UPDATE job_fact_days SET changes = changes + 1
                WHERE repository = OLD.repository AND day = {_DAY.format(w="OLD.window_at")};"""

_JOB_FACTS: Final = Migration(
    2,
    "job_facts clustered by (repository, window_at), fact_groups, job_fact_days; no tombstones",
    f"""
        CREATE TABLE fact_groups (
            id INTEGER PRIMARY KEY CHECK (id < 4294967296),
            repository TEXT NOT NULL,
            workflow_name TEXT NOT NULL,
            name TEXT NOT NULL,
            has_branch INTEGER NOT NULL,
            head_branch TEXT NOT NULL,
            labels_key TEXT NOT NULL,
            UNIQUE (repository, workflow_name, name, has_branch, head_branch, labels_key)
        );
        CREATE TABLE job_facts (
            repository TEXT NOT NULL,
            window_at INTEGER NOT NULL,
            seq INTEGER NOT NULL,
            facts TEXT NOT NULL,
            PRIMARY KEY (repository, window_at, seq)
        ) WITHOUT ROWID;
        {_ADD_GROUP}
            SELECT DISTINCT repository, workflow_name, name, head_branch IS NOT NULL, IFNULL(head_branch, ''),
                   labels_key
            FROM jobs WHERE window_at IS NOT NULL ORDER BY 1, 2, 3, 4, 5, 6;
        INSERT INTO job_facts (repository, window_at, seq, facts)
            SELECT repository, window_at, seq,
                   {_FACTS_TEXT.format(group=_FACTS_GROUP.format(j="jobs"), j="jobs")}
            FROM jobs WHERE window_at IS NOT NULL ORDER BY repository, window_at, seq;
        CREATE TABLE job_fact_days (
            repository TEXT NOT NULL,
            day INTEGER NOT NULL,
            changes INTEGER NOT NULL,
            PRIMARY KEY (repository, day)
        ) WITHOUT ROWID;
        INSERT INTO job_fact_days (repository, day, changes)
            SELECT repository, {_DAY.format(w="window_at")}, 1 FROM job_facts GROUP BY 1, 2;
        CREATE TRIGGER jobs_facts_added AFTER INSERT ON jobs BEGIN{_ADD_NEW_FACTS}{_COUNT_NEW_DAY}
        END;
        CREATE TRIGGER jobs_facts_updated AFTER UPDATE ON jobs BEGIN
            {_DELETE_OLD_FACTS}{_COUNT_OLD_DAY}{_ADD_NEW_FACTS}{_COUNT_NEW_DAY}
        END;
        DROP TRIGGER jobs_deleted;
        CREATE TRIGGER jobs_deleted AFTER DELETE ON jobs BEGIN{_DELETE_OLD_FACTS}{_COUNT_OLD_DAY}
            DELETE FROM steps WHERE repository = OLD.repository AND job_id = OLD.job_id;
        END;
        DROP TABLE job_tombstones;
        """,
)

MIGRATIONS: Final[tuple[Migration, ...]] = (_INITIAL, _JOB_FACTS)


def applied_versions(conn: sqlite3.Connection) -> set[int]:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    return {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}


def _check_not_newer(done: set[int], known: int) -> None:
    if done and max(done) > known:
        raise RuntimeError(
            f"database schema version {max(done)} is newer than this cipulse understands ({known}); "
            "upgrade cipulse"
        )


def _up_to_date(conn: sqlite3.Connection, migrations: tuple[Migration, ...], known: int) -> bool:
    """Whether every migration is applied, found with a plain read: opening a current database (every CLI
    command, every reader) must not wait for the write lock a busy collector holds."""
    try:
        done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
    except sqlite3.OperationalError as error:
        if "no such table" in str(error):
            return False
        raise
    _check_not_newer(done, known)
    return {m.version for m in migrations} <= done


def migrate(conn: sqlite3.Connection, migrations: tuple[Migration, ...] = MIGRATIONS) -> list[int]:
    """Apply pending migrations in order; return the versions applied now. The connection must be in
    autocommit mode (isolation_level=None) so the transactions here are the only ones."""
    known = max((m.version for m in migrations), default=0)
    if _up_to_date(conn, migrations, known):
        return []
    applied_now: list[int] = []
    conn.execute("BEGIN IMMEDIATE")
    try:
        done = applied_versions(conn)
        _check_not_newer(done, known)
        for migration in sorted(migrations, key=lambda m: m.version):
            if migration.version in done:
                continue
            for statement in _statements(migration.sql):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (migration.version, migration.name, datetime.now(UTC).isoformat()),
            )
            applied_now.append(migration.version)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return applied_now


def _statements(script: str) -> list[str]:
    """Split a migration into statements (``sqlite3.complete_statement`` keeps trigger bodies whole)."""
    statements: list[str] = []
    current = ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    if current.strip():
        statements.append(current.strip())
    return statements
