"""Every shipped .graphql query validates against GitHub's published schema, and costs are estimated right."""

from __future__ import annotations

import json
from functools import cache

import pytest
from graphql import GraphQLSchema, build_client_schema, parse, validate

from cipulse.emulator.assets import ensure_github_assets
from cipulse.github.queries import load_query, query_names
from cipulse.github.query_cost import estimate_query


@cache
def github_schema() -> GraphQLSchema:
    introspection = json.loads(ensure_github_assets().graphql_schema_path.read_text())
    return build_client_schema(introspection.get("data", introspection))


def test_there_are_queries() -> None:
    assert {"workflow_runs", "workflow_runs_with_jobs", "check_runs_page", "check_steps_page"} <= set(
        query_names()
    )


@pytest.mark.parametrize("name", query_names())
def test_query_validates_against_githubs_schema(name: str) -> None:
    errors = validate(github_schema(), load_query(name).document)
    assert errors == [], [e.message for e in errors]


def test_a_wrong_field_is_caught_by_the_same_validation() -> None:
    document = parse("query { viewer { login noSuchField } }")
    assert validate(github_schema(), document)


def test_cost_follows_githubs_published_example() -> None:
    # GitHub's docs: 50 repositories x 20 pull requests x 10 labels ... here a smaller exact case:
    # 1 request for issues + 100 requests for labels = 101 requests -> 1 point; nodes 100 + 100*10.
    document = parse(
        "query { viewer { repositories(first: 100) { nodes { issues(first: 10) { totalCount } } } } }"
    )
    estimate = estimate_query(document)
    assert estimate.requests == 101
    assert estimate.nodes == 100 + 1000
    assert estimate.cost == 1


def test_cost_of_the_jobs_query_grows_with_page_sizes() -> None:
    query = load_query("workflow_runs_with_jobs")
    small = estimate_query(
        query.document, {"ids": ["a"], "runsPerPage": 10, "jobsPerPage": 10, "stepsPerPage": 100}
    )
    # runs: 1 request; checkRuns: one per run (10); steps: one per check run (100).
    assert small.requests == 1 + 10 + 100
    assert small.cost == 1
    assert small.nodes == 10 + 100 + 100 * 100
    three = estimate_query(
        query.document, {"ids": ["a", "b", "c"], "runsPerPage": 10, "jobsPerPage": 10, "stepsPerPage": 100}
    )
    assert three.requests == 3 * small.requests
    assert three.cost == 3


def test_minimum_cost_is_one_point() -> None:
    estimate = estimate_query(load_query("check_steps_page").document, {"checkRunId": "x", "stepsPerPage": 5})
    assert estimate.requests == 1
    assert estimate.cost == 1
