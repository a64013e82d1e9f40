"""An async GitHub client: REST with ETag conditional requests, GraphQL with cost estimates, and retries.

Every request goes through the token's RateBudget (waits, concurrency, counters). Transient failures
(5xx, timeouts, malformed JSON, secondary limits) are retried with backoff; permanent ones raise a
GitHubError whose message never includes the token.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx

from cipulse import __version__
from cipulse.github.budget import GRAPHQL, REST, RateBudget, Usage
from cipulse.github.endpoints import endpoints_for
from cipulse.github.errors import (
    AuthenticationFailed,
    GitHubError,
    GitHubUnavailable,
    QueryTooLarge,
    RateLimited,
    RepositoryNotFound,
)
from cipulse.github.queries import Query
from cipulse.github.query_cost import GITHUB_NODE_LIMIT, estimate_query

log = logging.getLogger(__name__)

SECONDARY_LIMIT_DEFAULT_WAIT = 60.0


@dataclass(frozen=True, slots=True)
class RestAnswer:
    data: Any
    not_modified: bool
    headers: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class GraphQLAnswer:
    """`data` may be partial: `errors` then says which items failed (by their `path`)."""

    data: dict[str, Any]
    errors: list[dict[str, Any]] = field(default_factory=list)
    cost: int = 0


class _Retry(Exception):
    """Internal: this attempt failed transiently; wait `delay` seconds (None: use backoff)."""

    def __init__(self, reason: str, delay: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.delay = delay


class GitHubClient:
    def __init__(
        self,
        api_url: str,
        token: str | None,
        budget: RateBudget,
        usage: Usage | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.endpoints = endpoints_for(api_url)
        self.budget = budget
        self.usage = usage or Usage()
        headers = {
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
            "User-Agent": f"cipulse/{__version__}",
        }
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._owns_http = http is None
        self._http = http or httpx.AsyncClient(timeout=budget.retry.request_timeout)
        self._headers = headers

    async def __aenter__(self) -> GitHubClient:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    def _count(self, kind: str, amount: int = 1) -> None:
        for usage in (self.usage, self.budget.usage):
            setattr(usage, kind, getattr(usage, kind) + amount)

    async def rest_get(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        conditional: bool = True,
        durable: bool = False,
    ) -> RestAnswer:
        """GET a REST resource; with `conditional`, a cached ETag makes an unchanged answer a free 304
        (`durable`: remember it across processes too)."""
        query = urlencode(sorted((params or {}).items()))
        url = f"{self.endpoints.rest}{path}" + (f"?{query}" if query else "")
        cached = self.budget.etags.get(url) if conditional else None

        async def attempt() -> RestAnswer:
            headers = dict(self._headers)
            if cached:
                headers["If-None-Match"] = cached[0]
            response = await self._send(REST, "GET", url, headers=headers)
            if response.status_code == 304 and cached:
                self._count("rest_not_modified")
                return RestAnswer(data=cached[1], not_modified=True, headers=response.headers)
            self._count("rest_requests")
            self._raise_for_status(response, what=path)
            data = _json_or_retry(response)
            etag = response.headers.get("etag")
            if conditional and etag:
                self.budget.etags.put(url, etag, data, durable=durable)
            return RestAnswer(data=data, not_modified=False, headers=response.headers)

        return await self._with_retries(REST, attempt, what=path)

    async def graphql(self, query: Query, variables: Mapping[str, Any]) -> GraphQLAnswer:
        """Send a query after checking its node count; returns data (possibly partial) and errors."""
        estimate = estimate_query(query.document, variables)
        if estimate.nodes > GITHUB_NODE_LIMIT:
            raise QueryTooLarge(
                f"query {query.name} would request {estimate.nodes:,} nodes "
                f"(GitHub allows {GITHUB_NODE_LIMIT:,})"
            )

        async def attempt() -> GraphQLAnswer:
            response = await self._send(
                GRAPHQL,
                "POST",
                self.endpoints.graphql,
                headers=self._headers,
                content=json.dumps({"query": query.text, "variables": dict(variables)}),
            )
            self._raise_for_status(response, what=f"GraphQL {query.name}")
            body = _json_or_retry(response)
            if not isinstance(body, dict):
                raise _Retry("GraphQL answer is not a JSON object")
            data = body.get("data")
            errors = [e for e in body.get("errors") or [] if isinstance(e, dict)]
            if any(e.get("type") == "RATE_LIMITED" for e in errors):
                self.budget.resources[GRAPHQL].remaining = 0
                raise _Retry("GraphQL rate limited", delay=self.budget.seconds_to_wait(GRAPHQL))
            if not isinstance(data, dict):
                if errors and all(e.get("type") == "NOT_FOUND" for e in errors):
                    raise RepositoryNotFound(_error_text(errors))
                raise _Retry("GraphQL answer without data: " + _error_text(errors))
            cost = self.budget.observe_rate_limit_field(data.get("rateLimit")) or estimate.cost
            self._count("graphql_points", cost)
            self._count("graphql_queries")
            return GraphQLAnswer(data=data, errors=errors, cost=cost)

        return await self._with_retries(GRAPHQL, attempt, what=f"GraphQL {query.name}")

    async def _send(self, resource: str, method: str, url: str, **kwargs: Any) -> httpx.Response:
        wait = self.budget.seconds_to_wait(resource)
        if wait > 0:
            await asyncio.sleep(wait)
        async with self.budget.semaphore():
            try:
                response = await self._http.request(method, url, **kwargs)
            except httpx.TimeoutException as exc:
                raise _Retry(f"timeout ({type(exc).__name__})") from exc
            except httpx.TransportError as exc:
                raise _Retry(f"connection failed ({type(exc).__name__})") from exc
        self.budget.observe_headers(resource, response.headers)
        return response

    def _raise_for_status(self, response: httpx.Response, what: str) -> None:
        status = response.status_code
        if status < 300:
            return
        if status in (403, 429) and _is_rate_limited(response):
            raise _Retry(f"rate limited ({status})", delay=self._rate_limit_wait(response))
        if status >= 500:
            raise _Retry(f"server error {status}")
        if status == 401:
            raise AuthenticationFailed(f"GitHub rejected the token (401) for {what}")
        if status == 403:
            raise AuthenticationFailed(f"the token may not read {what} (403): it needs Actions read access")
        if status == 404:
            raise RepositoryNotFound(f"{what} not found (404): check the repository name and token access")
        raise GitHubError(f"GitHub answered {status} for {what}")

    def _rate_limit_wait(self, response: httpx.Response) -> float:
        retry_after = response.headers.get("retry-after")
        if retry_after is not None:
            try:
                seconds = float(retry_after)
            except ValueError:
                seconds = SECONDARY_LIMIT_DEFAULT_WAIT
            self.budget.block_for(seconds)
            return seconds
        if response.headers.get("x-ratelimit-remaining") == "0":
            reset = response.headers.get("x-ratelimit-reset")
            if reset and reset.isdigit():
                seconds = max(0.0, int(reset) - datetime.now(UTC).timestamp())
                self.budget.block_for(seconds)
                return seconds
        self.budget.block_for(SECONDARY_LIMIT_DEFAULT_WAIT)
        return SECONDARY_LIMIT_DEFAULT_WAIT

    async def _with_retries(self, resource: str, attempt: Any, what: str) -> Any:
        policy = self.budget.retry
        last_reason = "no attempt made"
        for number in range(policy.attempts):
            try:
                return await attempt()
            except _Retry as retry:
                last_reason = retry.reason
                delay = retry.delay if retry.delay is not None else policy.delay(number)
                if delay > policy.max_rate_limit_wait:
                    raise RateLimited(
                        f"{what}: rate limited for {delay:.0f} s",
                        reset_at=datetime.now(UTC) + timedelta(seconds=delay),
                    ) from None
                log.info("retrying %s in %.2f s: %s", what, delay, retry.reason)
                await asyncio.sleep(delay)
        raise GitHubUnavailable(f"{what} failed {policy.attempts} times; last: {last_reason}")


def _json_or_retry(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise _Retry("malformed JSON") from exc


def _is_rate_limited(response: httpx.Response) -> bool:
    if "retry-after" in response.headers or response.headers.get("x-ratelimit-remaining") == "0":
        return True
    return "rate limit" in response.text.lower()


def _error_text(errors: list[dict[str, Any]]) -> str:
    return "; ".join(str(e.get("message", e)) for e in errors[:3]) or "no error message"
