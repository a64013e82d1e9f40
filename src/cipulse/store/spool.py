"""Outage safety: a bounded on-disk spool in front of any Store.

While the backing store raises `StoreUnavailable`, `SpoolingStore.upsert` keeps the records in a small
SQLite file next to the collector (one row per record key, so re-collecting the same records during a long
outage overwrites instead of growing the spool) and returns normally: the records are durable.
Watermarks set while anything is spooled are held back in the spool and reach the store only after the
records they cover have been written there, so the store's watermark never runs ahead of the store's data;
`get_watermark` keeps answering the last watermark the store confirmed. On recovery the spool drains in
order, oldest first, and each drained chunk is deleted only after the store accepted it: a crash in between
replays the chunk, which idempotent upserts make harmless, so every record lands exactly once.
When the spool would exceed ``max_records``, `upsert` raises `SpoolFull` (a `StoreUnavailable`) and stores
nothing of that batch: collection pauses, nothing is dropped, and `status()` says why.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final

from cipulse.metrics.cost import RunnerRates
from cipulse.metrics.facts import WindowFacts
from cipulse.records import Job, WorkflowRun, job_from_document, run_from_document, to_document
from cipulse.store.base import (
    RecordBatch,
    Store,
    StoreUnavailable,
    TrainingRow,
    Watermark,
    upsert_each,
)

DRAIN_CHUNK: Final = 1000


class SpoolFull(StoreUnavailable):
    """The store is unreachable and the spool is at capacity: collection must pause until it drains."""


@dataclass(frozen=True, slots=True)
class SpoolStatus:
    store_available: bool
    pending_records: int
    pending_watermarks: int
    capacity: int
    last_error: str | None

    @property
    def full(self) -> bool:
        return self.pending_records >= self.capacity

    @property
    def message(self) -> str:
        if self.full and not self.store_available:
            return (
                f"store unavailable and spool full ({self.pending_records}/{self.capacity} records): "
                f"collection paused until the store recovers ({self.last_error})"
            )
        if not self.store_available:
            return (
                f"store unavailable: {self.pending_records} records spooled on disk, watermarks held back "
                f"({self.last_error})"
            )
        if self.pending_records:
            return f"store available: {self.pending_records} spooled records waiting to drain"
        return "store available, spool empty"


def _watermark_to_json(watermark: Watermark) -> str:
    return json.dumps(
        {
            "monitor": watermark.monitor,
            "newest_created_at": None
            if watermark.newest_created_at is None
            else watermark.newest_created_at.isoformat(),
            "updated_at": watermark.updated_at.isoformat(),
        }
    )


def _watermark_from_json(text: str) -> Watermark:
    doc = json.loads(text)
    newest = doc["newest_created_at"]
    return Watermark(
        monitor=doc["monitor"],
        newest_created_at=None if newest is None else datetime.fromisoformat(newest),
        updated_at=datetime.fromisoformat(doc["updated_at"]),
    )


class SpoolingStore:
    """Wraps a Store; writes go through the spool when the store is down. Reads pass straight through."""

    def __init__(self, store: Store, path: str | Path, *, max_records: int = 100_000) -> None:
        if max_records < 1:
            raise ValueError("max_records must be >= 1")
        self.store = store
        self.path = Path(path)
        self.max_records = max_records
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._last_error: str | None = None
        self._available = True
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = FULL")  # the spool is the only copy while the store is down
        self._db.execute("PRAGMA busy_timeout = 30000")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS pending (kind TEXT NOT NULL, key TEXT NOT NULL, "
            "seq INTEGER NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (kind, key))"
        )
        self._db.execute("CREATE INDEX IF NOT EXISTS pending_seq ON pending (seq)")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS held_watermarks (monitor TEXT PRIMARY KEY, doc TEXT NOT NULL)"
        )
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS confirmed_watermarks (monitor TEXT PRIMARY KEY, doc TEXT NOT NULL)"
        )

    # -- status ---------------------------------------------------------------------------------------

    def pending_records(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM pending").fetchone()[0])

    def status(self) -> SpoolStatus:
        with self._lock:
            held = int(self._db.execute("SELECT COUNT(*) FROM held_watermarks").fetchone()[0])
            return SpoolStatus(
                store_available=self._available,
                pending_records=self.pending_records(),
                pending_watermarks=held,
                capacity=self.max_records,
                last_error=self._last_error,
            )

    def _mark(self, error: StoreUnavailable | None) -> None:
        self._available = error is None
        if error is not None:
            self._last_error = str(error)

    # -- writes ---------------------------------------------------------------------------------------

    def upsert(self, runs: Sequence[WorkflowRun], jobs: Sequence[Job]) -> None:
        with self._lock:
            if self.pending_records() and not self._try_drain():
                self._spool(runs, jobs)
                return
            try:
                self.store.upsert(runs, jobs)
                self._mark(None)
            except StoreUnavailable as error:
                self._mark(error)
                self._spool(runs, jobs)

    def upsert_batches(
        self, batches: Iterable[RecordBatch], on_stored: Callable[[int], None] | None = None
    ) -> None:
        """Batch by batch through `upsert`: each one is either in the store or in the spool."""
        upsert_each(self, batches, on_stored)

    def _spool(self, runs: Sequence[WorkflowRun], jobs: Sequence[Job]) -> None:
        rows = [("run", run.key, json.dumps(to_document(run))) for run in runs]
        rows += [("job", job.key, json.dumps(to_document(job))) for job in jobs]
        self._db.execute("BEGIN IMMEDIATE")
        try:
            base = int(self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM pending").fetchone()[0])
            self._db.executemany(
                "INSERT OR REPLACE INTO pending (kind, key, seq, doc) VALUES (?, ?, ?, ?)",
                [(kind, key, base + index + 1, doc) for index, (kind, key, doc) in enumerate(rows)],
            )
            count = int(self._db.execute("SELECT COUNT(*) FROM pending").fetchone()[0])
            if count > self.max_records:
                self._db.execute("ROLLBACK")
                raise SpoolFull(
                    f"spool {self.path} cannot take {len(rows)} more records "
                    f"({count - len(rows)}..{count} > {self.max_records}) while the store is unavailable "
                    f"({self._last_error}); collection paused, nothing written or dropped"
                )
            self._db.execute("COMMIT")
        except SpoolFull:
            raise
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def set_watermark(self, watermark: Watermark) -> None:
        with self._lock:
            backlog = self.pending_records() or self._has_held(watermark.monitor)
            if not backlog or self._try_drain():
                try:
                    self.store.set_watermark(watermark)
                    self._confirm(watermark)
                    self._mark(None)
                    return
                except StoreUnavailable as error:
                    self._mark(error)
            self._db.execute(
                "INSERT OR REPLACE INTO held_watermarks (monitor, doc) VALUES (?, ?)",
                (watermark.monitor, _watermark_to_json(watermark)),
            )

    def _confirm(self, watermark: Watermark) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO confirmed_watermarks (monitor, doc) VALUES (?, ?)",
            (watermark.monitor, _watermark_to_json(watermark)),
        )

    def drain(self) -> int:
        """Write every spooled record to the store, oldest first, then the held watermarks.

        Returns how many records were drained; raises `StoreUnavailable` if the store fails meanwhile
        (what was drained so far stays drained, the rest stays spooled). Chunks go to the store as one
        stream (`Store.upsert_batches`), each deleted here as soon as the store reports it stored.
        """
        with self._lock:
            drained = 0
            chunks: list[list[tuple[str, str, int]]] = []

            def spooled() -> Iterator[RecordBatch]:
                after = 0
                while chunk := self._db.execute(
                    "SELECT kind, key, seq, doc FROM pending WHERE seq > ? ORDER BY seq LIMIT ?",
                    (after, DRAIN_CHUNK),
                ).fetchall():
                    after = chunk[-1][2]
                    chunks.append([(kind, key, seq) for kind, key, seq, _ in chunk])
                    runs = [run_from_document(json.loads(doc)) for kind, _, _, doc in chunk if kind == "run"]
                    jobs = [job_from_document(json.loads(doc)) for kind, _, _, doc in chunk if kind == "job"]
                    yield runs, jobs

            def stored(number: int) -> None:
                nonlocal drained
                rows, chunks[number] = chunks[number], []
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany("DELETE FROM pending WHERE kind = ? AND key = ? AND seq = ?", rows)
                self._db.execute("COMMIT")
                drained += len(rows)

            try:
                self.store.upsert_batches(spooled(), stored)
            except StoreUnavailable as error:
                self._mark(error)
                raise
            for (doc,) in self._db.execute("SELECT doc FROM held_watermarks ORDER BY monitor").fetchall():
                watermark = _watermark_from_json(doc)
                try:
                    self.store.set_watermark(watermark)
                except StoreUnavailable as error:
                    self._mark(error)
                    raise
                self._confirm(watermark)
                self._db.execute("DELETE FROM held_watermarks WHERE monitor = ?", (watermark.monitor,))
            self._mark(None)
            return drained

    def _try_drain(self) -> bool:
        try:
            self.drain()
            return True
        except StoreUnavailable:
            return False

    # -- reads ----------------------------------------------------------------------------------------

    def get_watermark(self, monitor: str) -> Watermark | None:
        """The store's watermark (after draining if possible); while the store is down, the last one it
        confirmed. Never a held-back watermark whose records are still only in the spool."""
        with self._lock:
            if self.pending_records() or self._has_held(monitor):
                self._try_drain()
            try:
                watermark = self.store.get_watermark(monitor)
            except StoreUnavailable as error:
                self._mark(error)
                row = self._db.execute(
                    "SELECT doc FROM confirmed_watermarks WHERE monitor = ?", (monitor,)
                ).fetchone()
                if row is None:
                    raise
                return _watermark_from_json(row[0])
            if watermark is not None:
                self._confirm(watermark)
            return watermark

    def _has_held(self, monitor: str) -> bool:
        row = self._db.execute("SELECT 1 FROM held_watermarks WHERE monitor = ?", (monitor,)).fetchone()
        return row is not None

    def count_jobs(self, repository: str | None = None) -> int:
        return self.store.count_jobs(repository)

    def count_runs(self, repository: str | None = None) -> int:
        return self.store.count_runs(repository)

    def window_facts(
        self, repository: str | None, start: datetime, end: datetime, *, rates: RunnerRates | None = None
    ) -> WindowFacts:
        return self.store.window_facts(repository, start, end, rates=rates)

    def iter_jobs(self, repository: str | None = None) -> Iterator[Job]:
        return self.store.iter_jobs(repository)

    def iter_runs(self, repository: str | None = None) -> Iterator[WorkflowRun]:
        return self.store.iter_runs(repository)

    def training_rows(self, repository: str | None = None) -> list[TrainingRow]:
        return self.store.training_rows(repository)

    def delete_older_than(self, cutoff: datetime) -> int:
        return self.store.delete_older_than(cutoff)

    def close(self) -> None:
        with self._lock:
            self._db.close()
        self.store.close()
