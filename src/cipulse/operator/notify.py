"""Deliver health transitions to a monitor's sinks through the durable outbox.

`record` writes a poll's health (and, on a transition, one delivery per sink) to the outbox before anyone
else hears of it; `flush` then tries what is pending, oldest first, and deletes each delivery once its
receiver accepted it. A receiver that fails is skipped for the rest of the flush, so its later deliveries
stay in order behind the first and one dead receiver costs one timeout per poll, not one per delivery.
Secrets are resolved at send time from the monitor's current spec, so the outbox holds none.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import httpx

from cipulse.operator.outbox import Outbox, PendingDelivery, Recorded
from cipulse.operator.report import PollReport
from cipulse.operator.sinks import SinkDeliveryFailed, encode, post_signed
from cipulse.operator.spec import SecretKeyRef, Sink
from cipulse.redact import redact_url

log = logging.getLogger(__name__)

SecretResolver = Callable[[SecretKeyRef], Awaitable[str]]
DEFAULT_SECRET_PROBLEM = "SinkSecretNotFound"


def sink_address(sink: Sink) -> str:
    """A sink's identity in the outbox: kind and URL (and tool), never its secret reference."""
    if sink.webhook is not None:
        return f"webhook {sink.webhook.url}"
    assert sink.mcp is not None  # the spec guarantees exactly one kind
    return f"mcp {sink.mcp.url} {sink.mcp.tool}"


def shown_address(address: str) -> str:
    """A sink address as logs may show it: `user:password@` in its URL masked."""
    kind, _, rest = address.partition(" ")
    url, space, tool = rest.partition(" ")
    return f"{kind} {redact_url(url)}{space}{tool}"


@dataclass(frozen=True, slots=True)
class SinkState:
    """What the SinksReady condition says after a flush."""

    ok: bool
    reason: str
    message: str
    pending: int
    problems: tuple[str, ...] = ()


class Notifier:
    """One monitor's view of the shared outbox."""

    def __init__(self, http: httpx.AsyncClient, resolve_secret: SecretResolver, outbox: Outbox, monitor: str):
        self.http = http
        self.resolve_secret = resolve_secret
        self.outbox = outbox
        self.monitor = monitor
        self._remembered = outbox.last_health(monitor)

    @property
    def last_health(self) -> str | None:
        """The health last recorded for this monitor, surviving restarts (None: never recorded)."""
        return self._remembered

    def record(self, report: PollReport, sinks: Sequence[Sink]) -> Recorded | None:
        """Persist the poll's health and queue its transition for every sink; None when nothing changed."""
        if report.verdict is None or (report.transition is None and report.health == self._remembered):
            return None
        transition = report.transition
        delivery = (transition.delivery_id, encode(transition)) if transition is not None else None
        result = self.outbox.record(self.monitor, report.health, delivery, [sink_address(s) for s in sinks])
        self._remembered = report.health
        return result

    async def flush(self, sinks: Sequence[Sink]) -> SinkState:
        """Try every pending delivery once; returns the state for status and the problems for Events.

        Every sink's secret is read on each flush, pending deliveries or not, so an unusable one shows
        in status while all is well instead of surfacing at the first incident.
        """
        by_address = {sink_address(sink): sink for sink in sinks}
        dropped = self.outbox.discard_other_sinks(self.monitor, by_address)
        if dropped:
            log.info("%s: dropped %d deliveries to sinks no longer in the spec", self.monitor, dropped)
        failing: dict[str, tuple[str, str]] = {}  # sink address -> (reason, message)
        secrets: dict[str, str | None] = {}
        for address, sink in by_address.items():
            try:
                secrets[address] = await self._secret_of(sink)
            except LookupError as error:
                failing[address] = (getattr(error, "reason", DEFAULT_SECRET_PROBLEM), str(error))
        for delivery in self.outbox.pending(self.monitor):
            if delivery.sink in failing:
                continue
            try:
                await self._deliver(by_address[delivery.sink], secrets[delivery.sink], delivery)
            except SinkDeliveryFailed as error:
                failing[delivery.sink] = ("DeliveryFailed", f"{error} (kept for retry)")
                self.outbox.failed(delivery.seq, str(error))
            else:
                self.outbox.delivered(delivery.seq)
                shown = shown_address(delivery.sink)
                log.info("%s: delivered %s to %s", self.monitor, delivery.delivery_id, shown)
        return self._state(sinks, failing)

    def _state(self, sinks: Sequence[Sink], failing: dict[str, tuple[str, str]]) -> SinkState:
        pending = self.outbox.count(self.monitor)
        problems = tuple(message for _, message in failing.values())
        if self.outbox.full:
            message = (
                f"outbox full ({self.outbox.capacity} pending deliveries across all monitors): new health "
                f"transitions are not queued until receivers accept deliveries"
            )
            return SinkState(False, "OutboxFull", "; ".join((message, *problems)), pending, problems)
        if failing:
            reason = next(iter(failing.values()))[0]
            message = f"{pending} pending deliveries; " + "; ".join(problems)
            return SinkState(False, reason, message, pending, problems)
        if not sinks:
            return SinkState(True, "NoSinks", "no sinks configured", pending)
        return SinkState(True, "Delivered", "no deliveries pending", pending)

    async def _secret_of(self, sink: Sink) -> str | None:
        kind = sink.webhook or sink.mcp
        ref = kind.secret_ref if kind is not None else None
        return await self.resolve_secret(ref) if ref is not None else None

    async def _deliver(self, sink: Sink, secret: str | None, delivery: PendingDelivery) -> None:
        """Sign (or authenticate) now, with the key the spec names today."""
        if sink.webhook is not None:
            key = secret.encode() if secret is not None else None
            await post_signed(self.http, sink.webhook.url, key, delivery.body, delivery.delivery_id)
        elif sink.mcp is not None:
            from cipulse.operator.mcp_sink import call_tool

            await call_tool(sink.mcp.url, sink.mcp.tool, json.loads(delivery.body), secret)
