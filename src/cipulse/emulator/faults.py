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

KINDS = ("502", "secondary_rate_limit", "timeout", "malformed_json", "partial_graphql_errors")
GRAPHQL_ONLY = frozenset({"partial_graphql_errors"})


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
