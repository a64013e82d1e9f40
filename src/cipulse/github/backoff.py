"""How long to wait before retrying a failed request: exponential backoff with full jitter.

Full jitter spreads retries of many monitors sharing one token, so they do not hit GitHub in lockstep
right after an outage.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 8
    base_delay: float = 0.5
    max_delay: float = 60.0
    request_timeout: float = 30.0
    max_rate_limit_wait: float = 900.0

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to sleep before retry number `attempt` (0-based)."""
        ceiling = min(self.max_delay, self.base_delay * (2**attempt))
        return (rng or random).uniform(0, ceiling)
