"""Remembered ETags and answers, so an unchanged REST resource comes back as a free 304.

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
from collections import OrderedDict
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

MAX_ENTRIES = 20_000


def default_cache_dir() -> Path:
    configured = os.environ.get("CIPULSE_CACHE_DIR")
    return (Path(configured) if configured else Path.home() / ".cache" / "cipulse") / "github-etags"


class EtagCache:
    def __init__(self, path: Path | None = None, capacity: int = MAX_ENTRIES) -> None:
        self.path = path
        self.capacity = capacity
        self._entries: OrderedDict[str, tuple[str, Any]] = OrderedDict()
        self._durable: set[str] = set()
        self._lock = threading.Lock()
        if path is not None and path.is_file():
            try:
                saved = json.loads(path.read_text())
                for url, (etag, data) in saved.items():
                    self._entries[url] = (etag, data)
                    self._durable.add(url)
            except (OSError, ValueError, TypeError) as exc:
                log.warning("ignoring an unreadable ETag cache %s: %s", path, exc)

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, url: str) -> tuple[str, Any] | None:
        return self._entries.get(url)

    def put(self, url: str, etag: str, data: Any, *, durable: bool = False) -> None:
        with self._lock:
            self._entries.pop(url, None)
            self._entries[url] = (etag, data)
            while len(self._entries) > self.capacity:
                dropped, _ = self._entries.popitem(last=False)
                self._durable.discard(dropped)
            if durable:
                self._durable.add(url)
                self._save()

    def _save(self) -> None:
        if self.path is None:
            return
        durable = {url: self._entries[url] for url in self._durable if url in self._entries}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile("w", dir=self.path.parent, delete=False, suffix=".tmp") as out:
                json.dump(durable, out)
            os.replace(out.name, self.path)
        except OSError as exc:
            log.warning("could not keep the ETag cache in %s: %s", self.path, exc)
            with contextlib.suppress(OSError):
                os.unlink(out.name)
