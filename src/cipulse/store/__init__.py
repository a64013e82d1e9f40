"""Where collected records live: SQLite by default, Elasticsearch or OpenSearch at scale."""

from __future__ import annotations

from typing import Any

from cipulse.store.base import Store, StoreUnavailable, TrainingRow, Watermark

__all__ = ["Store", "StoreUnavailable", "TrainingRow", "Watermark", "open_store"]


def open_store(url: str, **options: Any) -> Store:
    """Open a store from a URL.

    ``sqlite:///relative.db``, ``sqlite:////absolute.db`` or ``sqlite:///:memory:`` open `SqliteStore`;
    ``http(s)://host:port`` opens `SearchStore` for Elasticsearch/OpenSearch (it detects the engine with
    ``GET /``). ``options`` go to the store (`SearchStore`: index_prefix, username, password;
    `SqliteStore`: busy_timeout_ms, columnar, cached_jobs).
    """
    if url.startswith("sqlite://"):
        from cipulse.store.sqlite import SqliteStore

        path = url.removeprefix("sqlite://")
        if not path.startswith("/") or path == "/":
            raise ValueError(f"expected sqlite:///path.db, got {url!r}")
        return SqliteStore(path[1:] if path != "/:memory:" else ":memory:", **options)
    if url.startswith(("http://", "https://")):
        from cipulse.store.search import SearchStore

        store: Store = SearchStore(url, **options)
        return store
    raise ValueError(f"unsupported store URL {url!r}: use sqlite:///path.db or http(s)://host:port")
