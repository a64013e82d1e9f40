"""REST answers in GitHub's published shapes, with GitHub's paging and filter rules."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cipulse.emulator import rest_api
from cipulse.emulator.assets import GitHubAssets
from cipulse.emulator.shapes import Shapes, openapi_examples, webhook_examples
from cipulse.emulator.state import World
from cipulse.emulator.truth import Truth
from cipulse.emulator.webhooks import planned_events, signature_256
from cipulse.records import parse_time

REPO = "octo-org/web-frontend"
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def world() -> World:
    return World(seed=3, repos={REPO: 1300}, days=7, failure_rate=0.15, now=NOW)


@pytest.fixture(scope="module")
def shapes(github_assets: GitHubAssets) -> Shapes:
    return Shapes(
        Path(github_assets.openapi_path),
        Path(github_assets.webhook_examples_path),
        "http://emulator/api/v3",
        "http://emulator",
    )


@pytest.fixture(scope="module")
def examples(github_assets: GitHubAssets) -> dict[str, Any]:
    return openapi_examples(Path(github_assets.openapi_path))


def all_runs(world: World, shapes: Shapes, **query: str) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = []
    page = 1
    while True:
        answer = rest_api.list_runs(world, shapes, REPO, {**query, "per_page": "100", "page": str(page)})
        runs.extend(answer.body["workflow_runs"])
        if len(answer.body["workflow_runs"]) < 100:
            return runs
        page += 1


def test_shapes_keep_every_key_of_githubs_examples(
    world: World, shapes: Shapes, examples: dict[str, Any]
) -> None:
    run = next(run for run in all_runs(world, shapes) if run["status"] == "completed")
    assert set(examples["workflow-run"]) <= set(run)
    assert set(examples["workflow-run"]["repository"]) <= set(run["repository"])
    jobs = rest_api.list_jobs(world, shapes, REPO, str(run["id"]), {}).body
    assert set(examples["job-paginated"]) == set(jobs)
    assert set(examples["job"]) <= set(jobs["jobs"][0])
    assert set(examples["job"]["steps"][0]) == set(jobs["jobs"][0]["steps"][0])
    workflows = rest_api.list_workflows(world, shapes, REPO, {}).body
    assert set(examples["workflow-paginated"]) == set(workflows)
    assert set(examples["workflow"]) <= set(workflows["workflows"][0])
    assert "api.github.com" not in json.dumps(run) and "octocat/Hello-World" not in json.dumps(run)


def test_runs_list_newest_first_and_matches_truth(world: World, shapes: Shapes) -> None:
    runs = all_runs(world, shapes)
    truth = Truth(world, "http://emulator").runs(REPO)
    latest = {}
    for record in truth:
        latest[record.run_id] = record
    assert [run["id"] for run in runs] == sorted(
        latest, key=lambda rid: (latest[rid].created_at, rid), reverse=True
    )
    for run in runs:
        record = latest[run["id"]]
        assert (run["status"], run["conclusion"], run["run_attempt"]) == (
            record.status,
            record.conclusion,
            record.run_attempt,
        )
        assert parse_time(run["run_started_at"]) == record.run_started_at


def test_jobs_of_every_attempt_match_truth_including_queue_time(world: World, shapes: Shapes) -> None:
    truth = {job.job_id: job for job in Truth(world, "http://emulator").jobs(REPO)}
    seen = {}
    for run in all_runs(world, shapes):
        page = 1
        while True:
            body = rest_api.list_jobs(
                world, shapes, REPO, str(run["id"]), {"filter": "all", "per_page": "100", "page": str(page)}
            ).body
            for job in body["jobs"]:
                seen[job["id"]] = job
            if page * 100 >= body["total_count"]:
                break
            page += 1
    assert set(seen) == set(truth)
    for job_id, job in seen.items():
        record = truth[job_id]
        assert parse_time(job["created_at"]) == record.created_at
        assert job["run_attempt"] == record.run_attempt
        if job["status"] == "queued":
            # GitHub fills started_at with the creation time for queued jobs; the truth says not started
            assert record.started_at is None and job["started_at"] == job["created_at"]
        else:
            assert parse_time(job["started_at"]) == record.started_at
        assert [parse_time(s["started_at"]) for s in job["steps"]] == [s.started_at for s in record.steps]


def test_latest_filter_and_attempt_endpoints(world: World, shapes: Shapes) -> None:
    rerun = next(run for run in all_runs(world, shapes) if run["run_attempt"] >= 2)
    run_id = str(rerun["id"])
    latest = rest_api.list_jobs(world, shapes, REPO, run_id, {"per_page": "100"}).body["jobs"]
    everything = rest_api.list_jobs(world, shapes, REPO, run_id, {"filter": "all", "per_page": "100"}).body[
        "jobs"
    ]
    assert {job["run_attempt"] for job in latest} == {rerun["run_attempt"]}
    assert len(everything) > len(latest)
    first = rest_api.get_run(world, shapes, REPO, run_id, "1").body
    assert first["run_attempt"] == 1 and first["previous_attempt_url"] is None
    assert (
        rest_api.get_run(world, shapes, REPO, run_id, "2")
        .body["previous_attempt_url"]
        .endswith("/attempts/1")
    )
    assert rest_api.get_run(world, shapes, REPO, run_id, "9").status == 404
    attempt_jobs = rest_api.list_jobs(world, shapes, REPO, run_id, {"per_page": "100"}, attempt="1").body[
        "jobs"
    ]
    assert {job["run_attempt"] for job in attempt_jobs} == {1}
    one = rest_api.get_job(world, shapes, REPO, str(attempt_jobs[0]["id"])).body
    assert one == attempt_jobs[0]


def test_created_filter_and_the_thousand_result_cap(shapes: Shapes) -> None:
    busy = World(seed=9, repos={REPO: 12000}, days=5, failure_rate=0.1, now=NOW)
    everything = rest_api.list_runs(busy, shapes, REPO, {"per_page": "1"}).body["total_count"]
    assert everything > 1000
    window = rest_api.list_runs(busy, shapes, REPO, {"created": "2026-02-20..2026-03-03", "per_page": "100"})
    assert window.body["total_count"] == everything
    assert window.total == rest_api.FILTERED_RESULTS_CAP
    beyond = rest_api.list_runs(
        busy, shapes, REPO, {"created": ">=2026-02-01", "per_page": "100", "page": "11"}
    ).body["workflow_runs"]
    assert beyond == []
    day = rest_api.list_runs(busy, shapes, REPO, {"created": "2026-03-01", "per_page": "100"}).body
    assert 0 < day["total_count"] < everything
    assert all(run["created_at"].startswith("2026-03-01") for run in day["workflow_runs"])


@pytest.mark.parametrize(
    ("value", "low", "high"),
    [
        ("2026-03-01..2026-03-02", "2026-03-01T00:00:00", "2026-03-02T23:59:59.999999"),
        (">=2026-03-01", "2026-03-01T00:00:00", None),
        (">2026-03-01T10:00:00Z", "2026-03-01T10:00:01", None),
        ("<2026-03-01", None, "2026-02-28T23:59:59.999999"),
        ("2026-03-01..*", "2026-03-01T00:00:00", None),
    ],
)
def test_created_qualifiers(value: str, low: str | None, high: str | None) -> None:
    parsed = rest_api.parse_created(value)
    expected = tuple(
        None if v is None else datetime.fromisoformat(v).replace(tzinfo=UTC) for v in (low, high)
    )
    assert parsed == expected


def test_bad_parameters_are_refused(world: World, shapes: Shapes) -> None:
    with pytest.raises(rest_api.BadRequest):
        rest_api.list_runs(world, shapes, REPO, {"created": "yesterday"})
    with pytest.raises(rest_api.BadRequest):
        rest_api.list_runs(world, shapes, REPO, {"per_page": "many"})
    assert rest_api.list_runs(world, shapes, "octo-org/unknown", {}).status == 404


def test_status_and_branch_filters(world: World, shapes: Shapes) -> None:
    failed = all_runs(world, shapes, status="failure")
    assert failed and all(run["conclusion"] == "failure" for run in failed)
    running = all_runs(world, shapes, status="in_progress")
    assert all(run["status"] == "in_progress" for run in running)
    main = all_runs(world, shapes, branch="main")
    assert main and all(run["head_branch"] == "main" for run in main)


def test_webhook_payloads_follow_the_examples_and_truth(
    world: World, shapes: Shapes, github_assets: GitHubAssets
) -> None:
    hooks = webhook_examples(Path(github_assets.webhook_examples_path))
    repo = world.repo(REPO)
    assert repo is not None
    run = world.repo_visible_runs(repo)[0]
    events = planned_events(run, shapes, world.clock)
    kinds = {(event.event, event.action) for event in events}
    assert {
        ("workflow_run", "requested"),
        ("workflow_run", "completed"),
        ("workflow_job", "completed"),
    } <= kinds
    job_event = next(e for e in events if e.event == "workflow_job" and e.action == "completed")
    payload = job_event.build()
    example = next(e for e in hooks["workflow_job"] if e["action"] == "completed")
    assert set(example) - {"organization", "installation"} <= set(payload)
    assert set(example["workflow_job"]) <= set(payload["workflow_job"])
    run_payload = next(e for e in events if e.event == "workflow_run" and e.action == "completed").build()
    assert set(hooks["workflow_run"][1]["workflow_run"]) <= set(run_payload["workflow_run"])
    assert run_payload["workflow_run"]["id"] == run.run_id
    assert (
        signature_256("s3cret", b"{}")
        == "sha256=" + __import__("hmac").new(b"s3cret", b"{}", "sha256").hexdigest()
    )
