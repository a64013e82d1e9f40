"""A repository with more than 10,000 jobs is served completely and consistently over HTTP."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from cipulse.emulator import Emulator
from cipulse.emulator.assets import GitHubAssets

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = "octo-org/monorepo"
RUNS = """query($ids: [ID!]!, $after: String) {
  nodes(ids: $ids) { ... on Workflow { runs(first: 40, after: $after) { pageInfo { hasNextPage endCursor }
    nodes { id checkSuite { id checkRuns(first: 100, filterBy: {checkType: ALL}) {
      pageInfo { hasNextPage endCursor }
      nodes { databaseId status steps(first: 25) { totalCount nodes { number status } } } } } } } } } }"""
MORE_JOBS = """query($id: ID!, $after: String) { node(id: $id) { ... on CheckSuite {
  checkRuns(first: 100, after: $after, filterBy: {checkType: ALL}) { pageInfo { hasNextPage endCursor }
    nodes { databaseId status steps(first: 25) { totalCount nodes { number status } } } } } } }"""


def test_ten_thousand_jobs_with_steps_through_graphql(github_assets: GitHubAssets) -> None:
    with Emulator(seed=11, repos={REPO: 10_000}, days=30, assets=github_assets) as github:
        headers = {"Authorization": f"Bearer {github.token}"}
        with httpx.Client(headers=headers, timeout=60) as client:
            workflows = client.get(f"{github.api_url}/repos/{REPO}/actions/workflows").json()["workflows"]

            def ask(query: str, **variables: Any) -> dict[str, Any]:
                body = client.post(github.graphql_url, json={"query": query, "variables": variables}).json()
                assert "errors" not in body, body["errors"][:2]
                data: dict[str, Any] = body["data"]
                return data

            seen: dict[int, dict[str, Any]] = {}
            for workflow in workflows:
                after = None
                while True:
                    runs = ask(RUNS, ids=[workflow["node_id"]], after=after)["nodes"][0]["runs"]
                    for run in runs["nodes"]:
                        page = run["checkSuite"]["checkRuns"]
                        seen.update((job["databaseId"], job) for job in page["nodes"])
                        while page["pageInfo"]["hasNextPage"]:
                            cursor = page["pageInfo"]["endCursor"]
                            page = ask(MORE_JOBS, id=run["checkSuite"]["id"], after=cursor)["node"][
                                "checkRuns"
                            ]
                            seen.update((job["databaseId"], job) for job in page["nodes"])
                    if not runs["pageInfo"]["hasNextPage"]:
                        break
                    after = runs["pageInfo"]["endCursor"]
        truth = {job.job_id: job for job in github.truth.jobs(REPO)}
        assert len(truth) >= 10_000
        assert set(seen) == set(truth)
        for job_id, job in truth.items():
            assert seen[job_id]["status"] == job.status.upper()
            assert [step["number"] for step in seen[job_id]["steps"]["nodes"]] == [
                s.number for s in job.steps
            ]
        assert github.usage.graphql_points > 0 and github.usage.rate_limited == 0
