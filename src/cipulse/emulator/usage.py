"""What clients spent at the emulator, in GitHub's rate-limit units."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass
class Usage:
    """What clients have spent, to compare collectors by GitHub rate-limit units."""

    graphql_points: int = 0
    graphql_requests: int = 0
    rest_requests: int = 0
    rest_not_modified: int = 0
    rate_limited: int = 0
    faults: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def count(self, counter: str, amount: int = 1) -> None:
        """Adds to one counter; requests are served from several threads."""
        with self._lock:
            setattr(self, counter, getattr(self, counter) + amount)

    @property
    def units(self) -> int:
        """GraphQL points plus counted REST requests: what a GitHub token's budgets lose."""
        return self.graphql_points + self.rest_requests

    def snapshot(self) -> Usage:
        """A frozen copy, to measure what one phase of a benchmark spent (later minus earlier)."""
        return Usage(
            self.graphql_points,
            self.graphql_requests,
            self.rest_requests,
            self.rest_not_modified,
            self.rate_limited,
            dict(self.faults),
        )

    def __sub__(self, earlier: Usage) -> Usage:
        return Usage(
            self.graphql_points - earlier.graphql_points,
            self.graphql_requests - earlier.graphql_requests,
            self.rest_requests - earlier.rest_requests,
            self.rest_not_modified - earlier.rest_not_modified,
            self.rate_limited - earlier.rate_limited,
            {kind: count - earlier.faults.get(kind, 0) for kind, count in self.faults.items()},
        )
