"""The store as monitors use it (operator and `cipulse up`), and handing freed memory back to the OS.

Every poll asks for the window facts of ONE repository. SQLite's columnar engine reads that
repository's window as one indexed range and sizes its count tables by the groups in the window, so a
poll costs in proportion to the monitor's own jobs. Its cache of decoded days is kept small here
(`MONITOR_CACHED_JOBS`): many monitors share one process, and each poll re-reads only changed days.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import tempfile
from collections.abc import Callable
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from cipulse.store.base import Store

MONITOR_CACHED_JOBS = 200_000
"""Decoded jobs kept between polls (about 22 bytes each, so ~4 MB) for all monitors together."""


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
        return SpoolingStore(search, str(spool_path()))
    from cipulse.store import open_store

    if url.startswith("sqlite://"):
        return open_store(url, cached_jobs=MONITOR_CACHED_JOBS)
    return open_store(url)


def spool_path() -> Path:
    """Where a remote store's spool lives: `CIPULSE_SPOOL_PATH`, else `<tmp>/cipulse-spool.db`."""
    return Path(os.environ.get("CIPULSE_SPOOL_PATH") or Path(tempfile.gettempdir()) / "cipulse-spool.db")


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
    # one outbox per store: processes on one machine using different stores must not share one (a
    # flush drops deliveries to sinks its own monitors lack; the health recorded decides what is announced)
    try:
        where = urlsplit(store_url)
        store = urlunsplit((where.scheme, where.netloc.rpartition("@")[2], where.path.rstrip("/"), "", ""))
    except ValueError:  # the store did not open either; any stable name will do
        store = store_url
    digest = hashlib.sha256(store.encode()).hexdigest()[:16]
    return spool_path().with_name(f"cipulse-outbox-{digest}.db")


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
