"""The emulator over HTTP: authentication, GitHub's rate-limit rules, ETags, paging, faults, webhooks."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from cipulse.emulator import Emulator
from cipulse.emulator.assets import GitHubAssets

pytestmark = pytest.mark.integration

REPO = "octo-org/payments-api"
WORKFLOW_RUNS = """query($ids: [ID!]!) { rateLimit { cost remaining used }
  nodes(ids: $ids) { ... on Workflow { runs(first: 10) { nodes { databaseId
    checkSuite { checkRuns(first: 20) { nodes { databaseId steps(first: 10) { nodes { number } } } } } }
  } } } }"""


@pytest.fixture
def small(github_assets: GitHubAssets) -> Iterator[Emulator]:
    with Emulator(seed=7, repos=[REPO], jobs_per_repo=700, hang_seconds=1.0, assets=github_assets) as running:
        yield running


def auth(emulator: Emulator) -> dict[str, str]:
    return {"Authorization": f"Bearer {emulator.token}"}


def workflow_node_ids(emulator: Emulator) -> list[str]:
    answer = httpx.get(f"{emulator.api_url}/repos/{REPO}/actions/workflows", headers=auth(emulator))
    return [workflow["node_id"] for workflow in answer.json()["workflows"]]


def test_authentication_and_unknown_repositories(small: Emulator) -> None:
    url = f"{small.api_url}/repos/{REPO}/actions/runs"
    assert httpx.get(url).status_code == 401
    wrong = httpx.get(url, headers={"Authorization": "token ghp_wrong"})
    assert wrong.status_code == 401 and wrong.json()["message"] == "Bad credentials"
    assert httpx.get(url, headers={"Authorization": f"token {small.token}"}).status_code == 200
    missing = httpx.get(f"{small.api_url}/repos/octo-org/missing/actions/runs", headers=auth(small))
    assert missing.status_code == 404
    graphql = httpx.post(small.graphql_url, json={"query": "{ viewer { login } }"})
    assert graphql.status_code == 401
    nowhere = httpx.get(f"{small.api_url}/repos/{REPO}/actions/nothing-here", headers=auth(small))
    assert nowhere.status_code == 404 and nowhere.json()["message"] == "Not Found"


def test_etag_answers_304_without_spending_the_budget(small: Emulator) -> None:
    url = f"{small.api_url}/repos/{REPO}/actions/workflows"
    first = httpx.get(url, headers=auth(small))
    remaining = int(first.headers["x-ratelimit-remaining"])
    spent = small.usage.rest_requests
    again = httpx.get(url, headers={**auth(small), "If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    assert int(again.headers["x-ratelimit-remaining"]) == remaining
    assert small.usage.rest_requests == spent and small.usage.rest_not_modified == 1
    small.add_activity(REPO, runs=2)
    runs_url = f"{small.api_url}/repos/{REPO}/actions/runs"
    tag = httpx.get(runs_url, headers=auth(small)).headers["etag"]
    small.add_activity(REPO, runs=1)
    changed = httpx.get(runs_url, headers={**auth(small), "If-None-Match": tag})
    assert changed.status_code == 200


def test_big_job_lists_are_paged_with_link_headers(small: Emulator) -> None:
    runs = httpx.get(
        f"{small.api_url}/repos/{REPO}/actions/runs", params={"event": "schedule"}, headers=auth(small)
    ).json()["workflow_runs"]
    assert runs, "the history has a nightly matrix run"
    url: str | None = f"{small.api_url}/repos/{REPO}/actions/runs/{runs[-1]['id']}/jobs?per_page=100"
    ids: list[int] = []
    pages = 0
    while url:
        answer = httpx.get(url, headers=auth(small))
        ids.extend(job["id"] for job in answer.json()["jobs"])
        pages += 1
        url = answer.links.get("next", {}).get("url")
    assert len(ids) >= 250 and len(set(ids)) == len(ids) and pages == -(-len(ids) // 100)


def test_primary_rate_limit_is_enforced(github_assets: GitHubAssets) -> None:
    with Emulator(seed=1, repos=[REPO], jobs_per_repo=200, rate_limit=3, graphql_rate_limit=2) as tight:
        url = f"{tight.api_url}/repos/{REPO}/actions/workflows"
        statuses = [httpx.get(url, headers=auth(tight)).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 403]
        refused = httpx.get(url, headers=auth(tight))
        assert (
            refused.headers["x-ratelimit-remaining"] == "0" and int(refused.headers["x-ratelimit-reset"]) > 0
        )
        assert int(refused.headers["retry-after"]) > 0
        overview = httpx.get(f"{tight.api_url}/rate_limit", headers=auth(tight))
        assert overview.status_code == 200 and overview.json()["resources"]["core"]["remaining"] == 0
        query = {"query": "{ rateLimit { cost remaining } }"}
        answers = [httpx.post(tight.graphql_url, json=query, headers=auth(tight)).json() for _ in range(3)]
        assert [a.get("data", {}).get("rateLimit", {}).get("remaining") for a in answers[:2]] == [1, 0]
        assert answers[2]["errors"][0]["type"] == "RATE_LIMITED"
        assert tight.usage.rate_limited >= 3


def test_graphql_reports_and_charges_its_cost(small: Emulator) -> None:
    ids = workflow_node_ids(small)
    answers = [
        httpx.post(
            small.graphql_url, json={"query": WORKFLOW_RUNS, "variables": {"ids": ids}}, headers=auth(small)
        )
        for _ in range(2)
    ]
    rates = [answer.json()["data"]["rateLimit"] for answer in answers]
    # 4 workflows: 4 + 40 + 800 requests -> 8 points each time
    assert [rate["cost"] for rate in rates] == [8, 8]
    assert rates[0]["remaining"] - rates[1]["remaining"] == 8
    assert small.usage.graphql_points == 16
    assert answers[1].headers["x-ratelimit-resource"] == "graphql"
    assert int(answers[1].headers["x-ratelimit-remaining"]) == rates[1]["remaining"]
    # the same answers through the github.com layout
    plain = httpx.post(f"{small.url}/graphql", json={"query": "{ rateLimit { limit } }"}, headers=auth(small))
    assert plain.json()["data"]["rateLimit"]["limit"] == 5000


def test_injected_faults_happen_once_each_then_service_recovers(small: Emulator) -> None:
    rest_url = f"{small.api_url}/repos/{REPO}/actions/runs"
    small.faults.inject("502", count=2)
    assert [httpx.get(rest_url, headers=auth(small)).status_code for _ in range(3)] == [502, 502, 200]

    small.faults.inject("secondary_rate_limit")
    limited = httpx.get(rest_url, headers=auth(small))
    assert limited.status_code == 403 and limited.headers["retry-after"] == "1"
    assert "secondary rate limit" in limited.json()["message"]

    small.faults.inject("malformed_json")
    broken = httpx.get(rest_url, headers=auth(small))
    assert broken.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        broken.json()

    small.faults.inject("timeout")
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(rest_url, headers=auth(small), timeout=0.3)
    assert httpx.get(rest_url, headers=auth(small), timeout=5).status_code == 200

    # GraphQL-only faults wait for a GraphQL request; REST traffic passes untouched meanwhile
    small.faults.inject("partial_graphql_errors")
    assert httpx.get(rest_url, headers=auth(small)).status_code == 200
    ids = workflow_node_ids(small)
    body = httpx.post(
        small.graphql_url, json={"query": WORKFLOW_RUNS, "variables": {"ids": ids}}, headers=auth(small)
    ).json()
    assert body["errors"] and all(error["path"] for error in body["errors"])
    for error in body["errors"]:
        item: Any = body["data"]
        for key in error["path"]:
            item = item[key]
        assert item is None
    assert small.faults.injected["partial_graphql_errors"] == 1 and small.faults.pending == 0


def test_graphql_502_and_random_faults_are_reproducible(small: Emulator) -> None:
    small.faults.inject("502", api="graphql")
    assert httpx.get(f"{small.api_url}/rate_limit", headers=auth(small)).status_code == 200
    bad = httpx.post(small.graphql_url, json={"query": "{ rateLimit { cost } }"}, headers=auth(small))
    assert bad.status_code == 502 and bad.json()["errors"]

    def pattern(seed: int) -> list[int]:
        small.faults.random(0.5, seed=seed, kinds=("502", "secondary_rate_limit"))
        codes = [httpx.get(f"{small.api_url}/rate_limit", headers=auth(small)).status_code for _ in range(12)]
        small.faults.clear()
        return codes

    first, again, other = pattern(3), pattern(3), pattern(4)
    assert first == again != other
    assert 200 in first and {403, 502} & set(first)
    with pytest.raises(ValueError, match="unknown fault kind"):
        small.faults.inject("meteor")


def test_concurrency_limit_answers_secondary_rate_limit(github_assets: GitHubAssets) -> None:
    with Emulator(seed=1, repos=[REPO], jobs_per_repo=200, max_concurrent=1, hang_seconds=3.0) as one:
        one.faults.inject("timeout")
        url = f"{one.api_url}/repos/{REPO}/actions/workflows"
        hung: list[int] = []
        hanging = threading.Thread(
            target=lambda: hung.append(httpx.get(url, headers=auth(one), timeout=10).status_code)
        )
        hanging.start()
        while one.faults.pending:  # wait until the hanging request holds the only slot
            threading.Event().wait(0.02)
        crowded = httpx.get(url, headers=auth(one))
        hanging.join()
        assert crowded.status_code == 403 and crowded.headers["retry-after"] == "1"
        assert hung == [504]
        assert httpx.get(url, headers=auth(one)).status_code == 200


class _Receiver(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], bytes]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    received: list[tuple[dict[str, str], bytes]] = []
    handler = type("Handler", (_Receiver,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hooks", received
    finally:
        server.shutdown()
        server.server_close()


def test_webhooks_are_signed_complete_and_sent_once(
    small: Emulator, receiver: tuple[str, list[tuple[dict[str, str], bytes]]]
) -> None:
    url, received = receiver
    deliveries = small.deliver_webhooks_for(REPO, url, "s3cret")
    assert deliveries and all(d.status_code == 204 for d in deliveries)
    assert len(received) == len(deliveries)
    for headers, body in received:
        expected = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
        assert headers["x-hub-signature-256"] == expected
        assert headers["x-github-event"] in ("workflow_run", "workflow_job")
    assert len({headers["x-github-delivery"] for headers, _ in received}) == len(received)
    completed = {
        json.loads(body)["workflow_job"]["id"]
        for headers, body in received
        if headers["x-github-event"] == "workflow_job" and json.loads(body)["action"] == "completed"
    }
    truth = {job.job_id for job in small.truth.jobs(REPO) if job.status == "completed"}
    assert completed == truth
    assert small.deliver_webhooks_for(REPO, url, "s3cret") == []
    new_runs = small.add_activity(REPO, runs=2)
    before = len(received)
    more = small.deliver_webhooks_for(REPO, url, "s3cret", lose=0.5, seed=1)
    assert any(d.lost for d in more) and any(not d.lost for d in more)
    assert len(received) - before == sum(not d.lost for d in more)
    payloads = [json.loads(body) for _, body in received[before:]]
    run_ids = {
        p["workflow_run"]["id"] if "workflow_run" in p else p["workflow_job"]["run_id"] for p in payloads
    }
    assert run_ids & set(new_runs)
    single = small.send_webhook(url, "other", "ping", {"zen": "Keep it logically awesome."})
    assert single.status_code == 204
    assert (
        received[-1][0]["x-hub-signature-256"]
        == "sha256=" + hmac.new(b"other", received[-1][1], hashlib.sha256).hexdigest()
    )


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_cli_prints_url_and_token_and_serves() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "cipulse", "emulator", "--port", "0", "--seed", "2", "--jobs-per-repo", "200"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        # as from a terminal: a suite started in the background of a script inherits SIGINT ignored, and
        # Python then never raises KeyboardInterrupt (only calls signal(), safe between fork and exec)
        preexec_fn=_default_sigint,
    )
    try:
        assert process.stdout is not None
        # all five lines: the last one is printed just before the command waits for Ctrl-C
        lines = [process.stdout.readline() for _ in range(5)]
        url = lines[0].split()[-1]
        token = lines[3].split()[-1]
        assert lines[4].split(":")[0].strip() == "repositories"
        answer = httpx.get(
            f"{url}/api/v3/rate_limit", headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        assert answer.status_code == 200 and answer.json()["rate"]["limit"] == 5000
    finally:
        process.send_signal(signal.SIGINT)
        returncode = process.wait(timeout=30)
    assert returncode == 0  # Ctrl-C is the way to stop it: a clean exit, no traceback


def test_slow_graphql_queries_fail_like_githubs_ten_second_limit(github_assets: GitHubAssets) -> None:
    with Emulator(seed=1, repos=[REPO], jobs_per_repo=200, graphql_timeout_seconds=0.0) as strict:
        before = strict.usage.snapshot()
        answer = httpx.post(
            strict.graphql_url, json={"query": "{ rateLimit { cost } }"}, headers=auth(strict)
        )
        assert answer.status_code == 502 and "timeout" in answer.json()["errors"][0]["message"]
        spent = strict.usage.snapshot() - before
        assert spent.graphql_points == 1 and spent.units == 1


def test_per_minute_secondary_limit_when_enabled(github_assets: GitHubAssets) -> None:
    with Emulator(seed=1, repos=[REPO], jobs_per_repo=200, per_minute={"rest": 3}) as strict:
        url = f"{strict.api_url}/repos/{REPO}/actions/workflows"
        answers = [httpx.get(url, headers=auth(strict)) for _ in range(4)]
        assert [a.status_code for a in answers] == [200, 200, 200, 403]
        assert 1 <= int(answers[3].headers["retry-after"]) <= 61
        query = {"query": "{ rateLimit { cost } }"}
        assert httpx.post(strict.graphql_url, json=query, headers=auth(strict)).status_code == 200


def test_parallel_webhook_delivery_sends_the_same_events(
    small: Emulator, receiver: tuple[str, list[tuple[dict[str, str], bytes]]]
) -> None:
    url, received = receiver
    in_order = small.deliver_webhooks_for(REPO, url + "/a", "k")
    parallel = small.deliver_webhooks_for(REPO, url + "/b", "k", concurrency=6)
    assert sorted(d.delivery_id for d in in_order) == sorted(d.delivery_id for d in parallel)
    assert all(d.status_code == 204 for d in parallel)
    assert len(received) == 2 * len(in_order)
