"""Search-store benchmarks on real Elasticsearch and OpenSearch, measured side by side in one run.

(a) Ingest: records/s from parsed records (runs and jobs with steps) into the store, against a raw
    ``_bulk`` of the very same documents (the store's own encoder, byte for byte), already built and
    serialised, one request per batch, with the store's request parameters, one request in flight, into
    the same index templates. Ratio = store / raw (goal >= 0.8). The store is measured two ways:
    `upsert_batches` (the bulk-load path: one request per batch too, a batch's runs riding with the next
    batch's jobs, plus one moved-job lookup per batch beside it) and one `upsert` per batch (jobs, then
    runs once the jobs are stored: two requests and the lookup, one after the other). The three sides
    take turns going first, each into fresh indices, after two unmeasured warm-up rounds. The CPU seconds
    each side cost (this process, and the engine's own counter) are printed next to it: on a shared
    machine they explain a ratio. ``--placements shared,separate`` repeats the rounds with the engine
    pinned to one core and this process to the others, as when the engine runs on its own nodes.
(b) Window facts: latency p50/p95 of a 30-day `window_facts` over 1,000,000 stored job attempts, next to
    a naive full scan (read every job back and aggregate in Python), whose result must be equal.

Every engine is started here (tests/services/search.py) and stopped at the end; its data directory is kept
under ~/.cache/cipulse/bench/search so later runs skip loading the million jobs. Used by bench_store.py;
also runs alone:

    .venv/bin/python bench/bench_search_store.py [--jobs 1000000] [--ingest-jobs 50000] [--engines opensearch]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Final, Literal

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
import orjson
from tests.services.search import SearchServer, distribution_home

from cipulse.metrics.facts import WindowFacts, facts_from_jobs
from cipulse.store.search import SearchStore
from cipulse.store.search_client import BULK_ANSWER_FIELDS, CLEAN_BULK_ANSWER, BulkAction, bulk_body
from cipulse.store.search_documents import job_source, run_source
from cipulse.store.synthetic import Batch, generate

console = Console()
# Engine data kept between runs, so the million-job index is loaded once (delete the folder to reload).
WRITER = "bench/writer"
DEFAULT_DATA_DIR = Path.home() / ".cache" / "cipulse" / "bench" / "search"
Row = tuple[str, str, str]


def progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )


def percentile(samples: list[float], p: int) -> float:
    ordered = sorted(samples)
    return ordered[max(0, -(-p * len(ordered) // 100) - 1)]


def ms(samples: list[float]) -> str:
    return f"{percentile(samples, 50) * 1000:,.0f} / {percentile(samples, 95) * 1000:,.0f}"


def bulk_bodies(store: SearchStore, parsed: list[Batch]) -> list[bytes]:
    """The documents SearchStore writes, as ready-to-send _bulk bodies (the raw baseline's input)."""
    bodies = []
    for batch in parsed:
        actions = [BulkAction("index", store.layout.run_index(r), r.key, run_source(r)) for r in batch.runs]
        actions += [BulkAction("index", store.layout.job_index(j), j.key, job_source(j)) for j in batch.jobs]
        bodies.append(bulk_body(actions))
    return bodies


def raw_bulk(url: str, bodies: list[bytes]) -> float:
    """One request per batch, in order, with the parameters SearchStore sends; an answer's items are
    decoded only when it does not begin as a clean one, as SearchStore does."""
    params = {"refresh": "false", "filter_path": BULK_ANSWER_FIELDS}
    with httpx.Client(base_url=url, timeout=120.0) as client:
        began = time.perf_counter()
        for body in bodies:
            answer = client.post(
                "/_bulk", content=body, params=params, headers={"Content-Type": "application/x-ndjson"}
            )
            answer.raise_for_status()
            if not answer.content.startswith(CLEAN_BULK_ANSWER) and orjson.loads(answer.content)["errors"]:
                raise SystemExit("raw _bulk rejected documents")
        return time.perf_counter() - began


def store_ingest(store: SearchStore, parsed: list[Batch]) -> float:
    """The bulk-load path (a backfill, a spool replay): one stream, pipelined across batches."""
    began = time.perf_counter()
    store.upsert_batches((batch.runs, batch.jobs) for batch in parsed)
    return time.perf_counter() - began


def store_ingest_calls(store: SearchStore, parsed: list[Batch]) -> float:
    """One `upsert` call per batch (a collector page): every call waits until its runs are stored."""
    began = time.perf_counter()
    for batch in parsed:
        store.upsert(batch.runs, batch.jobs)
    return time.perf_counter() - began


def engine_cpu_seconds(url: str) -> float:
    """CPU time the engine process has used so far (its own counter, refreshed about once a second)."""
    answer = httpx.get(f"{url}/_nodes/_local/stats/process", timeout=60.0).json()
    return float(next(iter(answer["nodes"].values()))["process"]["cpu"]["total_in_millis"]) / 1000


def settle(url: str, timeout: float = 300.0) -> None:
    """Wait until the engine merges nothing: the previous round's background merges would otherwise run
    during (and be charged to) whichever side is measured next."""
    time.sleep(1.5)  # the last periodic refresh (1 s) may still create a segment to merge
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = httpx.get(
            f"{url}/_nodes/_local/stats/indices/merge",
            params={"filter_path": "nodes.*.indices.merges.current"},
            timeout=60.0,
        ).json()
        if all(node["indices"]["merges"]["current"] == 0 for node in answer["nodes"].values()):
            break
        time.sleep(0.2)
    time.sleep(1.0)  # the engine's CPU counter is refreshed about once a second


def with_cpu(url: str, work: Callable[[], float]) -> tuple[float, float, float]:
    """(wall seconds, this process's CPU seconds, engine CPU seconds) of one round, started on an idle
    engine; the engine's CPU includes the merges the round's own writes caused."""
    settle(url)
    engine_before, client_before = engine_cpu_seconds(url), time.process_time()
    wall = work()
    client = time.process_time() - client_before
    settle(url)
    return wall, client, engine_cpu_seconds(url) - engine_before


SIDES: Final = ("raw", "stream", "calls")
WARM_UP_ROUNDS: Final = 2
Placement = Literal["shared", "separate"]
PLACEMENTS: Final[tuple[Placement, ...]] = ("shared", "separate")


@contextmanager
def placed(placement: Placement, engine_group: int) -> Iterator[None]:
    """Which cores the engine and this process run on during the ingest rounds.

    "shared": any core, so the store's own CPU work (deriving and encoding documents) competes with the
    engine's, as on a laptop. "separate": the engine's processes on the first core, this process on the
    others, as when the engine runs on its own nodes; every core is given back afterwards."""
    if placement == "shared":
        yield
        return
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        raise SystemExit("placement 'separate' needs at least two cores")
    engine_pids = [pid for pid in _pids() if _process_group(pid) == engine_group]
    if not engine_pids:
        raise SystemExit(f"no process of the engine's group {engine_group} found: cannot pin it")
    for pid in engine_pids:
        _pin(pid, set(cores[:1]))
    _pin(os.getpid(), set(cores[1:]))
    try:
        yield
    finally:
        for pid in [*engine_pids, os.getpid()]:
            _pin(pid, set(cores))


def _pids() -> list[int]:
    return [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]


def _process_group(pid: int) -> int | None:
    try:
        stat = (Path("/proc") / str(pid) / "stat").read_text()
    except OSError:  # gone meanwhile
        return None
    return int(stat.rsplit(")", 1)[1].split()[2])  # state, ppid, pgrp follow the command name


def _pin(pid: int, cores: set[int]) -> None:
    """Every thread of the process, pass after pass until none is left on other cores: a thread started
    during a pass by one not yet pinned inherits every core (threads inherit their creator's)."""
    while True:
        try:
            tasks = [int(task.name) for task in (Path("/proc") / str(pid) / "task").iterdir()]
        except OSError:  # the process ended
            return
        moved = 0
        for task in tasks:
            try:
                if os.sched_getaffinity(task) != cores:
                    os.sched_setaffinity(task, cores)
                    moved += 1
            except OSError:  # the thread ended meanwhile
                continue
        if not moved:
            return


def bench_ingest(
    engine: str, server: SearchServer, parsed: list[Batch], rounds: int, placement: Placement
) -> list[Row]:
    url = server.url
    if server.pid is None:
        raise SystemExit(f"{engine} is not running")
    with placed(placement, server.pid):  # the server leads its own process group
        measured = ingest_rounds(engine, url, parsed, rounds, placement)
    records = sum(len(b.runs) + len(b.jobs) for b in parsed)
    return ingest_rows(f"{engine}, {placement} cores:", records, measured, placement)


def ingest_rounds(
    engine: str, url: str, parsed: list[Batch], rounds: int, placement: Placement
) -> dict[str, list[tuple[float, float, float]]]:
    """Warm-up rounds first, not measured: the engine compiles its hot paths during the first few
    rounds (a round took 9 s at first and 2 s by the fifth in one trial), which would be charged to
    whichever side happened to go first."""
    measured: dict[str, list[tuple[float, float, float]]] = {side: [] for side in SIDES}
    with progress() as bar:
        task = bar.add_task(
            f"{engine} ingest, {placement} cores (store vs raw _bulk)", total=WARM_UP_ROUNDS + rounds
        )
        for index in range(WARM_UP_ROUNDS):
            ingest_round(url, parsed, index, f"bench-warm-{index}")
            bar.advance(task)
        for index in range(rounds):
            for side, measures in ingest_round(url, parsed, index, f"bench-round-{index}").items():
                measured[side].append(measures)
            bar.advance(task)
    drop_indices(url, "bench-warm-*,bench-round-*")
    return measured


def ingest_round(
    url: str, parsed: list[Batch], index: int, prefix: str
) -> dict[str, tuple[float, float, float]]:
    """Each side once, into fresh indices; the order turns every round, since background merges of a
    side run during the side after it."""
    raw_store = SearchStore(url, index_prefix=f"{prefix}-raw")  # installs the same templates
    bodies = bulk_bodies(raw_store, parsed)
    raw_store.close()
    measures: dict[str, tuple[float, float, float]] = {}
    for side in SIDES[index % 3 :] + SIDES[: index % 3]:
        if side == "raw":
            measures[side] = with_cpu(url, partial(raw_bulk, url, bodies))
            continue
        with SearchStore(url, index_prefix=f"{prefix}-{side}") as store:
            ingest = store_ingest if side == "stream" else store_ingest_calls
            measures[side] = with_cpu(url, partial(ingest, store, parsed))
    return measures


def ingest_rows(
    label: str, records: int, measured: dict[str, list[tuple[float, float, float]]], placement: Placement
) -> list[Row]:
    rate = {side: records / statistics.median(wall for wall, _, _ in measured[side]) for side in SIDES}

    def ratios(side: str) -> str:
        """Each round's own ratio, and their median (rounds pair the sides under the same conditions)."""
        pairs = [raw[0] / ours[0] for raw, ours in zip(measured["raw"], measured[side], strict=True)]
        return f"median {statistics.median(pairs):.2f} of rounds " + ", ".join(f"{r:.2f}" for r in pairs)

    def cpu_total(side: str) -> float:
        """Shared cores: the CPU both sides compete for; separate: the engine's core is the bottleneck."""
        if placement == "separate":
            return statistics.median(engine_s for _, _, engine_s in measured[side])
        return statistics.median(client + engine_s for _, client, engine_s in measured[side])

    def cpu(side: str) -> str:
        client = statistics.median(c for _, c, _ in measured[side])
        engine_s = statistics.median(e for _, _, e in measured[side])
        return f"{client:.2f} / {engine_s:.2f}"

    return [
        (f"{label} raw _bulk, records/s", f"{rate['raw']:,.0f}", "same documents, pre-serialised"),
        (
            f"{label} ingest, upsert_batches, records/s",
            f"{rate['stream']:,.0f}",
            f"{records:,} runs + jobs per round; median",
        ),
        (
            f"{label} ingest ratio upsert_batches/raw",
            f"{rate['stream'] / rate['raw']:.2f}",
            f"ratio of the median rates; goal >= 0.8; per round: {ratios('stream')}",
        ),
        (f"{label} ingest, upsert per batch, records/s", f"{rate['calls']:,.0f}", "median"),
        (
            f"{label} ingest ratio upsert per batch/raw",
            f"{rate['calls'] / rate['raw']:.2f}",
            f"ratio of the median rates; per round: {ratios('calls')}",
        ),
        *((f"{label} CPU s per round, {side}: client / engine", cpu(side), "median") for side in SIDES),
        (
            f"{label} CPU ceiling of the ratio, upsert_batches",
            f"{cpu_total('raw') / cpu_total('stream'):.2f}",
            "raw CPU / store CPU (client + engine): the ratio if both sides kept every core busy"
            if placement == "shared"
            else "raw engine CPU / store engine CPU: the ratio if the engine's core never idled",
        ),
    ]


def timed_calls(call: Callable[[], WindowFacts], repeats: int, label: str) -> tuple[list[float], WindowFacts]:
    samples: list[float] = []
    result: WindowFacts | None = None
    with progress() as bar:
        task = bar.add_task(label, total=repeats)
        for _ in range(repeats):
            began = time.perf_counter()
            result = call()
            samples.append(time.perf_counter() - began)
            bar.advance(task)
    assert result is not None
    return samples, result


def drop_indices(url: str, pattern: str) -> None:
    """Delete by concrete names: Elasticsearch 8 refuses wildcard deletes (destructive_requires_name)."""
    listed = httpx.get(f"{url}/_cat/indices/{pattern}", params={"format": "json", "h": "index"}, timeout=60.0)
    for row in listed.json():
        httpx.delete(f"{url}/{row['index']}", timeout=120.0).raise_for_status()


def bench_latency(
    engine: str,
    url: str,
    batches: Callable[[], Iterator[Batch]],
    jobs: int,
    window: tuple[datetime, datetime],
    repeats: int,
    naive_repeats: int,
) -> list[Row]:
    prefix = f"bench-latency-{jobs}"
    store = SearchStore(url, index_prefix=prefix)
    delete_repository(store, WRITER)  # left behind by an interrupted run
    if store.count_jobs() != jobs:  # not loaded by an earlier run into the same data directory
        with progress() as bar:
            task = bar.add_task(f"{engine}: storing {jobs:,} jobs", total=jobs)
            for batch in batches():
                store.upsert(batch.runs, batch.jobs)
                bar.advance(task, len(batch.jobs))
        httpx.post(f"{url}/{prefix}-*/_forcemerge", params={"max_num_segments": "1"}, timeout=1800.0)
    stored = store.count_jobs()
    start, end = window
    cold_began = time.perf_counter()
    facts = store.window_facts(None, start, end)
    cold = time.perf_counter() - cold_began
    warm, _ = timed_calls(lambda: store.window_facts(None, start, end), repeats, f"{engine} window_facts")
    repo, _ = timed_calls(lambda: store.window_facts("octo/beta", start, end), repeats, f"{engine} one repo")
    uncached_store = SearchStore(url, index_prefix=prefix, request_cache=False)
    uncached, uncached_facts = timed_calls(
        lambda: uncached_store.window_facts(None, start, end), repeats, f"{engine} without request cache"
    )
    uncached_store.close()
    naive, naive_facts = timed_calls(
        lambda: facts_from_jobs(store.iter_jobs(), None, start, end),
        naive_repeats,
        f"{engine} naive full scan",
    )
    if not naive_facts == facts == uncached_facts:
        raise SystemExit(f"{engine}: window_facts differs from the naive full scan")
    busy = with_writes(store, start, end, repeats, engine)
    store.close()
    note = f"{facts.overall.total:,} jobs in the window, {stored:,} stored"
    speedup = percentile(naive, 50) / percentile(uncached, 50)
    return [
        (f"{engine} 30-day window_facts p50 / p95 (ms)", ms(warm), f"{note}; goal p95 < 300 ms"),
        (f"{engine} same, engine request cache off", ms(uncached), "every call aggregates again"),
        (f"{engine} same, 500 jobs written before each call", ms(busy), "refresh invalidates the cache"),
        (f"{engine} same, one repository", ms(repo), ""),
        (f"{engine} first call (ms)", f"{cold * 1000:,.0f}", "cold caches"),
        (
            f"{engine} naive full scan p50 / p95 (ms)",
            ms(naive),
            f"iter_jobs + facts_from_jobs, equal result; x{speedup:,.0f} slower than uncached",
        ),
    ]


def with_writes(store: SearchStore, start: datetime, end: datetime, repeats: int, engine: str) -> list[float]:
    """A collector keeps writing: 500 jobs of a separate repository land before each call (spread over
    every month, so every index refreshes); they are deleted again afterwards, keeping the cached data."""
    writer = WRITER
    writes = iter(
        list(
            generate(seed=7, jobs=500 * repeats, start=start, days=30, repositories=(writer,), batch_jobs=500)
        )
    )

    def write() -> None:
        batch = next(writes)
        store.upsert(batch.runs, batch.jobs)

    samples: list[float] = []
    with progress() as bar:
        task = bar.add_task(f"{engine} with writes", total=repeats)
        for _ in range(repeats):
            write()
            began = time.perf_counter()
            store.window_facts(None, start, end)
            samples.append(time.perf_counter() - began)
            bar.advance(task)
    delete_repository(store, writer)
    return samples


def delete_repository(store: SearchStore, repository: str) -> None:
    url = store._client.url
    pattern = f"{store.layout.runs_pattern},{store.layout.jobs_pattern}"
    httpx.post(f"{url}/{pattern}/_refresh", timeout=120.0)
    while True:
        hits = httpx.post(
            f"{url}/{pattern}/_search",
            json={"size": 5000, "_source": False, "query": {"term": {"repository": repository}}},
            timeout=120.0,
        ).json()["hits"]["hits"]
        if not hits:
            return
        body = "".join(json.dumps({"delete": {"_index": h["_index"], "_id": h["_id"]}}) + "\n" for h in hits)
        httpx.post(
            f"{url}/_bulk",
            content=body,
            params={"refresh": "true"},
            headers={"Content-Type": "application/x-ndjson"},
            timeout=120.0,
        ).raise_for_status()


def measure(
    *,
    engines: tuple[str, ...] = ("elasticsearch", "opensearch"),
    jobs: int = 1_000_000,
    ingest_jobs: int = 50_000,
    ingest_rounds: int = 3,
    repeats: int = 20,
    naive_repeats: int = 1,
    start: datetime = datetime(2026, 1, 1, tzinfo=UTC),
    days: int = 90,
    seed: int = 2026,
    data_dir: Path | None = DEFAULT_DATA_DIR,
    latency: bool = True,
    placements: tuple[Placement, ...] = ("shared",),
) -> list[Row]:
    """(name, value, note) rows for each engine; every engine started here is stopped before returning."""
    end = start + timedelta(days=days)

    def batches(count: int, batch_jobs: int) -> Iterator[Batch]:
        return generate(seed=seed, jobs=count, start=start, days=days, batch_jobs=batch_jobs)

    rows: list[Row] = []
    parsed = list(batches(ingest_jobs, 1000))
    for engine in engines:
        distribution = distribution_home(engine).name  # type: ignore[arg-type]
        workdir = None if data_dir is None else data_dir / f"{distribution}-{seed}-{start:%Y%m%d}-{days}"
        with SearchServer(engine, workdir=workdir) as server:  # type: ignore[arg-type]
            info = SearchStore(server.url, index_prefix="bench-probe").info
            measured = [(f"{engine} version", info.version, "integ-test zip, heap 512m, JDK 17")]
            for placement in placements:
                measured += bench_ingest(engine, server, parsed, ingest_rounds, placement)
            for row in measured:
                console.print(" | ".join(row))  # partial results survive an interrupted run
            if not latency:
                rows += measured
                continue
            timings = bench_latency(
                engine,
                server.url,
                lambda: batches(jobs, 5000),
                jobs,
                (end - timedelta(days=30), end),
                repeats,
                naive_repeats,
            )
            for row in timings:
                console.print(" | ".join(row))
            rows += measured + timings
    return rows


def placements(text: str) -> list[Placement]:
    by_name: dict[str, Placement] = {placement: placement for placement in PLACEMENTS}
    unknown = [name for name in text.split(",") if name not in by_name]
    if unknown:
        raise SystemExit(f"unknown placement {unknown[0]!r}: choose from {', '.join(PLACEMENTS)}")
    return [by_name[name] for name in text.split(",")]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--engines", default="elasticsearch,opensearch")
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--ingest-jobs", type=int, default=50_000)
    parser.add_argument("--ingest-rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--naive-repeats", type=int, default=1)
    parser.add_argument(
        "--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="engine data kept between runs"
    )
    parser.add_argument("--fresh", action="store_true", help="temporary engine data, loaded from scratch")
    parser.add_argument("--ingest-only", action="store_true", help="skip the window_facts latency part")
    parser.add_argument(
        "--placements",
        default="shared",
        help="where the engine and the store run during ingest: shared, separate, or shared,separate",
    )
    args = parser.parse_args()
    rows = measure(
        engines=tuple(args.engines.split(",")),
        jobs=args.jobs,
        ingest_jobs=args.ingest_jobs,
        ingest_rounds=args.ingest_rounds,
        repeats=args.repeats,
        naive_repeats=args.naive_repeats,
        data_dir=None if args.fresh else args.data_dir,
        latency=not args.ingest_only,
        placements=tuple(placements(args.placements)),
    )
    table = Table(title="cipulse search store benchmark")
    for column in ("measure", "value", "note"):
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    console.print(table)


if __name__ == "__main__":
    main()
