"""Faults on demand (the next N requests fail in a chosen way) or at random with a seed.

Kinds: "502" (bad gateway), "secondary_rate_limit" (403 with retry-after: 1), "timeout" (the answer
hangs longer than a client should wait, then 504), "malformed_json" (a 200 whose body is cut short),
"partial_graphql_errors" (a GraphQL answer with some items null and an `errors` entry for each).
"""

from __future__ import annotations

import random
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

KINDS = ("502", "secondary_rate_limit", "timeout", "malformed_json", "partial_graphql_errors")
GRAPHQL_ONLY = frozenset({"partial_graphql_errors"})
GRAPHQL_TIMEOUT_MESSAGE = (
    "Something went wrong while executing your query. This may be the result of a timeout, or it could be a "
    "GitHub bug. Please include the request ID when reporting this issue."
)


@dataclass(frozen=True)
class Fault:
    kind: str
    api: str | None  # "graphql", "rest" or None for either


class Faults:
    def __init__(self) -> None:
        self._queue: deque[Fault] = deque()
        self._lock = threading.Lock()
        self._random: random.Random | None = None
        self._rate = 0.0
        self._random_kinds: tuple[str, ...] = KINDS
        self.injected: dict[str, int] = dict.fromkeys(KINDS, 0)

    def inject(self, kind: str, count: int = 1, *, api: str | None = None) -> None:
        """The next `count` requests (to `api` if given: "graphql" or "rest") fail with `kind`."""
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; choose one of {', '.join(KINDS)}")
        if api not in (None, "graphql", "rest"):
            raise ValueError(f"api is 'graphql', 'rest' or None, not {api!r}")
        if kind in GRAPHQL_ONLY:
            api = "graphql"
        with self._lock:
            self._queue.extend(Fault(kind, api) for _ in range(count))

    def random(self, rate: float, *, seed: int = 0, kinds: tuple[str, ...] = KINDS) -> None:
        """From now on each request fails with probability `rate`, kind drawn from `kinds` (seeded)."""
        unknown = set(kinds) - set(KINDS)
        if unknown or not 0.0 <= rate <= 1.0:
            raise ValueError(f"rate in [0, 1] and kinds from {KINDS} expected")
        with self._lock:
            self._rate = rate
            self._random = random.Random(seed) if rate > 0 else None
            self._random_kinds = kinds

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()
            self._random = None
            self._rate = 0.0

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    def take(self, api: str) -> str | None:
        """The fault for this request to `api`, if any."""
        with self._lock:
            for index, fault in enumerate(self._queue):
                if fault.api in (None, api):
                    del self._queue[index]
                    self.injected[fault.kind] += 1
                    return fault.kind
            if self._random is not None and self._random.random() < self._rate:
                choices = [k for k in self._random_kinds if api == "graphql" or k not in GRAPHQL_ONLY]
                if choices:
                    kind = self._random.choice(choices)
                    self.injected[kind] += 1
                    return kind
        return None


def break_some_items(body: dict[str, Any]) -> None:
    """Partial failure like GitHub's: a few list items become null, each with an error naming its path."""
    found: list[tuple[list[Any], list[Any]]] = []

    def walk(value: Any, path: list[Any]) -> None:
        if isinstance(value, dict):
            for key, child in value.items():
                walk(child, [*path, key])
        elif isinstance(value, list):
            if any(isinstance(item, dict) for item in value):
                found.append((path, value))
            for index, item in enumerate(value):
                walk(item, [*path, index])

    walk(body.get("data"), [])
    if not found:
        return
    errors = body.setdefault("errors", [])

    def break_item(path: list[Any], items: list[Any], index: int) -> None:
        items[index] = None
        errors.append(
            {"type": "INTERNAL", "path": [*path, index], "locations": [], "message": GRAPHQL_TIMEOUT_MESSAGE}
        )

    deep_path, deep_items = max(found, key=lambda entry: len(entry[0]))
    break_item(deep_path, deep_items, len(deep_items) // 2)
    top_path, top_items = found[0]
    if top_items is deep_items:
        return
    on_deep_path = deep_path[len(top_path)] if deep_path[: len(top_path)] == top_path else None
    for index in range(len(top_items) - 1, -1, -1):
        if index != on_deep_path and top_items[index] is not None:
            break_item(top_path, top_items, index)
            return
