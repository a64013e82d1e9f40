"""A GitHub emulator: GraphQL on GitHub's published schema, REST and webhooks in GitHub's published
shapes, rate limits and injectable faults, over a seeded CI history. Used by tests, benchmarks and demos.

GitHub behaviours it reproduces on purpose, because collectors get them wrong:
- GraphQL has no run list on Repository: runs are reached through `Workflow.runs` (workflow node ids come
  from REST `/actions/workflows`) or `Commit.checkSuites`. `CheckSuite.checkRuns` lists the latest
  attempt's jobs unless `filterBy: {checkType: ALL}`; a run keeps one check suite across re-runs.
- Every connection needs `first`/`last` <= 100; a query over 500,000 possible nodes is refused
  (MAX_NODE_LIMIT_EXCEEDED); `rateLimit.cost` = requests needed / 100 (at least 1).
- REST: `/runs/{id}/jobs` defaults to `filter=latest`; queued jobs carry `started_at` = `created_at`
  (not started yet, despite the field); filtered run lists stop after 1,000 results while
  `total_count` keeps the full count; answers carry ETags and a matching `If-None-Match` gets a free 304.
- Exhausted budgets: REST answers 403 with `x-ratelimit-remaining: 0`; GraphQL answers 200 with an error
  of type RATE_LIMITED. Both send `retry-after`. Secondary limits answer 403 with `retry-after`.
"""

from cipulse.emulator.server import Emulator

__all__ = ["Emulator"]
