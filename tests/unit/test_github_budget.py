"""Rate budget, backoff, endpoints and page sizing: the pure decisions behind every request."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cipulse.github.backoff import RetryPolicy
from cipulse.github.budget import GRAPHQL, REST, RateBudget
from cipulse.github.endpoints import endpoints_for
from cipulse.github.errors import RateLimited
from cipulse.github.etag_cache import EtagCache
from cipulse.github.page_sizes import PageSizes
from cipulse.github.queries import load_query
from cipulse.github.query_cost import estimate_query
from cipulse.github.sync import SyncTarget

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def test_public_and_enterprise_endpoints() -> None:
    public = endpoints_for("https://api.github.com")
    assert (public.rest, public.graphql) == ("https://api.github.com", "https://api.github.com/graphql")
    ghes = endpoints_for("https://ghe.example.com/api/v3/")
    assert (ghes.rest, ghes.graphql) == (
        "https://ghe.example.com/api/v3",
        "https://ghe.example.com/api/graphql",
    )


def test_one_budget_per_token_and_host() -> None:
    a = RateBudget.shared("https://ghe.example.com/api/v3", "token-a")
    assert RateBudget.shared("https://ghe.example.com/api/v3/", "token-a") is a
    assert RateBudget.shared("https://ghe.example.com/api/v3", "token-b") is not a
    assert RateBudget.shared("https://api.github.com", "token-a") is not a
    assert "token-a" not in repr(RateBudget._registry.keys())


def test_backoff_grows_exponentially_with_full_jitter() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=30.0)
    rng = random.Random(1)
    for attempt in range(8):
        ceiling = min(30.0, 2.0**attempt)
        delays = [policy.delay(attempt, rng) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling * 0.8  # jitter spreads over the whole range


def test_exhausted_primary_limit_waits_until_reset() -> None:
    budget = RateBudget()
    reset = int((NOW + timedelta(seconds=40)).timestamp())
    budget.observe_headers(REST, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)})
    assert budget.seconds_to_wait(REST, NOW) == pytest.approx(40)
    assert budget.seconds_to_wait(GRAPHQL, NOW) == 0


def test_a_wait_beyond_patience_raises_rate_limited_with_reset_time() -> None:
    budget = RateBudget(retry=RetryPolicy(max_rate_limit_wait=60))
    budget.observe_rate_limit_field(
        {"remaining": 0, "resetAt": (NOW + timedelta(minutes=30)).isoformat(), "cost": 1}
    )
    with pytest.raises(RateLimited) as raised:
        budget.seconds_to_wait(GRAPHQL, NOW)
    assert raised.value.reset_at == NOW + timedelta(minutes=30)


def test_secondary_block_applies_to_every_resource() -> None:
    budget = RateBudget()
    budget.block_for(5, NOW)
    assert budget.seconds_to_wait(REST, NOW) == pytest.approx(5)
    assert budget.seconds_to_wait(GRAPHQL, NOW + timedelta(seconds=2)) == pytest.approx(3)
    budget.block_for(1, NOW)  # a shorter block never shortens a longer one
    assert budget.seconds_to_wait(REST, NOW) == pytest.approx(5)


def test_graphql_cost_is_tracked_from_rate_limit_field() -> None:
    budget = RateBudget()
    cost = budget.observe_rate_limit_field(
        {"cost": 3, "remaining": 4990, "limit": 5000, "resetAt": NOW.isoformat()}
    )
    assert cost == 3
    assert budget.remaining() == 4990


@pytest.mark.parametrize("workflows", [1, 3, 10])
@pytest.mark.parametrize("with_jobs", [False, True])
def test_page_sizes_fill_exactly_one_point(workflows: int, with_jobs: bool) -> None:
    sizes = PageSizes()
    variables = sizes.variables(with_jobs, workflows)
    query = load_query("workflow_runs_with_jobs" if with_jobs else "workflow_runs")
    ids = {"ids": [str(i) for i in range(workflows)]}
    assert estimate_query(query.document, {**ids, **variables}).cost == 1
    bigger = {**variables, "runsPerPage": variables["runsPerPage"] + 1}
    if variables["runsPerPage"] < 100:
        assert estimate_query(query.document, {**ids, **bigger}).cost > 1


def test_jobs_page_follows_observed_runs() -> None:
    sizes = PageSizes()
    for count in [5] * 95 + [260] * 5:
        sizes.observe_jobs(count)
    assert sizes.jobs == 5  # the rare 260-job run is paged, not the reason every page is huge


def test_target_never_shows_its_token() -> None:
    target = SyncTarget("octo/repo", token="ghp_secret_value_123")
    assert "ghp_secret_value_123" not in repr(target)
    with pytest.raises(ValueError, match="OWNER/REPO"):
        SyncTarget("not-a-repo")
    with pytest.raises(ValueError, match="mode"):
        SyncTarget("o/r", mode="rest")


def test_durable_etags_survive_a_new_process(tmp_path: Path) -> None:
    path = tmp_path / "etags.json"
    first = EtagCache(path)
    first.put("https://h/api/v3/repos/o/r/actions/workflows", 'W/"abc"', {"workflows": []}, durable=True)
    first.put("https://h/api/v3/repos/o/r/actions/runs", 'W/"def"', {"workflow_runs": []})
    again = EtagCache(path)
    assert again.get("https://h/api/v3/repos/o/r/actions/workflows") == ('W/"abc"', {"workflows": []})
    assert again.get("https://h/api/v3/repos/o/r/actions/runs") is None  # only durable entries are kept


def test_an_unreadable_etag_file_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "etags.json"
    path.write_text("{not json")
    assert len(EtagCache(path)) == 0


def test_shared_budget_files_are_named_without_the_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CIPULSE_CACHE_DIR", str(tmp_path))
    budget = RateBudget.shared("https://cache-test.example/api/v3", "ghp_cache_token_secret")
    assert budget.etags.path is not None and budget.etags.path.parent == tmp_path / "github-etags"
    assert "ghp_cache_token_secret" not in str(budget.etags.path)
