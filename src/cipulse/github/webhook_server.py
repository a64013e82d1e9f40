"""A small HTTP server for the webhook receiver, on 127.0.0.1 and a port chosen at start.

Standalone use and tests need a real endpoint GitHub (or the emulator) can POST deliveries to. An
application that already serves HTTP can mount `webhook_router` (webhooks.py) into its own FastAPI app
instead of starting this server.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from cipulse.github.webhooks import WebhookReceiver, webhook_router

WEBHOOK_PATH = "/webhooks/github"


@contextmanager
def serving_receiver(receiver: WebhookReceiver, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve `receiver` until the block ends; yields the delivery URL."""
    import uvicorn
    from fastapi import FastAPI

    app = FastAPI()
    app.include_router(webhook_router(receiver, WEBHOOK_PATH))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound_port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError("the webhook receiver did not start")
        time.sleep(0.01)
    try:
        yield f"http://{host}:{bound_port}{WEBHOOK_PATH}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()
