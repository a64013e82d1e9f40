"""The REST and webhook parsers accept every relevant example GitHub publishes (npm @octokit/openapi,
@octokit/webhooks-examples), and produce records that agree with the example's own fields."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import pytest

from cipulse.emulator.assets import ensure_github_assets
from cipulse.github.parse_graphql import assign_attempts, records_from_graphql
from cipulse.github.parse_rest import PayloadError, job_from_rest, run_from_rest, workflow_from_rest
from cipulse.records import parse_time

# The endpoints the collector calls, and the key under which each lists its items (None: one item).
ENDPOINTS = {
    "/repos/{owner}/{repo}/actions/workflows": "workflows",
    "/repos/{owner}/{repo}/actions/runs": "workflow_runs",
    "/repos/{owner}/{repo}/actions/runs/{run_id}": None,
    "/repos/{owner}/{repo}/actions/runs/{run_id}/attempts/{attempt_number}": None,
    "/repos/{owner}/{repo}/actions/runs/{run_id}/jobs": "jobs",
    "/repos/{owner}/{repo}/actions/runs/{run_id}/attempts/{attempt_number}/jobs": "jobs",
    "/repos/{owner}/{repo}/actions/jobs/{job_id}": None,
}


@cache
def openapi() -> dict[str, Any]:
    return json.loads(ensure_github_assets().openapi_path.read_text())


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if not ref:
        return node
    target: Any = openapi()
    for part in ref.removeprefix("#/").split("/"):
        target = target[part]
    return dict(target)


def endpoint_examples() -> list[tuple[str, str, Any]]:
    found = []
    for path in ENDPOINTS:
        response = openapi()["paths"][path]["get"]["responses"]["200"]
        content = _resolve(response)["content"]["application/json"]
        for name, example in (content.get("examples") or {}).items():
            found.append((path, name, _resolve(example)["value"]))
    return found


EXAMPLES = endpoint_examples()


def test_every_endpoint_has_examples() -> None:
    assert {path for path, _, _ in EXAMPLES} == set(ENDPOINTS)


@pytest.mark.parametrize(("path", "name", "value"), EXAMPLES, ids=[f"{p}:{n}" for p, n, _ in EXAMPLES])
def test_rest_example_parses(path: str, name: str, value: Any) -> None:
    key = ENDPOINTS[path]
    items = value[key] if key else [value]
    assert items, f"{path} example {name} lists nothing"
    for item in items:
        if path.endswith("/workflows"):
            workflow = workflow_from_rest(item)
            assert workflow.node_id == item["node_id"]
        elif "jobs" in path:
            job = job_from_rest("octo-org/octo-repo", item)
            assert job.job_id == item["id"] and job.run_id == item["run_id"]
            assert job.runner_labels == tuple(item["labels"])
            assert len(job.steps) == len(item["steps"])
            # Steps come with -08:00 offsets: normalised to the same instants in UTC.
            assert job.steps[0].started_at == parse_time(item["steps"][0]["started_at"])
            assert job.steps[0].started_at is not None and job.steps[0].started_at.utcoffset() is not None
            # The example omits created_at and run_attempt: queue unknown, first attempt.
            assert job.created_at == parse_time(item.get("created_at"))
            assert job.run_attempt == item.get("run_attempt", 1)
        else:
            run = run_from_rest(item)
            assert run.run_id == item["id"]
            assert run.repository == item["repository"]["full_name"]
            assert run.run_attempt == item.get("run_attempt", 1)
            assert run.created_at == parse_time(item["created_at"])
            assert run.actor == item["actor"]["login"]


def test_a_job_without_an_id_is_refused_clearly() -> None:
    with pytest.raises(PayloadError, match="job has no 'id'"):
        job_from_rest("o/r", {"run_id": 1, "name": "build"})


def test_a_run_without_repository_is_refused_clearly() -> None:
    with pytest.raises(PayloadError, match="repository"):
        run_from_rest({"id": 5, "created_at": "2020-01-22T19:33:08Z"})


def _check_run(database_id: int, name: str, started: str, completed: str, conclusion: str) -> dict[str, Any]:
    return {
        "id": f"CR_{database_id}",
        "databaseId": database_id,
        "name": name,
        "status": "COMPLETED",
        "conclusion": conclusion,
        "startedAt": started,
        "completedAt": completed,
        "steps": {
            "nodes": [
                {
                    "number": 1,
                    "name": "Set up job",
                    "status": "COMPLETED",
                    "conclusion": "SUCCESS",
                    "startedAt": started,
                    "completedAt": completed,
                }
            ]
        },
    }


def test_attempts_are_inferred_from_repeated_check_run_names() -> None:
    nodes = [
        _check_run(12, "test", "2024-01-01T00:20:00Z", "2024-01-01T00:25:00Z", "SUCCESS"),
        _check_run(10, "test", "2024-01-01T00:01:00Z", "2024-01-01T00:05:00Z", "FAILURE"),
        _check_run(11, "lint", "2024-01-01T00:01:30Z", "2024-01-01T00:02:00Z", "SUCCESS"),
        _check_run(13, "lint", "2024-01-01T00:20:10Z", "2024-01-01T00:21:00Z", "SUCCESS"),
    ]
    assert [(a, n["databaseId"]) for a, n in assign_attempts(nodes)] == [(1, 10), (1, 11), (2, 12), (2, 13)]
    run = {
        "databaseId": 99,
        "runNumber": 7,
        "event": "push",
        "createdAt": "2024-01-01T00:00:00Z",
        "updatedAt": "2024-01-01T00:25:00Z",
        "url": "https://github.com/o/r/actions/runs/99",
        "checkSuite": {
            "status": "COMPLETED",
            "conclusion": "SUCCESS",
            "branch": {"name": "main"},
            "commit": {"oid": "abc"},
        },
    }
    runs, jobs = records_from_graphql("o/r", 5, "CI", run, nodes)
    assert [(r.run_attempt, r.status, r.conclusion) for r in runs] == [
        (1, "completed", "failure"),
        (2, "completed", "success"),
    ]
    assert all(job.queue_estimated for job in jobs)
    by_id = {job.job_id: job for job in jobs}
    # First attempt: queued when the run was created. Second attempt: from its own start.
    assert by_id[10].created_at == parse_time("2024-01-01T00:00:00Z")
    assert by_id[12].created_at == parse_time("2024-01-01T00:20:00Z")
    assert by_id[10].steps[0].conclusion == "success"
    assert {job.head_sha for job in jobs} == {"abc"}
