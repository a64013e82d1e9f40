"""The store as monitors use it (operator and `cipulse up`), and handing freed memory back to the OS.

Every poll asks for the window facts of ONE repository. SQLite's plain SQL answers that from the
repository's rows alone. The columnar projection (the SqliteStore default, built for dashboards over all
repositories) sizes its dense count tables by the groups of EVERY repository in the store: with 100
monitors x 200 jobs one call briefly allocated up to ~58 MB (tracemalloc, bench/bench_operator.py),
which was the operator's whole peak-RSS overshoot. Both engines return equal facts.
"""

from __future__ import annotations

import ctypes
import os
import tempfile
from collections.abc import Callable
from functools import cache
from pathlib import Path

from cipulse.store.base import Store


def open_monitor_store(url: str) -> Store:
    """The store named by URL; Elasticsearch/OpenSearch credentials come from the environment only.

    A remote (search) store is wrapped in the on-disk spool (`CIPULSE_SPOOL_PATH`, default
    `<tmp>/cipulse-spool.db`) so that records collected during an engine outage are kept and land
    exactly once after it recovers, while watermarks are held back.
    """
    if url.startswith(("http://", "https://")):
        from cipulse.store.search import SearchStore
        from cipulse.store.spool import SpoolingStore

        username = os.environ.get("CIPULSE_STORE_USERNAME")
        password = os.environ.get("CIPULSE_STORE_PASSWORD")
        search = SearchStore(url, username=username, password=password)
        spool_path = os.environ.get("CIPULSE_SPOOL_PATH") or str(
            Path(tempfile.gettempdir()) / "cipulse-spool.db"
        )
        return SpoolingStore(search, spool_path)
    from cipulse.store import open_store

    if url.startswith("sqlite://"):
        return open_store(url, columnar=False)
    return open_store(url)


def default_outbox_path(store_url: str) -> Path:
    """Where pending sink deliveries live unless `CIPULSE_OUTBOX_PATH` says otherwise.

    Beside the SQLite store (so the same volume keeps both), else beside the spool of a remote store.
    """
    explicit = os.environ.get("CIPULSE_OUTBOX_PATH")
    if explicit:
        return Path(explicit)
    if store_url.startswith("sqlite:///") and not store_url.endswith(":memory:"):
        database = Path(store_url.removeprefix("sqlite:///"))
        return database.with_name(f"{database.stem}-outbox.db")
    spool = os.environ.get("CIPULSE_SPOOL_PATH") or str(Path(tempfile.gettempdir()) / "cipulse-spool.db")
    return Path(spool).with_name("cipulse-outbox.db")


@cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:  # the process's own symbols include libc's; no library search (it would fork ldconfig)
        trim: Callable[[int], int] = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim
        return None
    return trim


def release_freed_memory() -> bool:
    """Return free heap pages to the OS (glibc `malloc_trim`).

    A backfill parses whole pages of runs and jobs; once they are stored, glibc keeps the freed chunks
    in its arenas, so resident memory stays at the backfill's high mark for the life of the process.
    Returns whether anything could be trimmed (False where malloc_trim does not exist).
    """
    trim = _malloc_trim()
    return bool(trim(0)) if trim is not None else False
