"""Remembered ETags and answers, so an unchanged REST resource comes back as a free 304.

A 304 carries no body, so the answer it confirms must be kept. Kept as parsed JSON, a page of 100 runs
costs ~175 KB of Python objects per URL; with many monitors that dominated the operator's memory. So
each answer is kept as compact, zlib-compressed JSON (typically 10-30x smaller than the parsed form),
parsed again only when a 304 arrives, and the whole cache is bounded by bytes as well as by entries,
evicting the least recently used. An answer too large to be worth keeping is not cached at all: the next
request for it is simply a full one.

Entries marked durable (the small workflow lists every sync starts with) are also kept in a file, so a
new process (a cron-driven `cipulse collect`, a restarted operator) gets 304s too. The file is named by a
hash of the API URL and token, never the token itself, and holds only repository metadata.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import threading
import zlib
from collections import OrderedDict
from pathlib import Path
from typing import Any, NamedTuple

log = logging.getLogger(__name__)

MAX_ENTRIES = 20_000
MAX_BYTES = 8 * 1024 * 1024
"""Compressed bytes kept in memory for all answers together."""
MAX_ANSWER_BYTES = 256 * 1024
"""A larger compressed answer is not cached (it would crowd out many small, frequently reused ones)."""


def default_cache_dir() -> Path:
    configured = os.environ.get("CIPULSE_CACHE_DIR")
    return (Path(configured) if configured else Path.home() / ".cache" / "cipulse") / "github-etags"


class _Entry(NamedTuple):
    etag: str
    body: bytes


def _pack(data: Any) -> bytes:
    return zlib.compress(json.dumps(data, separators=(",", ":")).encode(), 6)


def _unpack(body: bytes) -> Any:
    return json.loads(zlib.decompress(body))


class EtagCache:
    def __init__(
        self,
        path: Path | None = None,
        capacity: int = MAX_ENTRIES,
        *,
        max_bytes: int = MAX_BYTES,
        max_answer_bytes: int = MAX_ANSWER_BYTES,
    ) -> None:
        self.path = path
        self.capacity = capacity
        self.max_bytes = max_bytes
        self.max_answer_bytes = min(max_answer_bytes, max_bytes)
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._bytes = 0
        self._durable: set[str] = set()
        self._lock = threading.Lock()
        if path is not None and path.is_file():
            try:
                saved = json.loads(path.read_text())
                for url, (etag, data) in saved.items():
                    if self._store(url, str(etag), _pack(data)):
                        self._durable.add(url)
            except (OSError, ValueError, TypeError) as exc:
                log.warning("ignoring an unreadable ETag cache %s: %s", path, exc)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size_bytes(self) -> int:
        """Compressed bytes currently held for answers."""
        return self._bytes

    def get(self, url: str) -> tuple[str, Any] | None:
        """The ETag and answer last stored for this URL (a fresh copy: callers may change it)."""
        with self._lock:
            entry = self._entries.get(url)
            if entry is None:
                return None
            self._entries.move_to_end(url)
        try:
            return entry.etag, _unpack(entry.body)
        except (zlib.error, ValueError) as exc:  # cannot happen for what put() packed; never fatal
            log.warning("dropping an unreadable cached answer for %s: %s", url, exc)
            self._forget(url)
            return None

    def put(self, url: str, etag: str, data: Any, *, durable: bool = False) -> None:
        try:
            body = _pack(data)
        except (TypeError, ValueError) as exc:
            log.warning("not caching an answer for %s: %s", url, exc)
            self._forget(url)
            return
        with self._lock:
            if self._store(url, etag, body) and durable:
                self._durable.add(url)
            if durable:
                self._save()

    def _store(self, url: str, etag: str, body: bytes) -> bool:
        """Insert (as most recent) and evict down to the bounds; False if the answer is too large."""
        self._drop(url)
        if len(body) > self.max_answer_bytes:
            self._durable.discard(url)
            return False
        self._entries[url] = _Entry(etag, body)
        self._bytes += len(body)
        while len(self._entries) > self.capacity or self._bytes > self.max_bytes:
            oldest = next(iter(self._entries))
            self._drop(oldest)
            self._durable.discard(oldest)
        return True

    def _drop(self, url: str) -> None:
        entry = self._entries.pop(url, None)
        if entry is not None:
            self._bytes -= len(entry.body)

    def _forget(self, url: str) -> None:
        with self._lock:
            self._drop(url)
            self._durable.discard(url)

    def _save(self) -> None:
        if self.path is None:
            return
        durable = {url: (self._entries[url].etag, _unpack(self._entries[url].body)) for url in self._durable}
        temporary: str | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile("w", dir=self.path.parent, delete=False, suffix=".tmp") as out:
                temporary = out.name
                json.dump(durable, out)
            os.replace(temporary, self.path)
        except OSError as exc:
            # A read-only or full cache directory costs only the saved requests, never the sync.
            log.warning("could not keep the ETag cache in %s: %s", self.path, exc)
            if temporary is not None:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
