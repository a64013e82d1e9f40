"""GitHub's per-token rate limits: an hourly primary budget per resource (REST "core", "graphql") and the
secondary limit on concurrent requests. Windows run on real time, like the x-ratelimit-reset epochs."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

# GitHub's secondary limits on requests per minute (REST GET = 1 point, a GraphQL query = 1 point).
GITHUB_PER_MINUTE = {"rest": 900, "graphql": 2000}


@dataclass
class Bucket:
    limit: int
    used: int
    reset: int  # epoch seconds

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)

    def headers(self, resource: str) -> dict[str, str]:
        return {
            "x-ratelimit-limit": str(self.limit),
            "x-ratelimit-remaining": str(self.remaining),
            "x-ratelimit-reset": str(self.reset),
            "x-ratelimit-used": str(self.used),
            "x-ratelimit-resource": resource,
        }


class RateLimits:
    """Budgets per (token, resource); `max_concurrent` requests in flight per token (GitHub: 100)."""

    def __init__(
        self,
        *,
        core_limit: int = 5000,
        graphql_limit: int = 5000,
        window_seconds: float = 3600.0,
        max_concurrent: int = 100,
        per_minute: dict[str, int] | None = None,
    ) -> None:
        self.limits = {"core": core_limit, "graphql": graphql_limit}
        self.window_seconds = window_seconds
        self.max_concurrent = max_concurrent
        self.per_minute = dict(per_minute or {})
        self._recent: dict[tuple[str, str], deque[float]] = {}
        self._buckets: dict[tuple[str, str], Bucket] = {}
        self._in_flight: dict[str, int] = {}
        self._lock = threading.Lock()

    def bucket(self, token: str, resource: str) -> Bucket:
        """The current window's bucket (a fresh one once the previous window has reset)."""
        with self._lock:
            return self._current(token, resource)

    def _current(self, token: str, resource: str) -> Bucket:
        now = time.time()
        key = (token, resource)
        bucket = self._buckets.get(key)
        if bucket is None or now >= bucket.reset:
            bucket = Bucket(self.limits[resource], 0, int(now + self.window_seconds))
            self._buckets[key] = bucket
        return bucket

    def charge(self, token: str, resource: str, amount: int) -> tuple[bool, Bucket]:
        """Takes `amount` from the budget; False (and nothing taken) when it does not fit."""
        with self._lock:
            bucket = self._current(token, resource)
            if bucket.used + amount > bucket.limit:
                return False, bucket
            bucket.used += amount
            return True, bucket

    def exhausted(self, token: str, resource: str) -> bool:
        with self._lock:
            return self._current(token, resource).remaining <= 0

    def enter(self, token: str) -> bool:
        """Counts a request in flight; False when the token already has `max_concurrent` of them."""
        with self._lock:
            count = self._in_flight.get(token, 0)
            if count >= self.max_concurrent:
                return False
            self._in_flight[token] = count + 1
            return True

    def per_minute_wait(self, token: str, api: str) -> int | None:
        """Seconds to wait when `api` ("rest"/"graphql") already had its requests this minute; else
        None, and the request is counted."""
        limit = self.per_minute.get(api)
        if limit is None:
            return None
        now = time.monotonic()
        with self._lock:
            recent = self._recent.setdefault((token, api), deque())
            while recent and recent[0] <= now - 60:
                recent.popleft()
            if len(recent) >= limit:
                return max(1, int(recent[0] + 60 - now) + 1)
            recent.append(now)
            return None

    def leave(self, token: str) -> None:
        with self._lock:
            self._in_flight[token] = max(0, self._in_flight.get(token, 1) - 1)

    def reset(self) -> None:
        with self._lock:
            self._buckets.clear()
