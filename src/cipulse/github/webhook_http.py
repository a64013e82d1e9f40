"""The HTTP face of the webhook receiver: a FastAPI router (imported only by servers that need it)."""

import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from cipulse.github.webhooks import WebhookReceiver

log = logging.getLogger(__name__)


def webhook_router(receiver: WebhookReceiver, path: str = "/webhooks/github") -> APIRouter:
    """A router that feeds POSTed deliveries to `receiver` and answers with the outcome. The store write
    blocks, so it runs in a worker thread: other deliveries (and the app's other routes) keep being served."""
    router = APIRouter()

    async def deliver(request: Request) -> JSONResponse:
        body = await request.body()
        try:
            outcome = await run_in_threadpool(receiver.receive, dict(request.headers), body)
        except Exception as exc:  # the store's failure: GitHub redelivers on any non-2xx answer
            log.warning("a webhook delivery could not be stored: %s", exc)
            failure = {"status": "error", "reason": "the records could not be stored; redeliver later"}
            return JSONResponse(failure, status_code=503)
        content: dict[str, Any] = {
            "status": outcome.status,
            "reason": outcome.reason,
            "warnings": list(outcome.warnings),
        }
        return JSONResponse(content, status_code=outcome.http_status)

    router.add_api_route(path, deliver, methods=["POST"])
    return router
