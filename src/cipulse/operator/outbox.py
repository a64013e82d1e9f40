"""A small on-disk outbox: pending sink deliveries and each monitor's last announced health.

A receiver that is down when a health transition happens must still get it, even if the process is
killed before the receiver comes back. So a transition is written here, in one SQLite transaction
together with the monitor's new health, before anything else is told about it; each delivery is deleted
only after its receiver accepted it. After a restart the monitor starts from the health recorded here,
so the same transition is not detected (and given a new delivery id) a second time, and the stored
deliveries go out with their original ids: at least once, with one id per event for receivers to dedupe.

Rows hold the payload and the sink's address (kind and URL), never a secret: signing keys and bearer
tokens are read from the monitor's current spec at send time. The outbox is bounded: when it holds
`capacity` rows a new transition is refused whole (never half its sinks), the caller says so in status
and Events, and its health is still recorded, so the refusal does not repeat on every poll.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

DEFAULT_CAPACITY: Final = 10_000
ERROR_LIMIT: Final = 500

_SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    monitor TEXT NOT NULL,
    delivery_id TEXT NOT NULL,
    sink TEXT NOT NULL,
    body BLOB NOT NULL,
    created_at TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    UNIQUE (monitor, delivery_id, sink)
);
CREATE INDEX IF NOT EXISTS deliveries_by_monitor ON deliveries (monitor, seq);
CREATE TABLE IF NOT EXISTS health (
    monitor TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
"""


class OutboxUnavailable(ValueError):
    """The outbox file cannot be opened or created (permissions, a directory in the way, a lock)."""


class OutboxUnreadable(ValueError):
    """The outbox file exists but is not an outbox (corrupt, or some other file): stop, never overwrite."""


@dataclass(frozen=True, slots=True)
class PendingDelivery:
    seq: int
    monitor: str
    delivery_id: str
    sink: str
    body: bytes
    attempts: int
    last_error: str | None


@dataclass(frozen=True, slots=True)
class Recorded:
    """What `record` did: deliveries queued, and deliveries refused because the outbox was full."""

    queued: int
    refused: int


def _now() -> str:
    return datetime.now(UTC).isoformat()


class Outbox:
    """One SQLite file shared by every monitor of a process; calls are short and serialised by a lock."""

    def __init__(self, path: Path | str, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError("outbox capacity must be at least 1")
        self.path = Path(path)
        self.capacity = capacity
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        except (OSError, sqlite3.Error) as error:
            raise OutboxUnavailable(f"cannot open the outbox {self.path}: {error}") from None
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            # a queued delivery survives power loss, not only kills
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as error:
            self._db.close()
            if isinstance(error, sqlite3.OperationalError):  # locked, read-only, disk full: not corruption
                raise OutboxUnavailable(f"cannot open the outbox {self.path}: {error}") from None
            raise OutboxUnreadable(
                f"outbox {self.path} is not a readable SQLite database ({error}); it is left as it is: move "
                "it aside to start with an empty outbox (its undelivered transitions are then lost)"
            ) from None

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def last_health(self, monitor: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT status FROM health WHERE monitor = ?", (monitor,)).fetchone()
        return None if row is None else str(row[0])

    def record(
        self, monitor: str, health: str, delivery: tuple[str, bytes] | None, sinks: Sequence[str]
    ) -> Recorded:
        """Atomically set `monitor`'s health and queue `delivery` (id, body) for every sink address."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    "INSERT INTO health (monitor, status, updated_at) VALUES (?, ?, ?) "
                    "ON CONFLICT (monitor) DO UPDATE SET status = excluded.status, "
                    "updated_at = excluded.updated_at",
                    (monitor, health, _now()),
                )
                queued = refused = 0
                if delivery is not None and sinks:
                    (held,) = self._db.execute("SELECT COUNT(*) FROM deliveries").fetchone()
                    if held + len(sinks) > self.capacity:
                        refused = len(sinks)
                    else:
                        delivery_id, body = delivery
                        rows = [(monitor, delivery_id, sink, body, _now()) for sink in sinks]
                        cursor = self._db.executemany(
                            "INSERT OR IGNORE INTO deliveries (monitor, delivery_id, sink, body, created_at) "
                            "VALUES (?, ?, ?, ?, ?)",
                            rows,
                        )
                        queued = cursor.rowcount
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return Recorded(queued=queued, refused=refused)

    def pending(self, monitor: str) -> list[PendingDelivery]:
        """Oldest first, so each receiver sees a monitor's transitions in the order they happened."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, monitor, delivery_id, sink, body, attempts, last_error FROM deliveries "
                "WHERE monitor = ? ORDER BY seq",
                (monitor,),
            ).fetchall()
        return [PendingDelivery(int(r[0]), r[1], r[2], r[3], bytes(r[4]), int(r[5]), r[6]) for r in rows]

    def count(self, monitor: str | None = None) -> int:
        with self._lock:
            if monitor is None:
                (found,) = self._db.execute("SELECT COUNT(*) FROM deliveries").fetchone()
            else:
                (found,) = self._db.execute(
                    "SELECT COUNT(*) FROM deliveries WHERE monitor = ?", (monitor,)
                ).fetchone()
        return int(found)

    @property
    def full(self) -> bool:
        return self.count() >= self.capacity

    def delivered(self, seq: int) -> None:
        with self._lock:
            self._db.execute("DELETE FROM deliveries WHERE seq = ?", (seq,))

    def failed(self, seq: int, error: str) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE deliveries SET attempts = attempts + 1, last_error = ? WHERE seq = ?",
                (error[:ERROR_LIMIT], seq),
            )

    def discard_other_sinks(self, monitor: str, kept: Collection[str]) -> int:
        """Drop `monitor`'s deliveries to sinks no longer in its spec; returns how many."""
        with self._lock:
            sinks = [
                row[0]
                for row in self._db.execute(
                    "SELECT DISTINCT sink FROM deliveries WHERE monitor = ?", (monitor,)
                )
            ]
            gone = [sink for sink in sinks if sink not in kept]
            dropped = 0
            for sink in gone:
                cursor = self._db.execute(
                    "DELETE FROM deliveries WHERE monitor = ? AND sink = ?", (monitor, sink)
                )
                dropped += cursor.rowcount
        return dropped

    def forget(self, monitor: str) -> int:
        """The monitor was deleted: drop its health and pending deliveries; returns deliveries dropped."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                cursor = self._db.execute("DELETE FROM deliveries WHERE monitor = ?", (monitor,))
                self._db.execute("DELETE FROM health WHERE monitor = ?", (monitor,))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return int(cursor.rowcount)
