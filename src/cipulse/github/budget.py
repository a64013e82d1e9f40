"""One rate-limit budget per token, shared by every monitor that uses the token.

GitHub limits per token, not per repository: 5,000 GraphQL points and 5,000 REST requests per hour
(primary), plus secondary limits (at most 100 concurrent requests, point bursts) answered with 403/429
and `retry-after`. Sharing one budget object lets many monitors respect those limits together.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import threading
import weakref
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from cipulse.github.backoff import RetryPolicy
from cipulse.github.endpoints import endpoints_for
from cipulse.github.errors import RateLimited
from cipulse.github.etag_cache import EtagCache, default_cache_dir
from cipulse.records import parse_time

MAX_CONCURRENT_REQUESTS = 100
GRAPHQL = "graphql"
REST = "rest"


@dataclass(slots=True)
class ResourceState:
    """What GitHub last told us about one resource's primary limit."""

    remaining: int | None = None
    limit: int | None = None
    reset_at: datetime | None = None


@dataclass(slots=True)
class Usage:
    """Units spent, counted per sync and per budget: GraphQL points, REST requests, free 304 answers."""

    graphql_points: int = 0
    graphql_queries: int = 0
    rest_requests: int = 0
    rest_not_modified: int = 0

    def add(self, other: Usage) -> None:
        self.graphql_points += other.graphql_points
        self.graphql_queries += other.graphql_queries
        self.rest_requests += other.rest_requests
        self.rest_not_modified += other.rest_not_modified


@dataclass(eq=False)
class RateBudget:
    """Limits, waits and counters for one token against one GitHub (github.com or a GHES host)."""

    retry: RetryPolicy = field(default_factory=RetryPolicy)
    resources: dict[str, ResourceState] = field(
        default_factory=lambda: {GRAPHQL: ResourceState(), REST: ResourceState()}
    )
    blocked_until: datetime | None = None
    usage: Usage = field(default_factory=Usage)
    etags: EtagCache = field(default_factory=EtagCache)
    _semaphores: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = field(
        default_factory=weakref.WeakKeyDictionary
    )

    _registry: ClassVar[dict[tuple[str, str], RateBudget]] = {}
    _registry_lock: ClassVar[threading.Lock] = threading.Lock()

    @classmethod
    def shared(cls, api_url: str, token: str | None) -> RateBudget:
        """The one budget for this token at this API (the token is hashed, never kept as a key)."""
        key = (endpoints_for(api_url).rest, hashlib.sha256((token or "").encode()).hexdigest())
        with cls._registry_lock:
            if key not in cls._registry:
                file_name = hashlib.sha256("\n".join(key).encode()).hexdigest()[:32] + ".json"
                cls._registry[key] = cls(etags=EtagCache(default_cache_dir() / file_name))
            return cls._registry[key]

    def semaphore(self) -> asyncio.Semaphore:
        """At most 100 requests in flight per token (GitHub's secondary limit), per event loop."""
        loop = asyncio.get_running_loop()
        if loop not in self._semaphores:
            self._semaphores[loop] = asyncio.Semaphore(MAX_CONCURRENT_REQUESTS)
        return self._semaphores[loop]

    def seconds_to_wait(self, resource: str, now: datetime | None = None) -> float:
        """How long a request must wait for secondary blocks or an exhausted primary limit.

        Raises RateLimited when the wait would exceed the retry policy's patience.
        """
        now = now or datetime.now(UTC)
        wait = 0.0
        if self.blocked_until and self.blocked_until > now:
            wait = (self.blocked_until - now).total_seconds()
        state = self.resources[resource]
        if state.remaining is not None and state.remaining <= 0 and state.reset_at and state.reset_at > now:
            wait = max(wait, (state.reset_at - now).total_seconds())
        if wait > self.retry.max_rate_limit_wait:
            reset_at = now + timedelta(seconds=wait)
            raise RateLimited(
                f"GitHub {resource} rate limit exhausted until {reset_at.isoformat(timespec='seconds')}",
                reset_at=reset_at,
            )
        return wait

    def observe_headers(self, resource: str, headers: Any) -> None:
        """Update the primary limit from `x-ratelimit-*` headers (present on REST and GraphQL answers)."""
        state = self.resources[resource]
        remaining = headers.get("x-ratelimit-remaining")
        if remaining is not None and str(remaining).isdigit():
            state.remaining = int(remaining)
        limit = headers.get("x-ratelimit-limit")
        if limit is not None and str(limit).isdigit():
            state.limit = int(limit)
        reset = headers.get("x-ratelimit-reset")
        if reset is not None and str(reset).isdigit():
            state.reset_at = datetime.fromtimestamp(int(reset), tz=UTC)

    def observe_rate_limit_field(self, rate_limit: dict[str, Any] | None) -> int:
        """Track GraphQL's `rateLimit { cost remaining resetAt }`; returns the cost charged."""
        if not isinstance(rate_limit, dict):
            return 0
        state = self.resources[GRAPHQL]
        if isinstance(rate_limit.get("remaining"), int):
            state.remaining = rate_limit["remaining"]
        if isinstance(rate_limit.get("limit"), int):
            state.limit = rate_limit["limit"]
        with contextlib.suppress(ValueError):
            state.reset_at = parse_time(rate_limit.get("resetAt")) or state.reset_at
        cost = rate_limit.get("cost")
        return cost if isinstance(cost, int) else 0

    def block_for(self, seconds: float, now: datetime | None = None) -> None:
        """A secondary limit hit: every request with this token waits, not only the one that was refused."""
        until = (now or datetime.now(UTC)) + timedelta(seconds=max(0.0, seconds))
        if self.blocked_until is None or until > self.blocked_until:
            self.blocked_until = until

    def remaining(self) -> int | None:
        """GraphQL points left, or REST requests left if no GraphQL answer was seen yet."""
        for resource in (GRAPHQL, REST):
            if self.resources[resource].remaining is not None:
                return self.resources[resource].remaining
        return None
