"""Deliver health transitions to a monitor's sinks, keeping undelivered ones for the next poll.

A receiver that is down must not lose a transition: failed deliveries stay queued (bounded) and are
retried after each poll. Each delivery carries a stable id so a receiver can ignore a repeat.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import httpx

from cipulse.operator.sinks import HealthTransition, SinkDeliveryFailed, post_webhook
from cipulse.operator.spec import SecretKeyRef, Sink

log = logging.getLogger(__name__)

SecretResolver = Callable[[SecretKeyRef], Awaitable[str]]
MAX_PENDING = 100


@dataclass
class Notifier:
    """Per-monitor delivery queue."""

    http: httpx.AsyncClient
    resolve_secret: SecretResolver
    pending: list[tuple[int, HealthTransition]] = field(default_factory=list)

    async def notify(self, sinks: Sequence[Sink], transition: HealthTransition | None) -> list[str]:
        """Queue `transition` for every sink, try all queued; returns the problems (for Events/logs)."""
        if transition is not None:
            self.pending.extend((index, transition) for index in range(len(sinks)))
            del self.pending[:-MAX_PENDING]
        problems: list[str] = []
        still_pending: list[tuple[int, HealthTransition]] = []
        for index, queued in self.pending:
            if index >= len(sinks):
                continue  # the sink was removed from the spec
            try:
                await self._deliver(sinks[index], queued)
            except (SinkDeliveryFailed, LookupError) as problem:
                problems.append(str(problem))
                still_pending.append((index, queued))
        self.pending = still_pending
        return problems

    async def _deliver(self, sink: Sink, transition: HealthTransition) -> None:
        if sink.webhook is not None:
            ref = sink.webhook.secret_ref
            secret = (await self.resolve_secret(ref)).encode() if ref else None
            await post_webhook(self.http, sink.webhook.url, secret, transition)
            log.info("delivered %s -> %s to %s", transition.previous, transition.current, sink.webhook.url)
        elif sink.mcp is not None:
            from cipulse.operator.mcp_sink import call_tool

            ref = sink.mcp.secret_ref
            bearer = await self.resolve_secret(ref) if ref else None
            await call_tool(sink.mcp.url, sink.mcp.tool, transition, bearer)
