"""Start the operator: store, metrics/readiness server and kopf, with sharding and peering options.

Sharding: each instance serves the monitors matching its `--selector` (labels) and/or `--namespace`
list. Peering: instances of one shard share a peering name; kopf keeps only the highest-priority one
active, so a rolling update or an accidental second replica never polls the same monitor twice.
"""

from __future__ import annotations

import asyncio
import logging
import random
import signal
from dataclasses import dataclass, field

import httpx
import kopf

from cipulse.operator.handlers import Runtime, register
from cipulse.operator.kubeapi import KubeApi, load_config
from cipulse.operator.monitor_store import default_outbox_path, open_monitor_store
from cipulse.operator.outbox import DEFAULT_CAPACITY, Outbox
from cipulse.operator.shards import parse_selector
from cipulse.operator.telemetry import Telemetry, http_app, serve

log = logging.getLogger(__name__)


@dataclass
class OperatorOptions:
    store_url: str
    namespaces: list[str] = field(default_factory=list)
    selector: str = ""
    peering: str | None = None
    priority: int | None = None
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 8080
    liveness: str | None = None
    max_concurrent_polls: int = 8
    outbox_path: str | None = None  # None: beside the store (see default_outbox_path)
    outbox_capacity: int = DEFAULT_CAPACITY


async def run_operator(options: OperatorOptions, stop: asyncio.Event | None = None) -> None:
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    store = open_monitor_store(options.store_url)
    outbox_path = options.outbox_path or default_outbox_path(options.store_url)
    try:
        outbox = Outbox(outbox_path, options.outbox_capacity)
    except BaseException:
        store.close()
        raise
    log.info("pending sink deliveries kept in %s", outbox_path)
    telemetry = Telemetry()
    async with httpx.AsyncClient(timeout=30) as http:
        runtime = Runtime(
            store=store,
            kube=KubeApi(load_config()),
            telemetry=telemetry,
            http=http,
            outbox=outbox,
            poll_slots=asyncio.Semaphore(options.max_concurrent_polls),
        )
        registry = kopf.OperatorRegistry()
        register(registry, runtime, labels=parse_selector(options.selector))
        ready = asyncio.Event()
        app = http_app(telemetry, lambda: runtime.started and ready.is_set())
        server, port = await serve(app, options.metrics_host, options.metrics_port)
        log.info("metrics at http://%s:%d/metrics, readiness at /readyz", options.metrics_host, port)
        # Distinct priorities let kopf pick one active instance per peering; equal priorities freeze all.
        priority = options.priority if options.priority is not None else random.randint(1, 1_000_000)
        try:
            await kopf.operator(
                registry=registry,
                clusterwide=not options.namespaces,
                namespaces=options.namespaces,
                peering_name=options.peering,
                standalone=options.peering is None,
                priority=priority,
                liveness_endpoint=options.liveness,
                stop_flag=stop,
                ready_flag=ready,
            )
        finally:
            await server.cleanup()
            outbox.close()
            store.close()
