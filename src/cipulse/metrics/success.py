"""Success rate: successes / (successes + failures).

Cancelled, skipped, ``other`` (neutral, stale, action_required) and still-running job attempts are left out
of both numerator and denominator: a cancelled job was stopped by a person or a concurrency group before it
could pass or fail, and a skipped job never ran, so neither says anything about whether the code works.
They are still counted and reported separately. Timed-out and startup failures count as failures.
Every attempt counts: a job that failed and passed on re-run contributes one failure and one success.
With no successes and no failures the rate is ``None`` (unknown), never 0 or 1.
"""

from __future__ import annotations


def success_rate(successes: int, failures: int) -> float | None:
    decided = successes + failures
    if decided == 0:
        return None
    return successes / decided
