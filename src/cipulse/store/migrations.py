"""Versioned SQLite schema: an ordered list of migrations and a table recording which ones ran.

Each migration runs once, inside the same ``BEGIN IMMEDIATE`` transaction that records it, so two processes
opening a fresh database at the same time cannot both apply it, and a crash mid-migration leaves nothing
half-applied. Never edit a released migration: append a new one.
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

MIGRATIONS: Final[tuple[Migration, ...]] = (
    Migration(
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
    ),
)


def applied_versions(conn: sqlite3.Connection) -> set[int]:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    return {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}


def migrate(conn: sqlite3.Connection, migrations: tuple[Migration, ...] = MIGRATIONS) -> list[int]:
    """Apply pending migrations in order; return the versions applied now. The connection must be in
    autocommit mode (isolation_level=None) so the transactions here are the only ones."""
    known = max((m.version for m in migrations), default=0)
    applied_now: list[int] = []
    conn.execute("BEGIN IMMEDIATE")
    try:
        done = applied_versions(conn)
        if done and max(done) > known:
            raise RuntimeError(
                f"database schema version {max(done)} is newer than this cipulse understands ({known}); "
                "upgrade cipulse"
            )
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
