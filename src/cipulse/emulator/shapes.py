"""REST and webhook JSON built from GitHub's own published examples.

Each answer starts from the matching example object in @octokit/openapi `components.examples` (or the
@octokit/webhooks-examples payload) and only fills in values, so field names and nesting stay GitHub's.
Example hosts and names ("octocat/Hello-World", https://api.github.com) are rewritten to the emulator's.
"""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from cipulse.emulator.graph_nodes import iso
from cipulse.emulator.ids import node_id
from cipulse.emulator.model import COMPLETED, QUEUED, AttemptView, JobView, RepoPlan, RunPlan, WorkflowPlan

# GitHub's job example writes step times with a -08:00 offset; the emulator does the same (same instant).
_STEP_ZONE = timezone(timedelta(hours=-8))


@lru_cache(maxsize=4)
def openapi_examples(path: Path) -> dict[str, Any]:
    """components.examples of the OpenAPI description, name -> example value."""
    document = json.loads(path.read_text())
    return {
        name: entry["value"] for name, entry in document["components"]["examples"].items() if "value" in entry
    }


@lru_cache(maxsize=4)
def webhook_examples(path: Path) -> dict[str, list[dict[str, Any]]]:
    """Webhook example payloads, event name -> payloads."""
    return {entry["name"]: entry["examples"] for entry in json.loads(path.read_text())}


def step_time(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(_STEP_ZONE).strftime("%Y-%m-%dT%H:%M:%S.000%z").replace("-0800", "-08:00")


class Shapes:
    """Renders the emulator's entities as GitHub's REST and webhook JSON."""

    def __init__(self, openapi_path: Path, webhooks_path: Path, api_base: str, html_base: str) -> None:
        self.examples = openapi_examples(openapi_path)
        self.hooks = webhook_examples(webhooks_path)
        self.api_base = api_base
        self.html_base = html_base
        self._repo_cache: dict[str, dict[str, Any]] = {}

    # ---- text rewriting of examples --------------------------------------------------------------

    def _rewrite(self, value: Any, repo: RepoPlan) -> Any:
        text = json.dumps(value).replace("http://api.github.com", "https://api.github.com")
        text = text.replace("https://api.github.com", self.api_base).replace(
            "https://github.com", self.html_base
        )
        text = text.replace("octo-org/octo-repo", repo.full_name).replace(
            "octocat/Hello-World", repo.full_name
        )
        return json.loads(text)

    def user(self, login: str) -> dict[str, Any]:
        actor = copy.deepcopy(self.examples["workflow-run"]["actor"])
        text = json.dumps(actor).replace("https://api.github.com", self.api_base)
        text = text.replace("https://github.com", self.html_base).replace("octocat", login)
        user: dict[str, Any] = json.loads(text)
        user["id"] = 1000 + sum(map(ord, login))
        user["node_id"] = node_id("User", user["id"])
        user["type"] = "Bot" if login.endswith("[bot]") else "User"
        return user

    def repository(self, repo: RepoPlan) -> dict[str, Any]:
        """The minimal-repository object runs embed."""
        cached = self._repo_cache.get(repo.full_name)
        if cached is None:
            cached = self._rewrite(self.examples["workflow-run"]["repository"], repo)
            cached.update(
                id=repo.repo_id,
                node_id=node_id("Repository", repo.repo_id),
                name=repo.name,
                full_name=repo.full_name,
                owner=self._owner(repo),
            )
            self._repo_cache[repo.full_name] = cached
        return cached

    def _owner(self, repo: RepoPlan) -> dict[str, Any]:
        owner = self.user(repo.owner)
        owner["type"] = "Organization"
        owner["id"] = repo.repo_id // 7
        owner["node_id"] = node_id("Organization", owner["id"])
        return owner

    def full_repository(self, repo: RepoPlan) -> dict[str, Any]:
        body: dict[str, Any] = self._rewrite(self.examples["full-repository"], repo)
        body.update(
            id=repo.repo_id,
            node_id=node_id("Repository", repo.repo_id),
            name=repo.name,
            full_name=repo.full_name,
            owner=self._owner(repo),
            default_branch=repo.default_branch,
            private=False,
        )
        for nested in ("organization", "parent", "source", "template_repository"):
            body.pop(nested, None)
        return body

    # ---- REST objects -------------------------------------------------------------------------------

    def workflow(self, workflow: WorkflowPlan) -> dict[str, Any]:
        repo = workflow.repo
        body: dict[str, Any] = self._rewrite(self.examples["workflow"], repo)
        body.update(
            id=workflow.workflow_id,
            node_id=node_id("Workflow", workflow.workflow_id),
            name=workflow.name,
            path=workflow.path,
            state="active",
            created_at=iso(workflow.created),
            updated_at=iso(workflow.created),
            url=f"{self.api_base}/repos/{repo.full_name}/actions/workflows/{workflow.workflow_id}",
            html_url=f"{self.html_base}/{repo.full_name}/blob/{repo.default_branch}/{workflow.path}",
            badge_url=f"{self.html_base}/{repo.full_name}/workflows/{quote(workflow.name)}/badge.svg",
        )
        return body

    def run(self, run: RunPlan, attempt: AttemptView) -> dict[str, Any]:
        """A workflow run as /actions/runs/{id} (latest attempt) or /attempts/{n} shows it."""
        repo = run.repo
        api_run = f"{self.api_base}/repos/{repo.full_name}/actions/runs/{run.run_id}"
        template = self.examples["workflow-run"]
        body = dict(template)
        number = attempt.plan.number
        body.update(
            id=run.run_id,
            name=run.workflow.name,
            node_id=node_id("WorkflowRun", run.run_id),
            check_suite_id=run.check_suite_id,
            check_suite_node_id=node_id("CheckSuite", run.check_suite_id),
            head_branch=run.head_branch,
            head_sha=run.head_sha,
            path=run.workflow.path,
            run_number=run.run_number,
            event=run.event,
            display_title=run.message,
            status=attempt.status,
            conclusion=attempt.conclusion,
            workflow_id=run.workflow.workflow_id,
            url=api_run,
            html_url=f"{self.html_base}/{repo.full_name}/actions/runs/{run.run_id}",
            pull_requests=[self._pull_request(repo, run, n) for n in run.pull_request_numbers],
            created_at=iso(run.created),
            updated_at=iso(attempt.updated_at),
            actor=self.user(run.actor),
            run_attempt=number,
            referenced_workflows=[],
            run_started_at=iso(attempt.plan.created),
            triggering_actor=self.user(run.actor),
            jobs_url=f"{api_run}/jobs",
            logs_url=f"{api_run}/logs",
            check_suite_url=f"{self.api_base}/repos/{repo.full_name}/check-suites/{run.check_suite_id}",
            artifacts_url=f"{api_run}/artifacts",
            cancel_url=f"{api_run}/cancel",
            rerun_url=f"{api_run}/rerun",
            previous_attempt_url=f"{api_run}/attempts/{number - 1}" if number > 1 else None,
            workflow_url=f"{self.api_base}/repos/{repo.full_name}/actions/workflows/{run.workflow.workflow_id}",
            head_commit={
                "id": run.head_sha,
                "tree_id": run.head_sha[::-1],
                "message": run.message,
                "timestamp": iso(run.created - timedelta(seconds=40)),
                "author": {"name": "Octo Cat", "email": "octocat@github.com"},
                "committer": {"name": "GitHub", "email": "noreply@github.com"},
            },
            repository=self.repository(repo),
            head_repository=self.repository(repo),
        )
        return body

    def _pull_request(self, repo: RepoPlan, run: RunPlan, number: int) -> dict[str, Any]:
        repo_ref = {"id": repo.repo_id, "url": f"{self.api_base}/repos/{repo.full_name}", "name": repo.name}
        return {
            "id": 900_000_000 + number,
            "number": number,
            "url": f"{self.api_base}/repos/{repo.full_name}/pulls/{number}",
            "head": {"ref": run.head_branch, "sha": run.head_sha, "repo": repo_ref},
            "base": {"ref": repo.default_branch, "sha": run.head_sha[::-1], "repo": repo_ref},
        }

    def job(self, job: JobView, run: RunPlan) -> dict[str, Any]:
        plan = job.plan
        repo = run.repo
        api_run = f"{self.api_base}/repos/{repo.full_name}/actions/runs/{run.run_id}"
        body = dict(self.examples["job"])
        queued = job.status == QUEUED
        body.update(
            id=plan.job_id,
            run_id=run.run_id,
            run_url=api_run,
            run_attempt=plan.attempt.number,
            node_id=node_id("CheckRun", plan.job_id),
            head_sha=run.head_sha,
            url=f"{self.api_base}/repos/{repo.full_name}/actions/jobs/{plan.job_id}",
            html_url=f"{self.html_base}/{repo.full_name}/actions/runs/{run.run_id}/job/{plan.job_id}",
            status=job.status,
            conclusion=job.conclusion,
            created_at=iso(plan.created),
            # GitHub fills started_at with the creation time while a job is still queued.
            started_at=iso(plan.created if queued else job.started_at),
            completed_at=iso(job.completed_at),
            name=plan.name,
            steps=[
                {
                    "name": step.name,
                    "status": step.status,
                    "conclusion": step.conclusion,
                    "number": step.number,
                    "started_at": step_time(step.started_at),
                    "completed_at": step_time(step.completed_at),
                }
                for step in job.steps
            ],
            check_run_url=f"{self.api_base}/repos/{repo.full_name}/check-runs/{plan.job_id}",
            labels=list(plan.labels),
            runner_id=None if queued else plan.runner_id,
            runner_name=None if queued else plan.runner_name,
            runner_group_id=None if queued else plan.runner_group_id,
            runner_group_name=None if queued else plan.runner_group_name,
            workflow_name=run.workflow.name,
            head_branch=run.head_branch,
        )
        return body

    def rate_limit(self, buckets: dict[str, Any]) -> dict[str, Any]:
        body = copy.deepcopy(self.examples["rate-limit-overview"])
        for name, bucket in buckets.items():
            entry = {
                "limit": bucket.limit,
                "used": bucket.used,
                "remaining": bucket.remaining,
                "reset": bucket.reset,
            }
            body["resources"][name] = entry
            if name == "core":
                body["rate"] = dict(entry)
        return body

    # ---- webhooks -------------------------------------------------------------------------------------

    def _hook_template(self, event: str, object_key: str) -> dict[str, Any]:
        for example in self.hooks[event]:
            if (
                example.get("action") == "completed"
                and (example.get(object_key) or {}).get("status") == COMPLETED
            ):
                return example
        return self.hooks[event][0]

    def workflow_job_payload(self, action: str, job: JobView, run: RunPlan) -> dict[str, Any]:
        template = self._hook_template("workflow_job", "workflow_job")
        repo = run.repo
        payload = self._rewrite({k: v for k, v in template.items() if k != "workflow_job"}, repo)
        payload["action"] = action
        payload["workflow_job"] = {**template["workflow_job"], **self.job(job, run)}
        payload["repository"].update(self._repo_fields(repo))
        payload["sender"] = self.user(run.actor)
        return payload

    def workflow_run_payload(self, action: str, attempt: AttemptView, run: RunPlan) -> dict[str, Any]:
        template = self._hook_template("workflow_run", "workflow_run")
        repo = run.repo
        payload = self._rewrite(
            {k: v for k, v in template.items() if k not in ("workflow_run", "workflow")}, repo
        )
        payload["action"] = action
        payload["workflow_run"] = {**template["workflow_run"], **self.run(run, attempt)}
        payload["workflow"] = {**template.get("workflow", {}), **self.workflow(run.workflow)}
        payload["repository"].update(self._repo_fields(repo))
        payload["sender"] = self.user(run.actor)
        return payload

    def _repo_fields(self, repo: RepoPlan) -> dict[str, Any]:
        return {
            "id": repo.repo_id,
            "node_id": node_id("Repository", repo.repo_id),
            "name": repo.name,
            "full_name": repo.full_name,
            "owner": self._owner(repo),
            "default_branch": repo.default_branch,
        }
