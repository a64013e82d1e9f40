"""kopf handlers: one daemon per CiCdMonitor drives a MonitorEngine until the object is deleted.

A daemon (not a timer) because the interval is per object and the first poll is a long backfill; kopf
stops it on deletion or shutdown through `stopped`, and restarts it on resume after a restart, when
the store's watermark makes it carry on where it left off.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import kopf
from pydantic import ValidationError

from cipulse.operator import status as status_docs
from cipulse.operator.crd import GROUP, PLURAL, VERSION
from cipulse.operator.engine import MonitorEngine
from cipulse.operator.kubeapi import KubeApi, SecretMissing, SecretUnusable
from cipulse.operator.monitor_store import release_freed_memory
from cipulse.operator.notify import Notifier, SinkState
from cipulse.operator.outbox import Outbox
from cipulse.operator.report import PollReport
from cipulse.operator.secret_labels import GITHUB_TOKEN, SINK_SECRET, SecretUse
from cipulse.operator.spec import MonitorSpec, SecretKeyRef, parse_spec
from cipulse.operator.telemetry import Telemetry
from cipulse.operator.url_policy import INSECURE_URL_ERROR
from cipulse.store.base import Store

log = logging.getLogger(__name__)
PROBLEM_RETRY_SECONDS = 30.0


@dataclass
class Runtime:
    """Process-wide resources shared by every monitor's daemon.

    `poll_slots` bounds concurrent polls: a hundred monitors backfilling at once would hold every
    repository's history in memory together; in turns, peak memory stays near one batch's worth.
    """

    store: Store
    kube: KubeApi
    telemetry: Telemetry
    http: httpx.AsyncClient
    outbox: Outbox
    poll_slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(8))
    started: bool = False
    monitors: set[str] = field(default_factory=set)


def _describe(error: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors())


def spec_problem_reason(error: ValidationError) -> str:
    """InsecureUrl gets its own reason: the spec is well-formed but would leak a credential."""
    insecure = any(e["type"] == INSECURE_URL_ERROR for e in error.errors())
    return "InsecureUrl" if insecure else "InvalidSpec"


def _seconds_until(moment: datetime) -> float:
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())


class MonitorDaemon:
    """The loop for one CiCdMonitor; state that must survive between polls lives here."""

    def __init__(self, runtime: Runtime, body: kopf.Body, namespace: str, name: str) -> None:
        self.runtime = runtime
        self.body = body
        self.namespace = namespace
        self.key = f"{namespace}/{name}"
        self.name = name
        self.engine: MonitorEngine | None = None
        self.notifier = Notifier(runtime.http, self._sink_secret, runtime.outbox, self.key)
        self.last_problem: str | None = None
        self.last_sink_state: SinkState | None = None
        self.written_conditions: list[dict[str, Any]] | None = None

    async def _secret(self, ref: SecretKeyRef, use: SecretUse) -> str:
        return await self.runtime.kube.read_secret(self.namespace, ref, use)

    async def _sink_secret(self, ref: SecretKeyRef) -> str:
        return await self._secret(ref, SINK_SECRET)

    @property
    def _status(self) -> dict[str, Any]:
        """The status to merge into: kopf's copy, but with the conditions this daemon last wrote.

        A merge patch replaces the whole conditions list, and kopf's copy lags until the watch event of
        our own previous patch arrives: merging into it would undo that patch (Ready reverting after the
        SinksReady write that follows it within milliseconds).
        """
        status = dict(self.body.status)
        if self.written_conditions is not None:
            status["conditions"] = self.written_conditions
        return status

    @property
    def _generation(self) -> int | None:
        generation = self.body.meta.get("generation")
        return int(generation) if generation is not None else None

    async def _patch(self, status: dict[str, Any]) -> None:
        await self.runtime.kube.patch_status(self.namespace, self.name, status)
        if "conditions" in status:
            self.written_conditions = status["conditions"]

    async def _problem(self, reason: str, message: str) -> None:
        now = datetime.now(UTC)
        await self._patch(status_docs.problem_status(self._status, self._generation, now, reason, message))
        if self.last_problem != reason:
            kopf.warn(self.body, reason=reason, message=message)
            self.last_problem = reason

    async def step(self) -> float:
        """One iteration; returns how long to sleep before the next."""
        try:
            spec = parse_spec(dict(self.body.spec))
        except ValidationError as error:
            await self._problem(spec_problem_reason(error), _describe(error))
            return PROBLEM_RETRY_SECONDS
        engine = self._engine_for(spec)
        token = None
        if spec.token_secret_ref is not None:
            ref = spec.token_secret_ref
            try:
                token = await self._secret(ref, GITHUB_TOKEN)
            except SecretMissing as error:
                label = GITHUB_TOKEN.label_command(self.namespace, ref.name)
                hint = (
                    f"create it: kubectl -n {self.namespace} create secret generic {ref.name}"
                    f" --from-literal={ref.key}=TOKEN && {label}"
                )
                await self._problem(error.reason, f"{error}; {hint}")
                return PROBLEM_RETRY_SECONDS
            except SecretUnusable as error:
                await self._problem(error.reason, str(error))
                return PROBLEM_RETRY_SECONDS
        async with self.runtime.poll_slots:
            backfill = self.runtime.store.get_watermark(self.key) is None
            if backfill:
                # Only a backfill is long enough to be worth a status write (and the watch event it causes).
                now = datetime.now(UTC)
                await self._patch(status_docs.syncing_status(self._status, self._generation, now, True))
            started = time.monotonic()
            report = await engine.poll(token)
        if backfill:
            release_freed_memory()  # its parsed pages are stored; without this RSS keeps the high mark
        self.runtime.telemetry.observe(report, time.monotonic() - started)
        self._record(engine, spec, report)  # durable before status, Events or receivers hear of it
        next_poll = report.retry_at or (report.at + timedelta(seconds=spec.poll_seconds))
        await self._patch(status_docs.report_status(self._status, self._generation, report, next_poll))
        await self._announce(report)
        await self._deliver(spec)
        return _seconds_until(next_poll)

    def _engine_for(self, spec: MonitorSpec) -> MonitorEngine:
        if self.engine is None or self.engine.spec != spec:
            if self.engine is not None:
                last = self.engine.last_health
            else:  # after a restart the outbox knows what was last announced; status may lag behind it
                last = self.notifier.last_health or self._status.get("health")
            self.engine = MonitorEngine(self.key, spec, self.runtime.store, last_health=last)
        return self.engine

    def _record(self, engine: MonitorEngine, spec: MonitorSpec, report: PollReport) -> None:
        transition = report.transition
        try:
            recorded = self.notifier.record(report, spec.sinks)
        except Exception:
            if transition is not None:  # not recorded: detect it again on the next poll
                engine.last_health = transition.previous
            raise
        if transition is not None and recorded is not None and recorded.refused:
            self.runtime.telemetry.refused_deliveries.labels(self.key).inc(recorded.refused)
            message = (
                f"{transition.previous} -> {transition.current} (delivery {transition.delivery_id}) was not "
                f"queued for {recorded.refused} sinks: the outbox already holds "
                f"{self.runtime.outbox.capacity} pending deliveries"
            )
            kopf.warn(self.body, reason="OutboxFull", message=message)

    async def _announce(self, report: PollReport) -> None:
        transition = report.transition
        if transition is not None:
            kind = "Normal" if transition.current == "Healthy" else "Warning"
            message = f"{transition.previous} -> {transition.current}: {'; '.join(transition.reasons)}"
            kopf.event(self.body, type=kind, reason="HealthChanged", message=message[:1000])
        if report.ok:
            self.last_problem = None
        elif self.last_problem != report.reason:  # one Warning per problem, not one per poll
            kopf.warn(self.body, reason=report.reason, message=report.message[:1000])
            self.last_problem = report.reason

    async def _deliver(self, spec: MonitorSpec) -> None:
        """Flush the outbox; SinksReady and a Warning change only when the outcome changes."""
        state = await self.notifier.flush(spec.sinks)
        telemetry = self.runtime.telemetry
        telemetry.sink_failures.labels(self.key).inc(len(state.problems))
        telemetry.pending_deliveries.labels(self.key).set(state.pending)
        previous = self.last_sink_state
        if previous is not None and (previous.ok, previous.reason, previous.message, previous.pending) == (
            state.ok,
            state.reason,
            state.message,
            state.pending,
        ):
            return
        now = datetime.now(UTC)
        await self._patch(status_docs.sinks_status(self._status, self._generation, now, state))
        news = previous is None or (previous.reason, previous.problems) != (state.reason, state.problems)
        if not state.ok and news:
            kopf.warn(self.body, reason=state.reason, message=state.message[:1000])
        self.last_sink_state = state


def register(registry: kopf.OperatorRegistry, runtime: Runtime, labels: dict[str, Any] | None = None) -> None:
    """Attach the handlers to `registry` (a fresh one per operator, so shards and tests do not mix)."""

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        """In-cluster service account or KUBECONFIG, via the official client (a fresh registry has none)."""
        return kopf.login_via_client(**kwargs)

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        # Progress and diff-base in annotations: the status schema stays ours, and structural pruning
        # would silently drop kopf's bookkeeping from status.
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=GROUP)
        settings.persistence.finalizer = f"{GROUP}/finalizer"
        settings.posting.level = logging.WARNING  # explicit kopf.event calls still post
        settings.scanning.disabled = True  # no cluster-wide list of CRDs/namespaces: least privilege
        runtime.started = True

    @kopf.daemon(
        GROUP,
        VERSION,
        PLURAL,
        registry=registry,
        labels=labels or {},
        cancellation_timeout=30.0,
        id="monitor",
    )
    async def monitor(
        body: kopf.Body, name: str, namespace: str | None, stopped: kopf.DaemonStopped, **_: Any
    ) -> None:
        daemon = MonitorDaemon(runtime, body, namespace or "default", name)
        runtime.monitors.add(daemon.key)
        runtime.telemetry.monitors.set(len(runtime.monitors))
        log.info("monitoring %s (%s)", daemon.key, body.spec.get("repository"))
        try:
            while not stopped:
                try:
                    delay = await daemon.step()
                except kopf.TemporaryError:
                    raise
                except Exception as error:  # keep the daemon alive; the next step retries
                    log.exception("poll of %s failed", daemon.key)
                    kopf.warn(body, reason="PollFailed", message=f"{type(error).__name__}: {error}"[:1000])
                    delay = PROBLEM_RETRY_SECONDS
                await stopped.wait(delay)
        finally:
            if stopped.reason is not None and kopf.DaemonStoppingReason.RESOURCE_DELETED in stopped.reason:
                dropped = runtime.outbox.forget(daemon.key)
                log.info("forgot %s: %d undelivered transitions dropped with it", daemon.key, dropped)
            runtime.monitors.discard(daemon.key)
            runtime.telemetry.monitors.set(len(runtime.monitors))
            runtime.telemetry.forget(daemon.key, str(body.spec.get("repository")))
            log.info("stopped monitoring %s", daemon.key)
