"""Which items of a partial GraphQL answer are asked for again, and which are accepted as gone."""

from __future__ import annotations

from cipulse.github.client import GraphQLAnswer
from cipulse.github.graphql_runs import _failed_items


def test_errors_point_at_the_items_to_retry() -> None:
    answer = GraphQLAnswer(
        data={"nodes": [{"runs": {"nodes": [None]}}, None, {"id": "c"}]},
        errors=[
            {"type": "INTERNAL", "path": ["nodes", 0, "runs", "nodes", 0], "message": "timeout"},
            {"type": "INTERNAL", "path": ["nodes", 1], "message": "timeout"},
        ],
    )
    assert _failed_items(answer, "nodes", 3) == {0, 1}


def test_not_found_items_are_gone_not_failed() -> None:
    answer = GraphQLAnswer(
        data={"nodes": [None, {"id": "b"}]},
        errors=[{"type": "NOT_FOUND", "path": ["nodes", 0], "message": "Could not resolve to a node"}],
    )
    assert _failed_items(answer, "nodes", 2) == set()


def test_an_error_without_path_spoils_everything_but_rate_limit_info_does_not() -> None:
    answer = GraphQLAnswer(data={"nodes": [{}, {}]}, errors=[{"message": "Something went wrong"}])
    assert _failed_items(answer, "nodes", 2) == {0, 1}
    only_rate = GraphQLAnswer(data={"nodes": [{}, {}]}, errors=[{"path": ["rateLimit"], "message": "x"}])
    assert _failed_items(only_rate, "nodes", 2) == set()


def test_single_node_queries() -> None:
    answer = GraphQLAnswer(data={"node": None}, errors=[{"type": "INTERNAL", "path": ["node", "checkRuns"]}])
    assert _failed_items(answer, "node", 1) == {0}
