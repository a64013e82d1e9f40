"""The HTTP face of the webhook receiver: a FastAPI router (imported only by servers that need it)."""

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from cipulse.github.webhooks import WebhookReceiver


def webhook_router(receiver: WebhookReceiver, path: str = "/webhooks/github") -> APIRouter:
    """A router that feeds POSTed deliveries to `receiver` and answers with the outcome."""
    router = APIRouter()

    async def deliver(request: Request) -> JSONResponse:
        body = await request.body()
        outcome = receiver.receive(dict(request.headers), body)
        content: dict[str, Any] = {
            "status": outcome.status,
            "reason": outcome.reason,
            "warnings": list(outcome.warnings),
        }
        return JSONResponse(content, status_code=outcome.http_status)

    router.add_api_route(path, deliver, methods=["POST"])
    return router
