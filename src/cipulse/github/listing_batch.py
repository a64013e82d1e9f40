"""Merges small `nodes(ids:)` queries of many concurrent syncs that share a token into few queries.

The runs listing has one connection per workflow, so one query over 149 workflows costs the same single
point as a query over one; the job-count check likewise carries 149 runs per point. A sweep over 100
repositories where nothing is new therefore costs a few points instead of one per repository: requests
arriving within a short window are sent together, chunked so that no query costs more than one point.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cipulse.github.budget import RateBudget
from cipulse.github.client import GitHubClient
from cipulse.github.queries import load_query
from cipulse.github.query_cost import estimate_query

WINDOW_SECONDS = 0.03
MAX_WAIT_SECONDS = 0.3


def ids_per_point(query_name: str, variables: dict[str, Any]) -> int:
    """The most ids one query can carry for one point (at least 1)."""
    document = load_query(query_name).document
    count = 1
    while count < 1000 and estimate_query(document, {**variables, "ids": ["x"] * (count + 1)}).cost <= 1:
        count += 1
    return count


@dataclass
class _Request:
    client: GitHubClient
    ids: list[str]
    future: asyncio.Future[list[dict[str, Any] | None]]


@dataclass
class _LoopState:
    pending: dict[tuple[Any, ...], list[_Request]] = field(default_factory=dict)
    timer: asyncio.TimerHandle | None = None
    first_at: float = 0.0


class ListingBatcher:
    """Sends a batch once no request has joined for `window` seconds, or `max_wait` after the first."""

    def __init__(self, window: float = WINDOW_SECONDS, max_wait: float = MAX_WAIT_SECONDS) -> None:
        self.window = window
        self.max_wait = max_wait
        self._states: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState] = (
            weakref.WeakKeyDictionary()
        )

    def _state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        if loop not in self._states:
            self._states[loop] = _LoopState()
        return self._states[loop]

    def _schedule(self, state: _LoopState) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        if state.timer is None:
            state.first_at = now
        else:
            state.timer.cancel()
        delay = max(0.0, min(self.window, state.first_at + self.max_wait - now))
        state.timer = loop.call_later(delay, lambda: asyncio.ensure_future(self._flush(state)))

    async def items(
        self, client: GitHubClient, query_name: str, ids: Sequence[str], variables: dict[str, Any]
    ) -> list[dict[str, Any] | None]:
        """The query's `nodes` items for `ids` (in order), fetched together with concurrent callers'."""
        state = self._state()
        future: asyncio.Future[list[dict[str, Any] | None]] = asyncio.get_running_loop().create_future()
        key = (query_name, *sorted(variables.items()))
        state.pending.setdefault(key, []).append(_Request(client, list(ids), future))
        self._schedule(state)
        return await future

    async def _flush(self, state: _LoopState) -> None:
        batches, state.pending, state.timer = state.pending, {}, None
        for (query_name, *variables), requests in batches.items():
            await self._send_group(requests, query_name, dict(variables))

    async def _send_group(self, requests: list[_Request], query_name: str, variables: dict[str, Any]) -> None:
        from cipulse.github.graphql_runs import query_items

        flat = [(request, index) for request in requests for index in range(len(request.ids))]
        results: dict[int, list[dict[str, Any] | None]] = {id(r): [None] * len(r.ids) for r in requests}
        failed: dict[int, BaseException] = {}
        chunk = ids_per_point(query_name, variables)

        async def send(part: list[tuple[_Request, int]]) -> None:
            ids = [request.ids[index] for request, index in part]
            try:
                items = await query_items(part[0][0].client, query_name, ids, variables)
            except Exception as exc:  # handed to every caller in this chunk
                for request, _ in part:
                    failed[id(request)] = exc
                return
            for (request, index), item in zip(part, items, strict=True):
                results[id(request)][index] = item

        await asyncio.gather(*(send(flat[i : i + chunk]) for i in range(0, len(flat), chunk)))
        for request in requests:
            if request.future.done():
                continue
            if id(request) in failed:
                request.future.set_exception(failed[id(request)])
            else:
                request.future.set_result(results[id(request)])


_batchers: weakref.WeakKeyDictionary[RateBudget, ListingBatcher] = weakref.WeakKeyDictionary()


def batcher_for(budget: RateBudget) -> ListingBatcher:
    """The batcher of this token's budget (syncs batch only with syncs using the same token)."""
    if budget not in _batchers:
        _batchers[budget] = ListingBatcher()
    return _batchers[budget]
