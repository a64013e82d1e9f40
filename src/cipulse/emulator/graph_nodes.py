"""Objects the GraphQL executor walks: attributes carry the schema's field names so graphql-core's default
resolver reads them directly (a method is called with the field's arguments). Keeping resolution this
trivial is what lets a 10,000-job sync with steps run in seconds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from graphql import GraphQLError, GraphQLResolveInfo

from cipulse.emulator.ids import cursor, node_id, parse_cursor
from cipulse.emulator.model import AttemptView, JobView, RepoPlan, RunPlan, WorkflowPlan

if TYPE_CHECKING:
    from cipulse.emulator.state import World

ACTIONS_APP_ID = 15368
ACTIONS_APP = {
    "__typename": "App",
    "databaseId": ACTIONS_APP_ID,
    "id": node_id("App", ACTIONS_APP_ID),
    "name": "GitHub Actions",
    "slug": "github-actions",
    "url": "https://github.com/apps/github-actions",
    "description": "Automate your workflow from idea to production",
    "logoBackgroundColor": "000000",
}


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%SZ")


def upper(value: str | None) -> str | None:
    return None if value is None else value.upper()


class Connection:
    """A page of a GraphQL connection; `edges` and `pageInfo` are only built when asked for."""

    __slots__ = ("_keys", "has_next", "has_previous", "nodes", "totalCount")

    def __init__(
        self, nodes: list[Any], keys: list[int], total: int, has_next: bool, has_previous: bool
    ) -> None:
        self.nodes = nodes
        self._keys = keys
        self.totalCount = total
        self.has_next = has_next
        self.has_previous = has_previous

    @property
    def edges(self) -> list[dict[str, Any]]:
        return [
            {"node": node, "cursor": cursor(key)} for node, key in zip(self.nodes, self._keys, strict=True)
        ]

    @property
    def pageInfo(self) -> dict[str, Any]:
        return {
            "hasNextPage": self.has_next,
            "hasPreviousPage": self.has_previous,
            "startCursor": cursor(self._keys[0]) if self._keys else None,
            "endCursor": cursor(self._keys[-1]) if self._keys else None,
        }


def paginate(
    items: Sequence[Any],
    key: Callable[[Any], int],
    first: int | None = None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
) -> Connection:
    """Relay pagination over `items` (already in connection order) with cursors that name an item's key,
    so a page boundary stays put when newer items are inserted in front."""
    keys = [key(item) for item in items]
    start, end = 0, len(items)
    if after is not None:
        start = _cursor_position(after, keys) + 1
    if before is not None:
        end = _cursor_position(before, keys)
    if (first is not None and first < 0) or (last is not None and last < 0):
        raise GraphQLError("`first` and `last` must be non-negative.")
    window_start, window_end = start, max(start, end)
    if first is not None:
        window_end = min(window_end, window_start + first)
    if last is not None:
        window_start = max(window_start, window_end - last)
    return Connection(
        list(items[window_start:window_end]),
        keys[window_start:window_end],
        len(items),
        has_next=window_end < end,
        has_previous=window_start > start,
    )


def _cursor_position(value: str, keys: list[int]) -> int:
    key = parse_cursor(value)
    if key is None:
        raise GraphQLError(f"`{value}` does not appear to be a valid cursor.")
    try:
        return keys.index(key)
    except ValueError:
        raise GraphQLError(f"`{value}` does not appear to be a valid cursor.") from None


def step_dicts(job: JobView) -> list[dict[str, Any]]:
    return [
        {
            "name": step.name,
            "number": step.number,
            "status": step.status.upper(),
            "conclusion": upper(step.conclusion),
            "startedAt": iso(step.started_at),
            "completedAt": iso(step.completed_at),
            "secondsToCompletion": (
                None
                if step.started_at is None or step.completed_at is None
                else int((step.completed_at - step.started_at).total_seconds())
            ),
            "externalId": None,
        }
        for step in job.steps
    ]


class RepositoryNode:
    typename = "Repository"

    def __init__(self, repo: RepoPlan, html_base: str) -> None:
        self.repo = repo
        self.id = node_id("Repository", repo.repo_id)
        self.databaseId = repo.repo_id
        self.name = repo.name
        self.nameWithOwner = repo.full_name
        self.url = f"{html_base}/{repo.full_name}"
        self.resourcePath = f"/{repo.full_name}"
        self.isPrivate = False
        self.isArchived = False
        self.owner = {
            "__typename": "Organization",
            "login": repo.owner,
            "id": node_id("Organization", repo.repo_id // 7),
            "url": f"{html_base}/{repo.owner}",
            "resourcePath": f"/{repo.owner}",
        }
        self._html_base = html_base

    def defaultBranchRef(self, info: GraphQLResolveInfo) -> RefNode:
        return RefNode(self.repo, self.repo.default_branch, self._html_base)

    def ref(self, info: GraphQLResolveInfo, qualifiedName: str) -> RefNode | None:
        name = qualifiedName.removeprefix("refs/heads/")
        return RefNode(self.repo, name, self._html_base)

    def object(self, info: GraphQLResolveInfo, oid: str | None = None, expression: str | None = None) -> Any:
        world: World = info.context.world
        sha = oid or expression or ""
        if (self.repo.full_name.lower(), sha) in world.runs_by_sha:
            return CommitNode(self.repo, sha, self._html_base)
        return None


class RefNode:
    typename = "Ref"

    def __init__(self, repo: RepoPlan, name: str, html_base: str) -> None:
        self.repo_plan = repo
        self.id = node_id("Ref", f"{repo.repo_id}:{name}")
        self.name = name
        self.prefix = "refs/heads/"
        self._html_base = html_base

    def repository(self, info: GraphQLResolveInfo) -> RepositoryNode:
        return RepositoryNode(self.repo_plan, self._html_base)

    def target(self, info: GraphQLResolveInfo) -> CommitNode | None:
        world: World = info.context.world
        runs = [run for run in world.repo_visible_runs(self.repo_plan) if run.head_branch == self.name]
        return CommitNode(self.repo_plan, runs[-1].head_sha, self._html_base) if runs else None


class CommitNode:
    typename = "Commit"

    def __init__(self, repo: RepoPlan, sha: str, html_base: str) -> None:
        self.repo_plan = repo
        self.oid = sha
        self.abbreviatedOid = sha[:7]
        self.id = node_id("Commit", f"{repo.repo_id}:{sha}")
        self.url = f"{html_base}/{repo.full_name}/commit/{sha}"
        self.commitUrl = self.url
        self.resourcePath = f"/{repo.full_name}/commit/{sha}"
        self._html_base = html_base

    def _runs(self, info: GraphQLResolveInfo) -> list[RunPlan]:
        world: World = info.context.world
        runs = world.runs_by_sha.get((self.repo_plan.full_name.lower(), self.oid), [])
        return [run for run in runs if run.created <= world.clock]

    @property
    def message(self) -> str:
        return f"Commit {self.abbreviatedOid}"

    def messageHeadline(self, info: GraphQLResolveInfo) -> str:
        runs = self._runs(info)
        return runs[0].message if runs else ""

    def repository(self, info: GraphQLResolveInfo) -> RepositoryNode:
        return RepositoryNode(self.repo_plan, self._html_base)

    def checkSuites(
        self,
        info: GraphQLResolveInfo,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        filterBy: dict[str, Any] | None = None,
    ) -> Connection:
        runs = self._runs(info)
        if filterBy:
            if filterBy.get("appId") not in (None, ACTIONS_APP_ID):
                runs = []
            if filterBy.get("checkName"):
                runs = [run for run in runs if run.workflow.name == filterBy["checkName"]]
        suites = [info.context.nodes.run(run).check_suite for run in runs]
        return paginate(suites, _database_id, first, after, last, before)


class WorkflowNode:
    typename = "Workflow"

    def __init__(self, workflow: WorkflowPlan, html_base: str) -> None:
        full_name = workflow.repo.full_name
        self.plan = workflow
        self.id = node_id("Workflow", workflow.workflow_id)
        self.databaseId = workflow.workflow_id
        self.name = workflow.name
        self.state = "ACTIVE"
        self.createdAt = iso(workflow.created)
        self.updatedAt = iso(workflow.created)
        self.url = f"{html_base}/{full_name}/actions/workflows/{workflow.path.rsplit('/', 1)[-1]}"
        self.resourcePath = f"/{full_name}/actions/workflows/{workflow.path.rsplit('/', 1)[-1]}"

    def runs(
        self,
        info: GraphQLResolveInfo,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        orderBy: dict[str, str] | None = None,
    ) -> Connection:
        world: World = info.context.world
        visible = world.visible_runs(self.plan)
        if (orderBy or {}).get("direction", "DESC") == "DESC":
            visible = visible[::-1]
        nodes = info.context.nodes
        page = paginate(visible, lambda run: run.run_id, first, after, last, before)
        page.nodes = [nodes.run(run).workflow_run for run in page.nodes]
        return page


class WorkflowRunNode:
    typename = "WorkflowRun"
    __slots__ = (
        "checkSuite",
        "createdAt",
        "databaseId",
        "event",
        "id",
        "resourcePath",
        "runNumber",
        "updatedAt",
        "url",
        "workflow",
    )

    def __init__(self, run: RunPlan, latest: AttemptView, workflow: WorkflowNode, html_base: str) -> None:
        path = f"/{run.repo.full_name}/actions/runs/{run.run_id}"
        self.id = node_id("WorkflowRun", run.run_id)
        self.databaseId = run.run_id
        self.runNumber = run.run_number
        self.event = run.event
        self.createdAt = iso(run.created)
        self.updatedAt = iso(latest.updated_at)
        self.url = html_base + path
        self.resourcePath = path
        self.workflow = workflow
        self.checkSuite: CheckSuiteNode | None = None

    def deploymentReviews(self, info: GraphQLResolveInfo, **_: Any) -> Connection:
        return paginate([], int, 0)

    def pendingDeploymentRequests(self, info: GraphQLResolveInfo, **_: Any) -> Connection:
        return paginate([], int, 0)


class CheckSuiteNode:
    typename = "CheckSuite"

    def __init__(
        self,
        run: RunPlan,
        latest: AttemptView,
        check_runs: list[CheckRunNode],
        repository: RepositoryNode,
        html_base: str,
    ) -> None:
        self.id = node_id("CheckSuite", run.check_suite_id)
        self.databaseId = run.check_suite_id
        self.status = latest.status.upper()
        self.conclusion = upper(latest.conclusion)
        self.createdAt = iso(run.created)
        self.updatedAt = iso(latest.updated_at)
        self.resourcePath = (
            f"/{run.repo.full_name}/commit/{run.head_sha}/checks?check_suite_id={run.check_suite_id}"
        )
        self.url = html_base + self.resourcePath
        self.app = ACTIONS_APP
        self.repository = repository
        self.branch = RefNode(run.repo, run.head_branch, html_base)
        self.commit = CommitNode(run.repo, run.head_sha, html_base)
        self.workflowRun: WorkflowRunNode | None = None
        self.latest_attempt = latest.plan.number
        self.all_runs = check_runs

    def checkRuns(
        self,
        info: GraphQLResolveInfo,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        filterBy: dict[str, Any] | None = None,
    ) -> Connection:
        runs = self.all_runs
        flt = filterBy or {}
        if flt.get("checkType", "LATEST") == "LATEST":
            runs = [run for run in runs if run.attempt == self.latest_attempt]
        if flt.get("appId") not in (None, ACTIONS_APP_ID):
            runs = []
        if flt.get("checkName"):
            runs = [run for run in runs if run.name == flt["checkName"]]
        statuses = flt.get("statuses") or ([flt["status"]] if flt.get("status") else None)
        if statuses:
            runs = [run for run in runs if run.status in statuses]
        if flt.get("conclusions"):
            runs = [run for run in runs if run.conclusion in flt["conclusions"]]
        return paginate(runs, _database_id, first, after, last, before)


def _database_id(item: Any) -> int:
    value: int = item.databaseId
    return value


class CheckRunNode:
    typename = "CheckRun"
    __slots__ = (
        "attempt",
        "checkSuite",
        "completedAt",
        "conclusion",
        "databaseId",
        "detailsUrl",
        "externalId",
        "id",
        "name",
        "permalink",
        "repository",
        "resourcePath",
        "startedAt",
        "status",
        "step_dicts",
        "summary",
        "text",
        "title",
        "url",
    )

    def __init__(self, job: JobView, run: RunPlan, repository: RepositoryNode, html_base: str) -> None:
        plan = job.plan
        path = f"/{run.repo.full_name}/actions/runs/{run.run_id}/job/{plan.job_id}"
        self.attempt = plan.attempt.number
        self.id = node_id("CheckRun", plan.job_id)
        self.databaseId = plan.job_id
        self.name = plan.name
        self.status = job.status.upper()
        self.conclusion = upper(job.conclusion)
        self.startedAt = iso(job.started_at)
        self.completedAt = iso(job.completed_at)
        self.url = html_base + path
        self.permalink = self.url
        self.detailsUrl = self.url
        self.resourcePath = path
        self.externalId = None
        self.summary = None
        self.text = None
        self.title = None
        self.repository = repository
        self.checkSuite: CheckSuiteNode | None = None
        self.step_dicts = step_dicts(job)

    def steps(
        self,
        info: GraphQLResolveInfo,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        number: int | None = None,
    ) -> Connection:
        steps = self.step_dicts
        if number is not None:
            steps = [step for step in steps if step["number"] == number]
        return paginate(steps, _step_number, first, after, last, before)

    def annotations(self, info: GraphQLResolveInfo, **_: Any) -> Connection:
        return paginate([], int, 0)

    def isRequired(self, info: GraphQLResolveInfo, **_: Any) -> bool:
        return False


def _step_number(step: dict[str, Any]) -> int:
    value: int = step["number"]
    return value


class RunNodes:
    """The GraphQL objects of one run at one moment: its WorkflowRun, CheckSuite and CheckRuns."""

    __slots__ = ("check_runs", "check_suite", "workflow_run")

    def __init__(self, run: RunPlan, attempts: list[AttemptView], html_base: str) -> None:
        repository = RepositoryNode(run.repo, html_base)
        latest = attempts[-1]
        self.workflow_run = WorkflowRunNode(run, latest, WorkflowNode(run.workflow, html_base), html_base)
        self.check_runs = [
            CheckRunNode(job, run, repository, html_base) for attempt in attempts for job in attempt.jobs
        ]
        self.check_runs.sort(key=_database_id)
        self.check_suite = CheckSuiteNode(run, latest, self.check_runs, repository, html_base)
        self.check_suite.workflowRun = self.workflow_run
        self.workflow_run.checkSuite = self.check_suite
        for check_run in self.check_runs:
            check_run.checkSuite = self.check_suite


class NodeFactory:
    """Builds (and caches per run while it can change) the GraphQL objects for the world's entities."""

    def __init__(self, world: World, html_base: str) -> None:
        self.world = world
        self.html_base = html_base

    def run(self, run: RunPlan) -> RunNodes:
        return self.world.cached(
            run, "graph", lambda: RunNodes(run, self.world.attempts(run), self.html_base)
        )

    def by_global_id(self, type_name: str, key: str) -> Any:
        world = self.world
        if type_name in ("Commit", "Ref"):
            repo_id, _, rest = key.partition(":")
            repo = next((r for r in world.repos.values() if str(r.repo_id) == repo_id), None)
            if repo is None or not rest:
                return None
            if type_name == "Ref":
                return RefNode(repo, rest, self.html_base)
            known = (repo.full_name.lower(), rest) in world.runs_by_sha
            return CommitNode(repo, rest, self.html_base) if known else None
        if not key.isdigit():
            return None
        number = int(key)
        if type_name == "Workflow":
            workflow = world.workflows_by_id.get(number)
            return None if workflow is None else WorkflowNode(workflow, self.html_base)
        if type_name == "WorkflowRun":
            run = world.visible_run(number)
            return None if run is None else self.run(run).workflow_run
        if type_name == "CheckSuite":
            run = world.suites_by_id.get(number)
            return None if run is None or run.created > world.clock else self.run(run).check_suite
        if type_name == "CheckRun":
            job = world.jobs_by_id.get(number)
            if job is None or job.created > world.clock:
                return None
            for check_run in self.run(job.attempt.run).check_runs:
                if check_run.databaseId == number:
                    return check_run
            return None
        if type_name == "Repository":
            for repo in world.repos.values():
                if repo.repo_id == number:
                    return RepositoryNode(repo, self.html_base)
        return None
