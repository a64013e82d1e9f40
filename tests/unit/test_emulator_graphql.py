"""GraphQL executed on GitHub's published schema answers exactly what the ground truth holds."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from graphql import GraphQLSchema

from cipulse.emulator.assets import GitHubAssets
from cipulse.emulator.graph_nodes import NodeFactory
from cipulse.emulator.graphql_api import (
    GraphQLContext,
    GraphQLRequestError,
    load_schema,
    prepare,
    run_prepared,
)
from cipulse.emulator.ratelimit import Bucket
from cipulse.emulator.state import World
from cipulse.emulator.truth import Truth
from cipulse.records import parse_time

REPO = "octo-org/payments-api"
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)

RUNS_QUERY = """
query Runs($ids: [ID!]!, $after: String) {
  rateLimit { cost remaining nodeCount }
  nodes(ids: $ids) {
    ... on Workflow {
      name
      runs(first: 20, after: $after) {
        totalCount
        pageInfo { hasNextPage endCursor }
        nodes {
          id databaseId runNumber event createdAt
          checkSuite {
            status conclusion
            commit { oid }
            branch { name }
            checkRuns(first: 100, filterBy: {checkType: ALL}) {
              totalCount
              pageInfo { hasNextPage endCursor }
              nodes { databaseId name status conclusion startedAt completedAt
                steps(first: 30) { nodes { number name status conclusion startedAt completedAt } } }
            }
          }
        }
      }
    }
  }
}
"""

CHECK_RUNS_PAGE = """
query More($id: ID!, $after: String) {
  node(id: $id) {
    ... on WorkflowRun {
      checkSuite { checkRuns(first: 100, after: $after, filterBy: {checkType: ALL}) {
        pageInfo { hasNextPage endCursor }
        nodes { databaseId name status conclusion startedAt completedAt
          steps(first: 30) { nodes { number name status conclusion startedAt completedAt } } } } }
    }
  }
}
"""


class InProcess:
    """The emulator's GraphQL without HTTP: same schema, resolvers and cost rules."""

    def __init__(self, schema: GraphQLSchema, world: World) -> None:
        self.schema = schema
        self.world = world
        self.nodes = NodeFactory(world, "http://emulator")

    def __call__(self, query: str, **variables: Any) -> dict[str, Any]:
        prepared = prepare(self.schema, {"query": query, "variables": variables})
        context = GraphQLContext(self.world, self.nodes, prepared.cost, Bucket(5000, prepared.cost.points, 0))
        return run_prepared(self.schema, prepared, context)


@pytest.fixture(scope="module")
def schema(github_assets: GitHubAssets) -> GraphQLSchema:
    return load_schema(Path(github_assets.graphql_schema_path))


@pytest.fixture(scope="module")
def world() -> World:
    return World(seed=2, repos={REPO: 1200}, days=7, failure_rate=0.15, now=NOW)


@pytest.fixture(scope="module")
def gql(schema: GraphQLSchema, world: World) -> InProcess:
    return InProcess(schema, world)


def workflow_ids(world: World) -> list[str]:
    from cipulse.emulator.ids import node_id

    repo = world.repo(REPO)
    assert repo is not None
    return [node_id("Workflow", workflow.workflow_id) for workflow in repo.workflows]


def collect_everything(gql: InProcess, world: World) -> list[dict[str, Any]]:
    """Pages through every workflow's runs and every run's check runs, like a careful collector."""
    check_runs: list[dict[str, Any]] = []
    for workflow_id in workflow_ids(world):
        after = None
        while True:
            answer = gql(RUNS_QUERY, ids=[workflow_id], after=after)
            assert "errors" not in answer, answer.get("errors")
            runs = answer["data"]["nodes"][0]["runs"]
            for run in runs["nodes"]:
                connection = run["checkSuite"]["checkRuns"]
                check_runs.extend(connection["nodes"])
                while connection["pageInfo"]["hasNextPage"]:
                    more = gql(CHECK_RUNS_PAGE, id=run["id"], after=connection["pageInfo"]["endCursor"])
                    connection = more["data"]["node"]["checkSuite"]["checkRuns"]
                    check_runs.extend(connection["nodes"])
            if not runs["pageInfo"]["hasNextPage"]:
                break
            after = runs["pageInfo"]["endCursor"]
    return check_runs


def test_every_job_and_step_matches_ground_truth(gql: InProcess, world: World) -> None:
    check_runs = collect_everything(gql, world)
    truth = {job.job_id: job for job in Truth(world, "http://emulator").jobs(REPO)}
    assert sorted(item["databaseId"] for item in check_runs) == sorted(truth)
    for item in check_runs:
        job = truth[item["databaseId"]]
        assert item["name"] == job.name
        assert item["status"] == job.status.upper()
        assert item["conclusion"] == (job.conclusion.upper() if job.conclusion else None)
        assert parse_time(item["startedAt"]) == job.started_at
        assert parse_time(item["completedAt"]) == job.completed_at
        steps = item["steps"]["nodes"]
        assert [s["number"] for s in steps] == [s.number for s in job.steps]
        assert [parse_time(s["completedAt"]) for s in steps] == [s.completed_at for s in job.steps]
        assert [s["conclusion"] for s in steps] == [
            s.conclusion.upper() if s.conclusion else None for s in job.steps
        ]


def test_latest_filter_shows_only_the_last_attempt(gql: InProcess, world: World) -> None:
    truth = Truth(world, "http://emulator")
    rerun = next(run for run in truth.runs(REPO) if run.run_attempt == 2)
    from cipulse.emulator.ids import node_id

    query = """query($id: ID!) { node(id: $id) { ... on WorkflowRun { checkSuite {
      latest: checkRuns(first: 100) { totalCount nodes { databaseId } }
      all: checkRuns(first: 100, filterBy: {checkType: ALL}) { totalCount } } } } }"""
    suite = gql(query, id=node_id("WorkflowRun", rerun.run_id))["data"]["node"]["checkSuite"]
    attempts = {job.job_id: job.run_attempt for job in truth.jobs(REPO) if job.run_id == rerun.run_id}
    last = max(attempts.values())
    assert {n["databaseId"] for n in suite["latest"]["nodes"]} == {
        j for j, a in attempts.items() if a == last
    }
    assert suite["all"]["totalCount"] == len(attempts)


def test_cost_and_node_count_follow_githubs_formula(gql: InProcess, world: World) -> None:
    ids = workflow_ids(world)
    answer = gql(RUNS_QUERY, ids=ids)
    rate = answer["data"]["rateLimit"]
    # 4 workflows: runs 4 requests, checkRuns 4*20, steps 4*20*100 -> 8084 requests -> 81 points
    assert rate["cost"] == round((4 + 4 * 20 + 4 * 20 * 100) / 100)
    assert rate["nodeCount"] == 4 * 20 + 4 * 20 * 100 + 4 * 20 * 100 * 30


def test_a_cheap_query_costs_one_point(gql: InProcess) -> None:
    answer = gql(
        '{ rateLimit { cost nodeCount } repository(owner: "octo-org", name: "payments-api") { name } }'
    )
    assert answer["data"]["rateLimit"] == {"cost": 1, "nodeCount": 0}


@pytest.mark.parametrize(
    ("query", "kind"),
    [
        (
            "query($ids:[ID!]!){ nodes(ids:$ids){ ... on Workflow { runs { totalCount } } } }",
            "MISSING_PAGINATION_BOUNDARIES",
        ),
        (
            "query($ids:[ID!]!){ nodes(ids:$ids){ ... on Workflow { runs(first: 101) { totalCount } } } }",
            "EXCESSIVE_PAGINATION",
        ),
        (
            "query($ids:[ID!]!){ nodes(ids:$ids){ ... on Workflow { runs(first: 100) { nodes { checkSuite {"
            " checkRuns(first: 100) { nodes { steps(first: 100) { totalCount } } } } } } } } }",
            "MAX_NODE_LIMIT_EXCEEDED",
        ),
        ("query($ids:[ID!]!){ nodes(ids:$ids){ ... on Workflow { notAField } } }", "VALIDATION_ERROR"),
    ],
)
def test_queries_breaking_github_limits_are_refused(
    gql: InProcess, world: World, query: str, kind: str
) -> None:
    with pytest.raises(GraphQLRequestError) as refused:
        gql(query, ids=workflow_ids(world))
    assert refused.value.body()["errors"][0]["type"] == kind


def test_unknown_ids_and_repositories_give_not_found_errors(gql: InProcess, world: World) -> None:
    answer = gql(
        "query($ids:[ID!]!){ nodes(ids:$ids){ id } }", ids=[workflow_ids(world)[0], "bm90LWEtbm9kZQ=="]
    )
    assert answer["data"]["nodes"][0] is not None and answer["data"]["nodes"][1] is None
    assert answer["errors"][0]["type"] == "NOT_FOUND" and answer["errors"][0]["path"] == ["nodes", 1]
    missing = gql('{ repository(owner: "octo-org", name: "nope") { id } }')
    assert missing["data"]["repository"] is None and missing["errors"][0]["type"] == "NOT_FOUND"


def test_cursor_stays_valid_when_new_runs_arrive(schema: GraphQLSchema) -> None:
    world = World(seed=4, repos={REPO: 300}, days=3, failure_rate=0.1, now=NOW)
    gql = InProcess(schema, world)
    ci = workflow_ids(world)[0]
    query = (
        "query($ids:[ID!]!, $after: String){ nodes(ids:$ids){ ... on Workflow {"
        " runs(first: 5, after: $after) { pageInfo { endCursor } nodes { databaseId } } } } }"
    )
    first = gql(query, ids=[ci])["data"]["nodes"][0]["runs"]
    second = gql(query, ids=[ci], after=first["pageInfo"]["endCursor"])["data"]["nodes"][0]["runs"]
    world.add_activity(REPO, runs=6, failure_rate=0.0)
    again = gql(query, ids=[ci], after=first["pageInfo"]["endCursor"])["data"]["nodes"][0]["runs"]
    assert again["nodes"] == second["nodes"]
    newest = gql(query, ids=[ci])["data"]["nodes"][0]["runs"]["nodes"]
    assert newest != first["nodes"]


def test_repository_and_commit_paths_reach_check_suites(gql: InProcess, world: World) -> None:
    truth = Truth(world, "http://emulator").runs(REPO)
    run = truth[0]
    query = """query($sha: GitObjectID!) { repository(owner: "octo-org", name: "payments-api") {
      nameWithOwner defaultBranchRef { name }
      object(oid: $sha) { ... on Commit { oid checkSuites(first: 10, filterBy: {appId: 15368}) {
        nodes { databaseId workflowRun { databaseId } app { slug } } } } } } }"""
    repository = gql(query, sha=run.head_sha)["data"]["repository"]
    assert repository["nameWithOwner"] == REPO and repository["defaultBranchRef"]["name"] == "main"
    suites = repository["object"]["checkSuites"]["nodes"]
    assert run.run_id in {suite["workflowRun"]["databaseId"] for suite in suites}
    assert {suite["app"]["slug"] for suite in suites} == {"github-actions"}


def test_points_round_half_up_and_never_drop_below_one() -> None:
    from cipulse.emulator.cost import QueryCost

    assert [QueryCost(requests=r).points for r in (0, 1, 149, 150, 249, 250, 8084)] == [1, 1, 1, 2, 2, 3, 81]


def test_leaf_shortcut_answers_exactly_like_graphql_core(gql: InProcess, world: World) -> None:
    from graphql import execute_sync, parse

    query = RUNS_QUERY.replace("id databaseId runNumber", "id __typename databaseId runNumber")
    variables = {"ids": [*workflow_ids(world), "bm90LWEtbm9kZQ=="]}
    prepared = prepare(gql.schema, {"query": query, "variables": variables})
    context = GraphQLContext(world, gql.nodes, prepared.cost, Bucket(5000, 7, 0))
    fast = run_prepared(gql.schema, prepared, context)
    plain = execute_sync(gql.schema, parse(query), context_value=context, variable_values=variables)
    assert fast["data"] == plain.data
    assert [e["path"] for e in fast["errors"]] == [e.path for e in plain.errors or []]
    assert fast["data"]["nodes"][0]["runs"]["nodes"][0]["__typename"] == "WorkflowRun"


def test_commit_and_ref_ids_resolve_back_to_their_objects(gql: InProcess) -> None:
    query = """{ repository(owner: "octo-org", name: "payments-api") {
      defaultBranchRef { id name target { ... on Commit { id oid } } } } }"""
    ref = gql(query)["data"]["repository"]["defaultBranchRef"]
    again = gql(
        "query($ids: [ID!]!) { nodes(ids: $ids) { ... on Ref { name } ... on Commit { oid } } }",
        ids=[ref["id"], ref["target"]["id"]],
    )["data"]["nodes"]
    assert again == [{"name": "main"}, {"oid": ref["target"]["oid"]}]
