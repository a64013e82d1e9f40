"""The emulator's HTTP surface (Starlette): GitHub's GHES layout (`/api/v3`, `/api/graphql`) and the
github.com layout (`/`, `/graphql`), with authentication, rate limits, ETags, paging links and faults."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cipulse.emulator import rest_api
from cipulse.emulator.faults import GRAPHQL_TIMEOUT_MESSAGE, break_some_items
from cipulse.emulator.graphql_api import GraphQLContext, GraphQLRequestError, prepare, run_prepared

if TYPE_CHECKING:
    from cipulse.emulator.server import Emulator

DOCS = "https://docs.github.com/rest"
SECONDARY_MESSAGE = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach "
    "out to GitHub Support for help, please include the request ID."
)


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body), status_code=status, headers=headers, media_type="application/json")


def _token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() in ("bearer", "token") and value.strip():
        return value.strip()
    return None


def build_app(emulator: Emulator) -> Starlette:
    world = emulator.world

    async def fault_response(kind: str, api: str) -> Response:
        if kind == "502":
            if api == "graphql":
                return _json(502, {"data": None, "errors": [{"message": GRAPHQL_TIMEOUT_MESSAGE}]})
            return Response("<html><body><h1>502 Bad Gateway</h1></body></html>", 502, media_type="text/html")
        if kind == "secondary_rate_limit":
            body = {
                "message": SECONDARY_MESSAGE,
                "documentation_url": f"{DOCS}/overview/rate-limits-for-the-rest-api",
            }
            return _json(403, body, {"retry-after": "1"})
        if kind == "timeout":
            await asyncio.sleep(emulator.hang_seconds)
            return _json(504, {"message": "We couldn't respond to your request in time. Sorry about that."})
        # malformed_json: a success status whose body stops half-way
        cut = (
            '{"data": {"nodes": [{"runs": {"nodes": [{"databaseId": 12'
            if api == "graphql"
            else '{"total_count": 3, "workflow_runs": [{"id": 1'
        )
        return Response(cut, 200, media_type="application/json")

    async def guarded(request: Request, api: str, handler: Callable[[str], Awaitable[Response]]) -> Response:
        token = _token(request)
        if token is None or token not in emulator.tokens:
            docs = "https://docs.github.com/graphql" if api == "graphql" else DOCS
            return _json(401, {"message": "Bad credentials", "documentation_url": docs, "status": "401"})
        if not emulator.limits.enter(token):
            emulator.usage.count("rate_limited", 1)
            body = {"message": SECONDARY_MESSAGE, "documentation_url": DOCS}
            return _json(403, body, {"retry-after": "1"})
        try:
            wait = emulator.limits.per_minute_wait(token, api)
            if wait is not None:
                emulator.usage.count("rate_limited", 1)
                body = {"message": SECONDARY_MESSAGE, "documentation_url": DOCS}
                return _json(403, body, {"retry-after": str(wait)})
            kind = emulator.faults.take(api)
            if kind is not None and kind != "partial_graphql_errors":
                return await fault_response(kind, api)
            request.state.partial = kind == "partial_graphql_errors"
            return await handler(token)
        finally:
            emulator.limits.leave(token)

    # ---- REST ------------------------------------------------------------------------------------

    def rest(compute: Callable[[Request], rest_api.Answer], counted: bool = True) -> Callable[..., Any]:
        async def endpoint(request: Request) -> Response:
            async def handle(token: str) -> Response:
                if counted and emulator.limits.exhausted(token, "core"):
                    return primary_limited(token, "core")

                def work() -> rest_api.Answer:
                    with world.lock:
                        return compute(request)

                try:
                    answer = await run_in_threadpool(work)
                except rest_api.BadRequest as error:
                    answer = rest_api.Answer(422, {"message": str(error), "documentation_url": DOCS})
                text = json.dumps(answer.body)
                etag = 'W/"' + hashlib.sha256(text.encode()).hexdigest()[:40] + '"'
                headers = {
                    "etag": etag,
                    "cache-control": "private, max-age=60, s-maxage=60",
                    "vary": "Authorization",
                }
                link = _link_header(request, answer)
                if link:
                    headers["link"] = link
                if answer.status == 200 and etag in _etags(request.headers.get("if-none-match", "")):
                    emulator.usage.count("rest_not_modified", 1)
                    headers.update(emulator.limits.bucket(token, "core").headers("core"))
                    return Response(status_code=304, headers=headers)
                if counted:
                    allowed, bucket = emulator.limits.charge(token, "core", 1)
                    if not allowed:
                        return primary_limited(token, "core")
                    emulator.usage.count("rest_requests", 1)
                    headers.update(bucket.headers("core"))
                return Response(
                    text, status_code=answer.status, headers=headers, media_type="application/json"
                )

            return await guarded(request, "rest", handle)

        return endpoint

    def primary_limited(token: str, resource: str) -> Response:
        emulator.usage.count("rate_limited", 1)
        bucket = emulator.limits.bucket(token, resource)
        body = {
            "message": "API rate limit exceeded for user ID 1. If you reach out to GitHub Support for help, "
            "please include the request ID.",
            "documentation_url": f"{DOCS}/overview/rate-limits-for-the-rest-api",
        }
        wait = max(1, int(bucket.reset - time.time()))
        return _json(403, body, {**bucket.headers(resource), "retry-after": str(wait)})

    def repo_of(request: Request) -> str:
        params = request.path_params
        return f"{params['owner']}/{params['repo']}"

    def q(request: Request) -> dict[str, str]:
        return dict(request.query_params)

    def rate_limit_body(request: Request) -> rest_api.Answer:
        token = _token(request) or ""
        buckets = {name: emulator.limits.bucket(token, name) for name in ("core", "graphql")}
        return rest_api.Answer(200, emulator.shapes.rate_limit(buckets))

    shapes = emulator.shapes
    p = "/repos/{owner}/{repo}"
    rest_routes = [
        ("/rate_limit", rest(rate_limit_body, counted=False)),
        (p, rest(lambda r: rest_api.get_repository(world, shapes, repo_of(r)))),
        (f"{p}/actions/workflows", rest(lambda r: rest_api.list_workflows(world, shapes, repo_of(r), q(r)))),
        (
            p + "/actions/workflows/{workflow_id}",
            rest(lambda r: rest_api.get_workflow(world, shapes, repo_of(r), r.path_params["workflow_id"])),
        ),
        (
            p + "/actions/workflows/{workflow_id}/runs",
            rest(lambda r: rest_api.list_runs(world, shapes, repo_of(r), q(r), r.path_params["workflow_id"])),
        ),
        (f"{p}/actions/runs", rest(lambda r: rest_api.list_runs(world, shapes, repo_of(r), q(r)))),
        (
            p + "/actions/runs/{run_id}",
            rest(lambda r: rest_api.get_run(world, shapes, repo_of(r), r.path_params["run_id"])),
        ),
        (
            p + "/actions/runs/{run_id}/attempts/{attempt}",
            rest(
                lambda r: rest_api.get_run(
                    world, shapes, repo_of(r), r.path_params["run_id"], r.path_params["attempt"]
                )
            ),
        ),
        (
            p + "/actions/runs/{run_id}/attempts/{attempt}/jobs",
            rest(
                lambda r: rest_api.list_jobs(
                    world, shapes, repo_of(r), r.path_params["run_id"], q(r), r.path_params["attempt"]
                )
            ),
        ),
        (
            p + "/actions/runs/{run_id}/jobs",
            rest(lambda r: rest_api.list_jobs(world, shapes, repo_of(r), r.path_params["run_id"], q(r))),
        ),
        (
            p + "/actions/jobs/{job_id}",
            rest(lambda r: rest_api.get_job(world, shapes, repo_of(r), r.path_params["job_id"])),
        ),
    ]

    # ---- GraphQL ---------------------------------------------------------------------------------

    async def graphql(request: Request) -> Response:
        async def handle(token: str) -> Response:
            try:
                payload = json.loads(await request.body())
            except ValueError:
                return _json(400, {"message": "Problems parsing JSON", "documentation_url": DOCS})
            partial = bool(request.state.partial)
            status, body, headers = await run_in_threadpool(execute, token, payload, partial)
            return _json(status, body, headers)

        return await guarded(request, "graphql", handle)

    def execute(token: str, payload: Any, partial: bool) -> tuple[int, dict[str, Any], dict[str, str]]:
        schema = emulator.schema
        with world.lock:
            try:
                prepared = prepare(schema, payload)
            except GraphQLRequestError as error:
                bucket = emulator.limits.bucket(token, "graphql")
                return error.status, error.body(), bucket.headers("graphql")
            allowed, bucket = emulator.limits.charge(token, "graphql", prepared.cost.points)
            headers = bucket.headers("graphql")
            if not allowed:
                emulator.usage.count("rate_limited", 1)
                limited = {
                    "type": "RATE_LIMITED",
                    "message": "API rate limit already exceeded for user ID 1.",
                }
                wait = max(1, int(bucket.reset - time.time()))
                return 200, {"errors": [limited]}, {**headers, "retry-after": str(wait)}
            emulator.usage.count("graphql_points", prepared.cost.points)
            emulator.usage.count("graphql_requests", 1)
            context = GraphQLContext(world, emulator.nodes, prepared.cost, bucket)
            started = time.monotonic()
            body = run_prepared(schema, prepared, context)
            if time.monotonic() - started > emulator.graphql_timeout_seconds:
                # GitHub stops queries that run longer than 10 seconds (the points are spent anyway)
                return 502, {"data": None, "errors": [{"message": GRAPHQL_TIMEOUT_MESSAGE}]}, headers
        if partial:
            break_some_items(body)
        return 200, body, headers

    routes: list[Route] = []
    for prefix in ("/api/v3", ""):
        routes.extend(Route(prefix + path, endpoint, methods=["GET"]) for path, endpoint in rest_routes)
    routes.append(Route("/api/graphql", graphql, methods=["POST"]))
    routes.append(Route("/graphql", graphql, methods=["POST"]))

    async def not_found(request: Request, error: Exception) -> Response:
        return _json(404, rest_api.NOT_FOUND)

    return Starlette(routes=routes, exception_handlers={404: not_found})


def _etags(header: str) -> set[str]:
    tags = {tag.strip() for tag in header.split(",") if tag.strip()}
    return tags | {tag.removeprefix("W/") for tag in tags} | {f"W/{tag}" for tag in tags}


def _link_header(request: Request, answer: rest_api.Answer) -> str | None:
    if answer.total is None or answer.total <= answer.per_page:
        return None
    last = max(1, -(-answer.total // answer.per_page))
    base = str(request.url).split("?", 1)[0]
    params = dict(request.query_params)

    def url(page: int) -> str:
        return base + "?" + urlencode({**params, "per_page": answer.per_page, "page": page})

    links = []
    if answer.page > 1:
        links.append(f'<{url(answer.page - 1)}>; rel="prev"')
    if answer.page < last:
        links.append(f'<{url(answer.page + 1)}>; rel="next"')
        links.append(f'<{url(last)}>; rel="last"')
    if answer.page > 1:
        links.append(f'<{url(1)}>; rel="first"')
    return ", ".join(links) or None
