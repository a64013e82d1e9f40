"""Prometheus metrics and the readiness probe, served by a small aiohttp app (kopf already ships aiohttp).

Liveness is kopf's own `--liveness` endpoint (it knows whether its watchers are alive); readiness
here means "the store is open and the operator finished starting".
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from cipulse.operator.report import PollReport

HEALTH_STATES = ("Unknown", "Healthy", "Degraded", "Failing")


class Telemetry:
    """The operator's metrics; one registry per process so tests can run several side by side."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        labels = ["monitor", "repository"]
        self.polls = Counter(
            "cipulse_polls", "Polls by outcome.", [*labels, "reason"], registry=self.registry
        )
        self.poll_seconds = Histogram(
            "cipulse_poll_duration_seconds",
            "Wall time of one poll.",
            ["monitor"],
            buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 300),
            registry=self.registry,
        )
        self.collected_jobs = Counter(
            "cipulse_collected_jobs", "Jobs written by polls.", labels, registry=self.registry
        )
        self.stored_jobs = Gauge("cipulse_stored_jobs", "Jobs in the store.", labels, registry=self.registry)
        self.health = Gauge(
            "cipulse_monitor_health",
            "1 for the monitor's current health.",
            [*labels, "health"],
            registry=self.registry,
        )
        self.success_rate = Gauge(
            "cipulse_success_rate", "Job success rate in the health window.", labels, registry=self.registry
        )
        self.rate_limit_remaining = Gauge(
            "cipulse_rate_limit_remaining",
            "GitHub budget left for the monitor's token.",
            labels,
            registry=self.registry,
        )
        self.monitors = Gauge("cipulse_monitors", "Monitors running in this process.", registry=self.registry)
        self.sink_failures = Counter(
            "cipulse_sink_delivery_failures",
            "Failed health-transition deliveries.",
            ["monitor"],
            registry=self.registry,
        )

        self.pending_deliveries = Gauge(
            "cipulse_sink_pending_deliveries",
            "Health-transition deliveries waiting in the outbox.",
            ["monitor"],
            registry=self.registry,
        )
        self.refused_deliveries = Counter(
            "cipulse_sink_refused_deliveries",
            "Deliveries not queued because the outbox was full.",
            ["monitor"],
            registry=self.registry,
        )

    def observe(self, report: PollReport, seconds: float) -> None:
        names = (report.monitor, report.repository)
        self.polls.labels(*names, report.reason).inc()
        self.poll_seconds.labels(report.monitor).observe(seconds)
        self.collected_jobs.labels(*names).inc(report.synced_jobs)
        if report.jobs is not None:
            self.stored_jobs.labels(*names).set(report.jobs)
        for state in HEALTH_STATES:
            self.health.labels(*names, state).set(1 if report.health == state else 0)
        if report.verdict is not None and report.verdict.success_rate is not None:
            self.success_rate.labels(*names).set(report.verdict.success_rate)
        if report.rate_limit_remaining is not None:
            self.rate_limit_remaining.labels(*names).set(report.rate_limit_remaining)

    def forget(self, monitor: str, repository: str) -> None:
        """A deleted monitor's series disappear instead of freezing at their last value."""
        for metric in (self.stored_jobs, self.success_rate, self.rate_limit_remaining, self.collected_jobs):
            with contextlib.suppress(KeyError):
                metric.remove(monitor, repository)
        for state in HEALTH_STATES:
            with contextlib.suppress(KeyError):
                self.health.remove(monitor, repository, state)
        with contextlib.suppress(KeyError):
            self.pending_deliveries.remove(monitor)


def http_app(telemetry: Telemetry, ready: Callable[[], bool]) -> web.Application:
    async def metrics(_: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(telemetry.registry), headers={"Content-Type": CONTENT_TYPE_PLAIN_0_0_4}
        )

    async def readyz(_: web.Request) -> web.Response:
        return web.Response(text="ready\n") if ready() else web.Response(status=503, text="starting\n")

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/readyz", readyz)
    return app


async def serve(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Start serving; port 0 picks a free port, returned so callers can print or test it."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    server = getattr(site, "_server", None)
    sockets = getattr(server, "sockets", None) or []
    bound = sockets[0].getsockname()[1] if sockets else port
    return runner, int(bound)
