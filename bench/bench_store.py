"""Store benchmarks, measured side by side in one run and printed as ratios.

(a) Ingest: records/s of `SqliteStore.upsert` from parsed records (`WorkflowRun`/`Job` objects, steps
    included), against a raw ``executemany`` of the very same, already converted rows into an identical
    schema, same batch size, one transaction per batch. Ratio = store / raw (goal >= 0.8).
(b) Window facts: latency p50/p95 of a 30-day `window_facts` over a database of 1,000,000 job attempts
    (spread over 90 days), next to a naive full scan (read every job back and aggregate in Python), and
    the latency of the FIRST call in a fresh process (what every `cipulse` CLI command and a restarted
    operator pays): open the store + one `window_facts`, each in a new interpreter (imports not counted).

Search stores: see `bench_search_stores` below.

    .venv/bin/python bench/bench_store.py [--jobs 1000000] [--ingest-jobs 100000] [--repeats 20]
        [--fresh-processes 5] [--skip-search]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cipulse.metrics.facts import WindowFacts, facts_from_jobs
from cipulse.store.migrations import migrate
from cipulse.store.sqlite import SqliteStore, configure
from cipulse.store.sqlite_rows import INSERT_JOB, INSERT_RUN, INSERT_STEP, job_row, run_row, step_rows
from cipulse.store.synthetic import Batch, generate

console = Console()
START = datetime(2026, 1, 1, tzinfo=UTC)
DAYS = 90
SEED = 2026
SCHEMA_TAG = "v2b"  # bump when the generator or the schema changes: the cached database is rebuilt


@dataclass
class Result:
    name: str
    value: str
    note: str = ""


def progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )


def batches(jobs: int, batch_jobs: int = 1000, seed: int = SEED) -> Iterator[Batch]:
    return generate(seed=seed, jobs=jobs, start=START, days=DAYS, batch_jobs=batch_jobs)


def window() -> tuple[datetime, datetime]:
    end = START + timedelta(days=DAYS)
    return end - timedelta(days=30), end


def percentile(samples: list[float], p: int) -> float:
    ordered = sorted(samples)
    return ordered[max(0, -(-p * len(ordered) // 100) - 1)]


# -- (a) ingest ------------------------------------------------------------------------------------------


def ingest_store(parsed: list[Batch], path: Path) -> float:
    store = SqliteStore(path)
    began = time.perf_counter()
    for batch in parsed:
        store.upsert(batch.runs, batch.jobs)
    elapsed = time.perf_counter() - began
    store.close()
    return elapsed


Rows = list[tuple[object, ...]]


def ingest_raw(rows: list[tuple[Rows, Rows, Rows]], path: Path) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    configure(conn, 30_000)
    migrate(conn)
    began = time.perf_counter()
    for run_rows, job_rows, steps in rows:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(INSERT_RUN, run_rows)
        conn.executemany(INSERT_JOB, job_rows)
        conn.executemany(INSERT_STEP, steps)
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - began
    conn.close()
    return elapsed


def bench_ingest(jobs: int, rounds: int, workdir: Path) -> list[Result]:
    parsed = list(batches(jobs))
    records = sum(len(b.runs) + len(b.jobs) for b in parsed)
    steps = sum(len(j.steps) for b in parsed for j in b.jobs)
    rows = [
        (
            [run_row(r) for r in b.runs],
            [job_row(j) for j in b.jobs],
            [row for j in b.jobs for row in step_rows(j)],
        )
        for b in parsed
    ]
    store_times, raw_times = [], []
    with progress() as bar:
        task = bar.add_task("ingest (store vs raw executemany)", total=rounds)
        for index in range(rounds):
            raw_times.append(ingest_raw(rows, workdir / f"raw-{index}.db"))
            store_times.append(ingest_store(parsed, workdir / f"store-{index}.db"))
            bar.advance(task)
    store_rate = records / statistics.median(store_times)
    raw_rate = records / statistics.median(raw_times)
    return [
        Result(
            "sqlite ingest, records/s (median of rounds)",
            f"{store_rate:,.0f}",
            f"{records:,} runs + jobs (+ {steps:,} steps inside the jobs)",
        ),
        Result("raw executemany, records/s", f"{raw_rate:,.0f}", "same rows, same schema, same batches"),
        Result("sqlite ingest ratio store/raw", f"{store_rate / raw_rate:.2f}", "goal >= 0.8"),
    ]


# -- (b) window facts latency -----------------------------------------------------------------------------


def cached_database(jobs: int) -> Path:
    """The 1M-job database is built once and reused (keyed by size, seed and schema tag)."""
    cache = Path(os.environ.get("CIPULSE_CACHE_DIR", Path.home() / ".cache" / "cipulse")) / "bench"
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"store-{jobs}-s{SEED}-{SCHEMA_TAG}.db"
    if path.exists():
        return path
    partial = path.with_suffix(".partial")
    for stale in cache.glob(partial.name + "*"):
        stale.unlink()
    store = SqliteStore(partial, columnar=False)
    with progress() as bar:
        task = bar.add_task(f"building {jobs:,}-job database", total=jobs)
        for batch in batches(jobs, batch_jobs=5000):
            store.upsert(batch.runs, batch.jobs)
            bar.advance(task, len(batch.jobs))
    store.close()
    conn = sqlite3.connect(partial)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    partial.rename(path)
    return path


def timed(call: Callable[[], WindowFacts]) -> tuple[float, WindowFacts]:
    began = time.perf_counter()
    result = call()
    return time.perf_counter() - began, result


def time_calls(
    call: Callable[[], WindowFacts], repeats: int, label: str, before_each: Callable[[], None] | None = None
) -> tuple[list[float], WindowFacts]:
    samples = []
    result = None
    with progress() as bar:
        task = bar.add_task(label, total=repeats)
        for _ in range(repeats):
            if before_each is not None:
                before_each()
            elapsed, result = timed(call)
            samples.append(elapsed)
            bar.advance(task)
    assert result is not None
    return samples, result


def ms(samples: list[float]) -> str:
    return f"{percentile(samples, 50) * 1000:,.0f} / {percentile(samples, 95) * 1000:,.0f}"


_FIRST_CALL = """
import sys, time
imported = time.perf_counter()
from datetime import datetime
from cipulse.store.sqlite import SqliteStore
start, end = datetime.fromisoformat(sys.argv[2]), datetime.fromisoformat(sys.argv[3])
began = time.perf_counter()
store = SqliteStore(sys.argv[1])
facts = store.window_facts(None, start, end)
print(time.perf_counter() - began, began - imported, facts.overall.total)
"""


def first_call_in_fresh_process(path: Path, start: datetime, end: datetime) -> tuple[float, float, int]:
    """In a new interpreter: seconds to open the store and answer one window, seconds spent importing
    the store's modules, and the jobs it counted."""
    done = subprocess.run(
        [sys.executable, "-c", _FIRST_CALL, str(path), start.isoformat(), end.isoformat()],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")},
    )
    seconds, imports, total = done.stdout.split()
    return float(seconds), float(imports), int(total)


def bench_sqlite_window_facts(path: Path, args: argparse.Namespace, workdir: Path) -> list[Result]:
    """Window facts on a private copy of the cached database (the writes below must not touch the cache)."""
    copy = workdir / "latency.db"
    shutil.copyfile(path, copy)
    start, end = window()
    fresh: list[float] = []
    imports: list[float] = []
    with progress() as bar:
        task = bar.add_task("sqlite first call, fresh processes", total=args.fresh_processes)
        for _ in range(args.fresh_processes):
            seconds, imported, counted = first_call_in_fresh_process(copy, start, end)
            fresh.append(seconds)
            imports.append(imported)
            bar.advance(task)
    store = SqliteStore(copy)
    total_jobs = store.count_jobs()
    cold, facts = timed(lambda: store.window_facts(None, start, end))
    if counted != facts.overall.total:
        raise SystemExit("the fresh process counted a different window")
    warm, _ = time_calls(lambda: store.window_facts(None, start, end), args.repeats, "sqlite window_facts")
    repo, _ = time_calls(lambda: store.window_facts("octo/beta", start, end), args.repeats, "sqlite one repo")
    # a collector keeps writing meanwhile: 500 jobs overwritten or added before each call
    writes = iter(list(batches(500 * args.repeats, batch_jobs=500, seed=SEED + 1)))

    def write() -> None:
        batch = next(writes)
        store.upsert(batch.runs, batch.jobs)

    busy, busy_facts = time_calls(
        lambda: store.window_facts(None, start, end), args.repeats, "sqlite with writes", before_each=write
    )
    sql_store = SqliteStore(copy, columnar=False)
    sql, sql_facts = time_calls(
        lambda: sql_store.window_facts(None, start, end), args.sql_repeats, "sqlite plain SQL"
    )
    if sql_facts != busy_facts:
        raise SystemExit("plain SQL and columnar window_facts differ")
    naive, naive_facts = time_calls(
        lambda: facts_from_jobs(store.iter_jobs(), None, start, end), args.naive_repeats, "naive full scan"
    )
    if naive_facts != busy_facts:
        raise SystemExit("window_facts differs from the naive full scan")
    sql_store.close()
    store.close()
    note = f"{facts.overall.total:,} jobs in the window, {total_jobs:,} stored"
    speedup = percentile(naive, 50) / percentile(warm, 50)
    return [
        Result("sqlite 30-day window_facts p50 / p95 (ms)", ms(warm), f"{note}; goal p95 < 300 ms"),
        Result(
            "sqlite same, 500 jobs written before each call",
            ms(busy),
            "writes spread over all 90 days: every day they touch is re-read",
        ),
        Result("sqlite same, one repository", ms(repo)),
        Result(
            "sqlite first call, fresh process, p50 / max (ms)",
            f"{percentile(fresh, 50) * 1000:,.0f} / {max(fresh) * 1000:,.0f}",
            f"{len(fresh)} new interpreters: open the store + one window_facts; importing the store "
            f"takes another {percentile(imports, 50) * 1000:,.0f} ms (p50)",
        ),
        Result("sqlite first call in this process (ms)", f"{cold * 1000:,.0f}", "after the fresh processes"),
        Result("sqlite plain-SQL engine p50 / p95 (ms)", ms(sql), "GROUP BY + ROW_NUMBER, columnar=False"),
        Result(
            "naive full scan p50 / p95 (ms)",
            ms(naive),
            f"iter_jobs + facts_from_jobs in Python; window_facts is x{speedup:,.0f} faster",
        ),
    ]


# -- search stores ----------------------------------------------------------------------------------------


def bench_search_stores(args: argparse.Namespace, workdir: Path) -> list[Result]:
    """SEARCH STORES: Elasticsearch and OpenSearch ingest ratio (store vs raw _bulk of the same documents)
    and 30-day window_facts latency over the same 1M jobs. Filled in by the search store's owner; must
    return Results like the SQLite sections above and stop every server it starts."""
    from bench_search_store import measure  # bench/ is on sys.path when this file runs as a script

    rows = measure(
        jobs=args.jobs,
        ingest_jobs=min(args.ingest_jobs, 30_000),  # JVM engines on a shared 2-core machine
        ingest_rounds=args.ingest_rounds,
        repeats=args.repeats,
        naive_repeats=1,  # a full scan of 1M documents over HTTP takes minutes
        start=START,
        days=DAYS,
        seed=SEED,
    )
    return [Result(name, value, note) for name, value, note in rows]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=1_000_000, help="jobs in the latency database")
    parser.add_argument("--ingest-jobs", type=int, default=100_000, help="jobs per ingest round")
    parser.add_argument("--ingest-rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=20, help="window_facts calls per measurement")
    parser.add_argument("--sql-repeats", type=int, default=3, help="calls of the plain-SQL engine")
    parser.add_argument("--naive-repeats", type=int, default=2)
    parser.add_argument("--fresh-processes", type=int, default=5, help="first calls, one new process each")
    parser.add_argument("--skip-search", action="store_true")
    args = parser.parse_args()
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="cipulse-bench-") as tmp:
        workdir = Path(tmp)
        results += bench_ingest(args.ingest_jobs, args.ingest_rounds, workdir)
        results += bench_sqlite_window_facts(cached_database(args.jobs), args, workdir)
        if not args.skip_search:
            results += bench_search_stores(args, workdir)
    table = Table(title=f"cipulse store benchmark ({os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f})")
    for column in ("measure", "value", "note"):
        table.add_column(column)
    for result in results:
        table.add_row(result.name, result.value, result.note)
    console.print(table)


if __name__ == "__main__":
    main()
